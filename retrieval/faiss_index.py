"""The FAISS dense indexes, keyed by chunk ids: exact inner product ("flat") and HNSW ("hnsw").

Both wrap the inner index in an IndexIDMap2 so that FAISS itself maps chunk ids. HNSW graphs
cannot remove points, so deletes there become tombstones, excluded at search time through an
ID selector and saved with the index; once they pass a quarter of the graph it is rebuilt
from its own stored vectors.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import faiss
import numpy as np

from retrieval.dense import DenseIndex
from retrieval.errors import IndexFileError

# Below this many allowed ids an exact scan of just those vectors beats a filtered graph walk,
# which can also miss results when the filter is very selective.
EXACT_SUBSET = 4096
COMPACT_FRACTION = 0.25
# Fewer queries than this are searched on the calling thread alone. FAISS's OpenMP team gains
# nothing on a query or two (it splits work by query), and on a busy machine (the engine's own
# threads beside it) its spinning workers turned a 0.03 ms search of the default knowledge
# base into 30 ms p50 and 0.7 s at worst. omp_set_num_threads, called outside a parallel
# region, sets the calling thread's own setting: other threads' searches keep theirs.
PARALLEL_QUERIES = 20


class FaissIndex(DenseIndex):
    """What both kinds share: an IndexIDMap2 around the inner index, plus tombstoned ids."""

    exact_subset: ClassVar[int] = 0  # a filter this small is scanned exactly, not searched

    def __init__(self, dim: int, params: Mapping[str, Any]) -> None:
        super().__init__(dim, params)
        self._index = self._empty()
        self._tombstones: set[int] = set()  # only HNSW makes any (it cannot remove points)

    @abstractmethod
    def _empty(self) -> Any:
        """A new IndexIDMap2 around an empty inner index of this kind."""

    @abstractmethod
    def _search_params(self, k: int, selector: Any) -> Any:
        """FAISS search parameters for a top-k search restricted by `selector` (or None)."""

    def _id_map(self) -> np.ndarray:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def _dead(self) -> np.ndarray:
        return np.fromiter(self._tombstones, np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under new ids."""
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, np.float32),
                                     np.ascontiguousarray(ids, np.int64))

    def ids(self) -> np.ndarray:
        """Every live id, sorted."""
        live = self._id_map()
        if self._tombstones:
            live = live[~np.isin(live, self._dead())]
        return np.sort(live)

    def count(self) -> int:
        """Number of live vectors."""
        return int(self._index.ntotal) - len(self._tombstones)

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        """Top-k (id, inner product) per query, best first."""
        queries = np.ascontiguousarray(queries, np.float32)
        if allowed is not None and self._tombstones:
            allowed = np.setdiff1d(allowed, self._dead())
        if self.count() == 0 or (allowed is not None and len(allowed) == 0):
            return [[] for _ in queries]
        if allowed is not None and len(allowed) <= self.exact_subset:
            return self._exact_subset(queries, k, allowed)
        selector = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, np.int64))
        elif self._tombstones:
            selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(self._dead()))
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1 if len(queries) < PARALLEL_QUERIES else threads)
        try:
            scores, ids = self._index.search(queries, min(k, self.count()),
                                             params=self._search_params(k, selector))
        finally:
            faiss.omp_set_num_threads(threads)
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]

    def _exact_subset(self, queries: np.ndarray, k: int, allowed: np.ndarray):
        id_map = self._id_map()
        positions = np.flatnonzero(np.isin(id_map, allowed))
        vectors = np.stack([self._index.index.reconstruct(int(p)) for p in positions])
        scores = queries @ vectors.T
        order = np.argsort(-scores, axis=1)[:, :k]
        return [[(int(id_map[positions[j]]), float(row[j])) for j in top]
                for row, top in zip(scores, order, strict=True)]

    def dump(self) -> tuple[dict[str, Any], bytes]:
        """Tombstones for the header, the serialized FAISS index as the payload."""
        return ({"tombstones": sorted(self._tombstones)},
                faiss.serialize_index(self._index).tobytes())

    def restore(self, header: Mapping[str, Any], payload: bytes) -> None:
        """Take a serialized FAISS index and its tombstones; IndexFileError if FAISS refuses."""
        try:
            self._index = faiss.deserialize_index(np.frombuffer(payload, np.uint8))
        except RuntimeError as exc:
            raise IndexFileError(f"FAISS cannot read it: {exc}") from exc
        self._tombstones = {int(i) for i in header["tombstones"]}


class FlatIndex(FaissIndex):
    """IndexFlatIP: exact inner product, removes in place."""

    kind = "flat"

    @classmethod
    def build_params(cls, params: Mapping[str, Any]) -> dict[str, int]:
        """None: an exact scan has nothing to tune."""
        return {}

    def _empty(self) -> Any:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def _search_params(self, k: int, selector: Any) -> Any:
        return faiss.SearchParameters(sel=selector) if selector is not None else None

    def delete(self, ids: np.ndarray) -> None:
        """Remove ids."""
        if len(ids):
            self._index.remove_ids(np.ascontiguousarray(ids, np.int64))


class HNSWIndex(FaissIndex):
    """IndexHNSWFlat: approximate graph search; deletes are tombstones, compacted in bulk."""

    kind = "hnsw"
    exact_subset = EXACT_SUBSET
    DEFAULTS: ClassVar[dict[str, int]] = {"hnsw_m": 32, "ef_construction": 80}

    def __init__(self, dim: int, params: Mapping[str, Any]) -> None:
        super().__init__(dim, params)
        # A search-time knob: taken from each open's settings, never recorded.
        self.ef_search = int(params.get("ef_search", 128))

    @classmethod
    def build_params(cls, params: Mapping[str, Any]) -> dict[str, int]:
        """Graph degree M and efConstruction, from `params` or the defaults."""
        return {key: int(params.get(key, default)) for key, default in cls.DEFAULTS.items()}

    def _empty(self) -> Any:
        inner = faiss.IndexHNSWFlat(self.dim, self.params["hnsw_m"], faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = self.params["ef_construction"]
        return faiss.IndexIDMap2(inner)

    def _search_params(self, k: int, selector: Any) -> Any:
        return faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k), sel=selector)

    def delete(self, ids: np.ndarray) -> None:
        """Tombstone ids, compacting the graph when they pile up."""
        present = np.intersect1d(self._id_map(), np.ascontiguousarray(ids, np.int64))
        self._tombstones.update(int(i) for i in present)
        if len(self._tombstones) > COMPACT_FRACTION * max(1, self._index.ntotal):
            self._compact()

    def _compact(self) -> None:
        id_map = self._id_map()
        vectors = self._index.index.reconstruct_n(0, self._index.ntotal)
        keep = ~np.isin(id_map, self._dead())
        self._index, self._tombstones = self._empty(), set()
        self.add(id_map[keep], vectors[keep])
