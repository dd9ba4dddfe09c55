"""Dense index backends by name: adding one is a new file implementing `DenseIndex` and a line
in BACKENDS. Saved index files name their kind, and loading one asks that kind's backend.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.errors import IndexFileError, UnknownIndexKindError
from retrieval.index_file import read_checked

if TYPE_CHECKING:
    from retrieval.dense import DenseIndex

# Import paths rather than classes, so that listing the kinds (the command line's --index
# choices) does not import FAISS.
BACKENDS: dict[str, str] = {
    "flat": "retrieval.faiss_index:FlatIndex",
    "hnsw": "retrieval.faiss_index:HNSWIndex",
}
KINDS = tuple(BACKENDS)
DEFAULT_KIND = "flat"


def backend(kind: str) -> type[DenseIndex]:
    """The class that implements index `kind`; UnknownIndexKindError for any other name."""
    if kind not in BACKENDS:
        raise UnknownIndexKindError(f"unknown index kind {kind!r}; choose one of {KINDS}")
    module, _, name = BACKENDS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def index_spec(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Kind and build knobs of index `kind` made with `params`, as `DenseIndex.spec` gives."""
    return {"kind": kind, **backend(kind).build_params(params)}


def new_index(spec: Mapping[str, Any], dim: int, params: Mapping[str, Any]) -> DenseIndex:
    """An empty index as `spec` says; `params` adds search-time knobs."""
    return backend(spec["kind"])(dim, {**params, **spec})


def load_index(path: Path, dim: int, params: Mapping[str, Any]) -> DenseIndex:
    """The index saved at `path`, by the backend its header names; IndexFileError if it is
    torn, of another dim or of a kind no backend implements."""
    header, payload = read_checked(path)
    kind = header.get("kind")
    if kind not in BACKENDS or header.get("dim") != dim:
        raise IndexFileError(f"{path} holds a {kind} index of dim {header.get('dim')}, "
                             f"not one of {KINDS} of dim {dim}")
    cls = backend(kind)
    # Build knobs as the file was made; search-time ones from `params`.
    index = cls(dim, {**params, **cls.build_params(header)})
    try:
        index.restore(header, payload)
    except IndexFileError as exc:
        raise IndexFileError(f"{path}: {exc}") from exc
    return index
