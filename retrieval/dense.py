"""The dense index interface: a second backend is one new file that implements it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np


class DenseIndex(ABC):
    """Inner-product search over unit vectors keyed by int64 chunk ids."""

    kind: str

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
    def save(self, path: Path, extra: dict[str, object]) -> None:
        """Write the index crash-safely to `path`, with `extra` in its header."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path, dim: int) -> tuple[DenseIndex, dict[str, object]]:
        """The index at `path` and its header; IndexFileError if the file is not whole."""
