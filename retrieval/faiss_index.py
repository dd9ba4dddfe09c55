"""The FAISS dense index: exact inner product by default, HNSW by setting, keyed by chunk ids.

Both wrap the inner index in an IndexIDMap2 so that FAISS itself maps chunk ids. HNSW graphs
cannot remove points, so deletes there become tombstones, excluded at search time through an
ID selector and saved with the index; once they pass a quarter of the graph it is rebuilt
from its own stored vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from retrieval.dense import DenseIndex
from retrieval.errors import IndexFileError
from retrieval.index_file import read_checked, write_atomic

KINDS = ("flat", "hnsw")
# Below this many allowed ids an exact scan of just those vectors beats a filtered graph walk,
# which can also miss results when the filter is very selective.
EXACT_SUBSET = 4096
COMPACT_FRACTION = 0.25


class FaissIndex(DenseIndex):
    """A FAISS IndexIDMap2 over IndexFlatIP ("flat") or IndexHNSWFlat ("hnsw")."""

    def __init__(self, dim: int, kind: str = "flat", hnsw_m: int = 32,
                 ef_construction: int = 80, ef_search: int = 128) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}; choose one of {KINDS}")
        self.dim, self.kind = dim, kind
        self.hnsw_m, self.ef_construction, self.ef_search = hnsw_m, ef_construction, ef_search
        self._index = self._empty()
        self._tombstones: set[int] = set()

    def _empty(self) -> Any:
        if self.kind == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        inner = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = self.ef_construction
        return faiss.IndexIDMap2(inner)

    def _id_map(self) -> np.ndarray:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under new ids."""
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, np.float32),
                                     np.ascontiguousarray(ids, np.int64))

    def delete(self, ids: np.ndarray) -> None:
        """Remove ids (HNSW: tombstone them, compacting when they pile up)."""
        ids = np.ascontiguousarray(ids, np.int64)
        if not len(ids):
            return
        if self.kind == "flat":
            self._index.remove_ids(ids)
            return
        present = np.intersect1d(self._id_map(), ids)
        self._tombstones.update(int(i) for i in present)
        if len(self._tombstones) > COMPACT_FRACTION * max(1, self._index.ntotal):
            self._compact()

    def _compact(self) -> None:
        id_map = self._id_map()
        vectors = self._index.index.reconstruct_n(0, self._index.ntotal)
        keep = ~np.isin(id_map, np.fromiter(self._tombstones, np.int64))
        self._index, self._tombstones = self._empty(), set()
        self.add(id_map[keep], vectors[keep])

    def ids(self) -> np.ndarray:
        """Every live id, sorted."""
        live = self._id_map()
        if self._tombstones:
            live = live[~np.isin(live, np.fromiter(self._tombstones, np.int64))]
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
            allowed = np.setdiff1d(allowed, np.fromiter(self._tombstones, np.int64))
        if self.count() == 0 or (allowed is not None and len(allowed) == 0):
            return [[] for _ in queries]
        if allowed is not None and self.kind == "hnsw" and len(allowed) <= EXACT_SUBSET:
            return self._exact_subset(queries, k, allowed)
        selector = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, np.int64))
        elif self._tombstones:
            dead = faiss.IDSelectorBatch(np.fromiter(self._tombstones, np.int64))
            selector = faiss.IDSelectorNot(dead)
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k), sel=selector)
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        scores, ids = self._index.search(queries, min(k, self.count()), params=params)
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

    def save(self, path: Path, extra: dict[str, object]) -> None:
        """Write the index, its settings and tombstones crash-safely."""
        header = {**extra, "kind": self.kind, "dim": self.dim, "hnsw_m": self.hnsw_m,
                  "ef_construction": self.ef_construction,
                  "tombstones": sorted(self._tombstones)}
        write_atomic(path, header, faiss.serialize_index(self._index).tobytes())

    @classmethod
    def load(cls, path: Path, dim: int) -> tuple[FaissIndex, dict[str, object]]:
        """The index saved at `path`, or IndexFileError when it is torn or mismatched."""
        header, payload = read_checked(path)
        if header.get("dim") != dim or header.get("kind") not in KINDS:
            raise IndexFileError(f"{path} holds a {header.get('kind')} index of another dim")
        index = cls(dim, str(header["kind"]), int(header["hnsw_m"]),
                    int(header["ef_construction"]))
        try:
            index._index = faiss.deserialize_index(np.frombuffer(payload, np.uint8))
        except RuntimeError as exc:
            raise IndexFileError(f"{path}: FAISS cannot read it: {exc}") from exc
        index._tombstones = {int(i) for i in header["tombstones"]}
        return index, header
