"""Reciprocal rank fusion (Cormack et al., 2009): combine rankings without calibrating scores."""

from __future__ import annotations

from collections.abc import Sequence


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[tuple[int, float]]], k: int, rrf_k: int = 60
) -> list[tuple[int, float]]:
    """The top `k` ids by the sum over rankings of 1 / (rrf_k + rank), rank counted from 1."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (item, _score) in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (rrf_k + rank)
    # Ties (same fused score) keep the order in which ids were first seen: dense first.
    return sorted(fused.items(), key=lambda pair: -pair[1])[:k]
