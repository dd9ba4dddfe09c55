"""Routing accuracy of candidate decision rules on the labelled set's never-tuned split.

Usage: .venv/bin/python benchmarks/routing_eval.py [--kb artifacts/kb/default] [--out DIR]

Rules compared in one run, each tuned on the `tune` split only:
- `centroid`: nearest class centroid of the query embedding;
- `classifier`: logistic regression on the query embedding;
- `retrieval`: `facts` when the knowledge base's best dense score clears a threshold;
- `classifier_or_retrieval`: either of the two (the rule the service uses); its threshold is
  chosen on grouped cross-validated classifier outputs, so that no phrasing is scored by a
  classifier that saw it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold

from cogcore.paths import artifacts_dir
from retrieval.embedder import Embedder
from retrieval.knowledge_base import KnowledgeBase
from service.routing.questions import RoutingQuestion, routing_questions
from service.routing.router import Router


def best_threshold(scores: np.ndarray, is_facts: np.ndarray, base: np.ndarray) -> float:
    """The threshold t maximizing accuracy of `base | (scores >= t)`; the highest of ties."""
    candidates = np.unique(np.round(scores, 3))
    accs = np.array([((base | (scores >= t)) == is_facts).mean() for t in candidates])
    return float(candidates[np.flatnonzero(accs == accs.max())[-1]])


def cross_validated(embedder: Embedder, tune: list[RoutingQuestion]) -> np.ndarray:
    """P(facts) for each tuning question from a classifier that never saw its phrasing."""
    out = np.zeros(len(tune))
    folds = GroupKFold(n_splits=5).split(tune, groups=[q.template for q in tune])
    for train, held in folds:
        router = Router(embedder, training=[tune[i] for i in train])
        out[held] = router.probabilities([tune[i].text for i in held])
    return out


def top_scores(kb: KnowledgeBase, texts: list[str]) -> np.ndarray:
    """The best dense-search score of each text."""
    hits = kb.search_batch(texts, k=1, mode="dense")
    return np.array([max((h.score for h in row), default=0.0) for row in hits])


def main() -> None:
    """Print and save each rule's accuracy on the test split, with its errors."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=Path, default=artifacts_dir() / "kb" / "default")
    parser.add_argument("--out", type=Path, default=artifacts_dir() / "reports" / "routing")
    args = parser.parse_args()

    questions = routing_questions()
    tune = [q for q in questions if q.split == "tune"]
    test = [q for q in questions if q.split == "test"]
    is_facts = np.array([q.route == "facts" for q in tune])
    truth = np.array([q.route == "facts" for q in test])
    embedder = Embedder()
    kb = KnowledgeBase.open(args.kb, embedder=embedder, readonly=True)
    tune_scores, test_scores = (top_scores(kb, [q.text for q in qs]) for qs in (tune, test))
    kb.close()

    vectors = embedder.encode([q.text for q in tune])
    centroids = np.stack([vectors[is_facts].mean(0), vectors[~is_facts].mean(0)])
    centroid = (embedder.encode([q.text for q in test]) @ centroids.T).argmax(1) == 0
    router = Router(embedder, training=tune)
    classifier = router.probabilities([q.text for q in test]) >= 0.5
    alone = best_threshold(tune_scores, is_facts, np.zeros_like(is_facts))
    combined = best_threshold(tune_scores, is_facts, cross_validated(embedder, tune) >= 0.5)
    predictions = {
        "centroid": centroid,
        "classifier": classifier,
        "retrieval": test_scores >= alone,
        "classifier_or_retrieval": classifier | (test_scores >= combined),
    }
    report = {
        "n_tune": len(tune), "n_test": len(test),
        "thresholds": {"retrieval": alone, "classifier_or_retrieval": combined},
        "accuracy": {name: float((p == truth).mean()) for name, p in predictions.items()},
        "errors": {
            name: [q.text for q, ok in zip(test, p == truth, strict=True) if not ok]
            for name, p in predictions.items()
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "routing.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("n_tune", "n_test", "thresholds", "accuracy")},
                     indent=2))
    print("classifier_or_retrieval errors:", report["errors"]["classifier_or_retrieval"])


if __name__ == "__main__":
    main()
