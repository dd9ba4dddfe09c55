"""Which fusion of dense and BM25 rankings finds the answering document, inverse questions too.

Usage: .venv/bin/python benchmarks/fusion_eval.py [--kb artifacts/kb/default] [--out FILE]

Reciprocal-rank fusion throws away how far ahead a ranking's first hit is: for "Which element
has atomic number 81?" BM25 ranks Thallium near the top on the rare term "81", the dense
ranking (blind to numbers) does not, and the fused list loses it. Each candidate fusion here is
computed from the same two rankings (depth 50) on three question sets: inverse questions
(`retrieval.questions.inverse_questions`, tune and test halves with disjoint phrasings and
entities) and the never-tuned split of the forward question set (the figure docs/retrieval.md
reports, which a new fusion must keep). Choices are made on `inverse tune` only.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from retrieval.embedder import CachedEncoder, Embedder
from retrieval.fusion import Ranking, reciprocal_rank_fusion, weighted_fusion
from retrieval.knowledge_base import KnowledgeBase
from retrieval.questions import Question, inverse_questions, question_set

DEPTH = 50
Fusion = Callable[[Ranking, Ranking], Ranking]


def _rrf(bm25_weight: float) -> Fusion:
    return lambda d, b: reciprocal_rank_fusion([d, b], DEPTH, weights=(1.0, bm25_weight))


def _scores(bm25_share: float) -> Fusion:
    return lambda d, b: weighted_fusion(d, b, bm25_share)


CANDIDATES: dict[str, Fusion] = {
    "dense": lambda d, b: d,
    "bm25": lambda d, b: b,
    "rrf (today)": _rrf(1.0),
    **{f"rrf, bm25 x{w:g}": _rrf(w) for w in (1.5, 2.0, 3.0)},
    **{f"relative scores, bm25 share {a:g}": _scores(a) for a in (0.3, 0.5, 0.6, 0.7, 0.8, 0.9)},
}


def rankings(kb: KnowledgeBase, questions: Sequence[Question]
             ) -> tuple[list[tuple[Ranking, Ranking]], dict[int, str]]:
    """(dense, bm25) chunk rankings of every question, as document ids with scores."""
    texts = [q.text for q in questions]
    dense = kb.search_batch(texts, k=DEPTH, mode="dense")
    sparse = kb.search_batch(texts, k=DEPTH, mode="bm25")
    # Recall is counted by document: each chunk id seen maps to its document.
    lookup = {h.chunk_id: h.document_id for hits in dense + sparse for h in hits}
    return [([(h.chunk_id, h.score) for h in d], [(h.chunk_id, h.score) for h in b])
            for d, b in zip(dense, sparse, strict=True)], lookup


def recall(fused: list[Ranking], questions: Sequence[Question], lookup: dict[int, str],
           k: int) -> float:
    """Share of questions whose answering document is in the top k."""
    hits = [q.entity_id in [lookup[c] for c, _ in ranking[:k]]
            for ranking, q in zip(fused, questions, strict=True)]
    return round(sum(hits) / len(hits), 4)


def main() -> None:
    """Every candidate on every set: recall@1 and @5; print a table, save JSON."""
    from cogcore.paths import default_kb_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=Path, default=default_kb_dir())
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    inverse = inverse_questions()
    sets = {"inverse tune": [q for q in inverse if q.split == "tune"],
            "inverse test": [q for q in inverse if q.split == "test"],
            "forward test": [q for q in question_set() if q.split == "test"]}
    report: dict = {"command": "benchmarks/fusion_eval.py", "sets": {n: len(q) for n, q in
                                                                    sets.items()}, "rows": {}}
    with KnowledgeBase.open(args.kb, embedder=CachedEncoder(Embedder(), max_entries=None),
                            readonly=True) as kb:
        for name, questions in sets.items():
            pairs, lookup = rankings(kb, questions)
            for candidate, fuse in CANDIDATES.items():
                fused = [fuse(d, b) for d, b in pairs]
                report["rows"].setdefault(candidate, {})[name] = {
                    "recall@1": recall(fused, questions, lookup, 1),
                    "recall@5": recall(fused, questions, lookup, 5)}
    print("| fusion | " + " | ".join(f"{s} r@1 | r@5" for s in sets) + " |")
    for candidate, row in report["rows"].items():
        print(f"| {candidate} | " + " | ".join(
            f"{row[s]['recall@1']:.3f} | {row[s]['recall@5']:.3f}" for s in sets) + " |")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
