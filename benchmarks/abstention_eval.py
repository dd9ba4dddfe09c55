"""Choose the abstention rule on tuning questions: when is the store's evidence too weak?

Usage: .venv/bin/python benchmarks/abstention_eval.py [--kb artifacts/kb/default] [--out DIR]

Answerable: the KB question set's `tune` split (every phrasing). Unanswerable: questions about
invented entities (`evaluation.fictional`, a different slice from the one
benchmarks/facts_eval.py reports on) and the open-world questions of the routing set. For each
rule (a minimum dense score, with and without the unknown-name check of `service.grounding`)
it prints the abstention rate on both; the service's defaults are the rule that abstains most
on unanswerable questions while abstaining on at most 2% of answerable ones.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from cogcore.paths import artifacts_dir, default_kb_dir
from evaluation.fictional import fictional_entities
from retrieval.knowledge_base import KnowledgeBase
from retrieval.questions import question_set
from service.grounding import names
from service.routing.questions import OPEN_WORLD

MAX_FALSE_ABSTAIN = 0.02


def signals(kb: KnowledgeBase, questions: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Best dense score and number of unknown names, per question."""
    best = np.array([max((h.score for h in hits), default=0.0)
                     for hits in kb.search_batch(questions, k=1, mode="dense")])
    unknown = np.array([len(kb.unknown_terms(" ".join(names(q)))) if names(q) else 0
                        for q in questions])
    return best, unknown


def abstention_rate(best: np.ndarray, unknown: np.ndarray, min_score: float,
                    use_names: bool) -> float:
    """Share of questions a rule abstains on."""
    return float(((best < min_score) | (use_names & (unknown > 0))).mean())


def main() -> None:
    """Print the abstention rates of each candidate rule and the chosen one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=Path, default=default_kb_dir())
    parser.add_argument("--out", type=Path, default=artifacts_dir() / "reports" / "abstention")
    args = parser.parse_args()
    answerable = [q.text for q in question_set() if q.split == "tune"]
    invented = [next(f for f in e.facts if f.askable).question
                for e in fictional_entities()[100:]]
    unanswerable = invented + list(OPEN_WORLD)
    with KnowledgeBase.open(args.kb, readonly=True) as kb:
        a_best, a_unknown = signals(kb, answerable)
        u_best, u_unknown = signals(kb, unanswerable)
    rows = [
        {"min_score": float(t), "unknown_names": use,
         "abstain_unanswerable": abstention_rate(u_best, u_unknown, t, use),
         "abstain_answerable": abstention_rate(a_best, a_unknown, t, use)}
        for t in np.round(np.arange(0.30, 0.61, 0.02), 2) for use in (False, True)
    ]
    allowed = [r for r in rows if r["abstain_answerable"] <= MAX_FALSE_ABSTAIN]
    chosen = max(allowed, key=lambda r: (r["abstain_unanswerable"], -r["abstain_answerable"]))
    report = {"n_answerable": len(answerable), "n_unanswerable": len(unanswerable),
              "chosen": chosen, "rules": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "abstention.json").write_text(json.dumps(report, indent=2) + "\n")
    for r in rows:
        print(f"min_score {r['min_score']:.2f} names {r['unknown_names']!s:5} "
              f"unanswerable {r['abstain_unanswerable']:.3f} "
              f"answerable {r['abstain_answerable']:.3f}")
    print("chosen:", json.dumps(chosen))


if __name__ == "__main__":
    main()
