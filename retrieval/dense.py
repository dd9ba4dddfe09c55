"""The dense index interface: a second backend is one new file that implements it, plus its
line in `retrieval/index_registry.py`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from retrieval.index_file import write_atomic


class DenseIndex(ABC):
    """Inner-product search over unit vectors keyed by int64 chunk ids."""

    kind: ClassVar[str]  # its name in the registry, and in saved files and the KB's state

    def __init__(self, dim: int, params: Mapping[str, Any]) -> None:
        """An empty index; `params` holds knobs by name (KBSettings fields), others ignored."""
        self.dim = dim
        self.params = self.build_params(params)

    @classmethod
    @abstractmethod
    def build_params(cls, params: Mapping[str, Any]) -> dict[str, int]:
        """The knobs that shape a built index, from `params` or the backend's defaults."""

    def spec(self) -> dict[str, Any]:
        """Kind and build knobs: what the knowledge base records, and compares on open."""
        return {"kind": self.kind, **self.params}

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under ids that are not in the index yet."""

    @abstractmethod
    def delete(self, ids: np.ndarray) -> None:
        """Remove ids; ids that are not present are ignored."""

    @abstractmethod
    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        """Per query, up to k (id, score) pairs, best first, restricted to `allowed` if given."""

    @abstractmethod
    def ids(self) -> np.ndarray:
        """Every id the index holds, sorted."""

    @abstractmethod
    def count(self) -> int:
        """Number of vectors the index holds."""

    @abstractmethod
    def dump(self) -> tuple[dict[str, Any], bytes]:
        """The backend's own header fields (JSON) and payload, for `save`."""

    @abstractmethod
    def restore(self, header: Mapping[str, Any], payload: bytes) -> None:
        """Take the contents `dump` wrote; IndexFileError if they cannot be read."""

    def save(self, path: Path, extra: dict[str, Any]) -> None:
        """Write the index crash-safely to `path`, with `extra` and its spec in the header."""
        header, payload = self.dump()
        write_atomic(path, {**extra, **header, **self.spec(), "dim": self.dim}, payload)
