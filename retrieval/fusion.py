"""Fusing a dense and a lexical ranking into one: by ranks (RRF) or by normalized scores.

Reciprocal rank fusion (Cormack et al., 2009) needs no calibration, but it throws away how far
ahead a ranking's first hit is; relative score fusion (min-max per ranking, then a weighted
sum, as Weaviate's `relativeScoreFusion`) keeps it. `benchmarks/fusion_eval.py` compares them.
"""

from __future__ import annotations

from collections.abc import Sequence

Ranking = Sequence[tuple[int, float]]  # (id, score), best first


def reciprocal_rank_fusion(
    rankings: Sequence[Ranking], k: int, rrf_k: int = 60,
    weights: Sequence[float] | None = None,
) -> list[tuple[int, float]]:
    """The top `k` ids by the sum over rankings of weight / (rrf_k + rank), rank from 1."""
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for rank, (item, _score) in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (rrf_k + rank)
    # Ties (same fused score) keep the order in which ids were first seen: dense first.
    return sorted(fused.items(), key=lambda pair: -pair[1])[:k]


def _min_max(ranking: Ranking) -> dict[int, float]:
    if not ranking:
        return {}
    scores = [score for _, score in ranking]
    low, span = min(scores), max(scores) - min(scores)
    return {item: (score - low) / span if span else 1.0 for item, score in ranking}


def weighted_fusion(dense: Ranking, sparse: Ranking, sparse_share: float,
                    k: int | None = None) -> list[tuple[int, float]]:
    """The top `k` ids by (1 - share) x dense + share x sparse, each min-max scaled to [0, 1]."""
    scaled_dense, scaled_sparse = _min_max(dense), _min_max(sparse)
    fused = {item: (1.0 - sparse_share) * scaled_dense.get(item, 0.0)
             + sparse_share * scaled_sparse.get(item, 0.0)
             for item in [*scaled_dense, *scaled_sparse]}
    ranked = sorted(fused.items(), key=lambda pair: -pair[1])
    return ranked if k is None else ranked[:k]
