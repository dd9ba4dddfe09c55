"""What every knowledge-base backend does the same way: plan writes (chunk and embed what
changed), check search arguments, fuse the dense and lexical rankings, refuse a foreign embedder.

The embedded backend (`retrieval/knowledge_base.py`) and the PostgreSQL one
(`retrieval/postgres/`) both call these, so the two give the same answers to the same calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from retrieval.chunker import ChunkSettings, chunk_text
from retrieval.documents import ValidDocument, check_text
from retrieval.embedder import TextEncoder
from retrieval.errors import EmbedderMismatchError, InvalidSearchError
from retrieval.fusion import Ranking, reciprocal_rank_fusion, weighted_fusion
from retrieval.store import Filters, WritePlan

if TYPE_CHECKING:
    from retrieval.knowledge_base import Hit, KBSettings

MODES = ("dense", "bm25", "hybrid")


class SearchOne:
    """`search` for one query, on top of a backend's `search_batch`."""

    def search(self, query: str, k: int = 5, mode: str = "hybrid",
               filters: Filters | None = None) -> list[Hit]:
        """The best `k` chunks for `query` by dense, BM25 or fused ranking (`KBSettings.fusion`)."""
        return self.search_batch([query], k, mode, filters)[0]  # type: ignore[attr-defined]


class StateStore(Protocol):
    """What `check_embedder` needs of a store: its key-value state."""

    def get_state(self, key: str) -> str | None: ...

    def set_state(self, key: str, value: str) -> None: ...


def plan_writes(docs: list[ValidDocument], existing: dict[str, tuple[str, str, int]],
                embedder: TextEncoder, chunking: ChunkSettings
                ) -> tuple[list[WritePlan], dict[str, int]]:
    """Chunk and embed what changed (metadata-only changes skip the embedder); chunk counts."""
    plans: list[WritePlan] = []
    counts: dict[str, int] = {}
    to_embed: list[tuple[ValidDocument, list[str]]] = []
    for doc in docs:
        old = existing.get(doc.id)
        if old and old[0] == doc.text_hash:
            counts[doc.id] = old[2]
            if old[1] != doc.metadata_json:
                plans.append(WritePlan(doc, None, None))
            continue
        chunks = chunk_text(doc.text, embedder.count_tokens_batch, chunking)
        to_embed.append((doc, chunks))
        counts[doc.id] = len(chunks)
    vectors = embedder.encode([c for _, chunks in to_embed for c in chunks])
    start = 0
    for doc, chunks in to_embed:
        plans.append(WritePlan(doc, chunks, vectors[start : start + len(chunks)]))
        start += len(chunks)
    return plans, counts


def _check_search(s: KBSettings, queries: list[str], k: int, mode: str,
                 filters: Filters | None) -> list[str]:
    """The query texts, once mode, k, every query and the filters are known to be usable."""
    if mode not in MODES:
        raise InvalidSearchError(f"unknown search mode {mode!r}; choose one of {MODES}")
    if not isinstance(k, int) or not 1 <= k <= s.max_k:
        raise InvalidSearchError(f"k must be an integer from 1 to {s.max_k}")
    texts = [check_text(q, s.max_query_bytes, what="query") for q in queries]
    _check_filters(filters)
    return texts


def prepare_search(s: KBSettings, embedder: TextEncoder, queries: list[str], k: int, mode: str,
                   filters: Filters | None) -> tuple[list[str], np.ndarray | None, int]:
    """Checked query texts, their vectors (None for BM25 alone) and the depth to rank to."""
    texts = _check_search(s, queries, k, mode, filters)
    vectors = embedder.encode(texts) if mode != "bm25" else None
    return texts, vectors, k if mode != "hybrid" else max(k, s.fusion_depth)


def fuse(dense: Ranking, sparse: Ranking, k: int, s: KBSettings) -> list[tuple[int, float]]:
    """The hybrid ranking of one query, by the fusion the settings name."""
    if s.fusion == "rrf":
        return reciprocal_rank_fusion([dense, sparse], k, s.rrf_k)
    return weighted_fusion(dense, sparse, s.sparse_share, k)


def check_embedder(store: StateStore, embedder: TextEncoder, readonly: bool) -> None:
    """Refuse an embedder whose vectors would not be comparable with the stored ones."""
    wanted = f"{embedder.name}/{embedder.dim}"
    recorded = store.get_state("embedder")
    if recorded is None and not readonly:
        store.set_state("embedder", wanted)
    elif recorded is not None and recorded != wanted:
        raise EmbedderMismatchError(f"knowledge base was built with {recorded}, not {wanted}")


def _check_filters(filters: object) -> None:
    """Filters are {key: value} or {key: [values]} with JSON scalar values."""
    if filters is None:
        return
    if not isinstance(filters, dict):
        raise InvalidSearchError("filters must be an object of key: value or key: [values]")
    for key, value in filters.items():
        values = value if isinstance(value, list) else [value]
        if not isinstance(key, str) or not all(
            v is None or isinstance(v, str | int | float | bool) for v in values
        ):
            raise InvalidSearchError(f"filter {key!r} must be a scalar or a list of scalars")
