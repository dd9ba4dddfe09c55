"""Choose how the reader's evidence is cut: which sentences of the retrieved passages it reads.

Usage: .venv/bin/python benchmarks/evidence_eval.py [--kb artifacts/kb/default] [--n 1000]

On questions of the KB question set's `tune` split (the question phrasing, as users ask), the
service's own retrieval (hybrid, k passages) and sentence choice (`service.grounding.
closest_sentences`) run for each candidate setting: sentences kept, and the weight of the
question's words beside the embedding's cosine. A setting scores when the evidence it keeps
holds the answer, and better when that is all it keeps (a 135M reader confuses the facts beside
it, docs/facts.md). No language model runs: this measures the evidence, not the reader.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from cogcore.facts import mentions
from cogcore.paths import artifacts_dir, default_kb_dir
from retrieval.knowledge_base import KnowledgeBase
from retrieval.questions import question_set
from service.grounding import closest_sentences
from service.settings import GroundingSettings

WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0)
COUNTS = (1, 2, 3)


def main() -> None:
    """Print, per setting, how often the kept evidence holds the answer; save the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=Path, default=default_kb_dir())
    parser.add_argument("--n", type=int, default=1000, help="tune questions to sample")
    parser.add_argument("--out", type=Path, default=artifacts_dir() / "reports" / "evidence")
    args = parser.parse_args()
    tune = [q for q in question_set() if q.split == "tune" and q.phrasing == "question"]
    sample = random.Random(3).sample(tune, min(args.n, len(tune)))
    defaults = GroundingSettings()
    rows = []
    with KnowledgeBase.open(args.kb, readonly=True) as kb:
        hits = kb.search_batch([q.text for q in sample], k=defaults.retrieval_k,
                               mode=defaults.retrieval_mode)
        for count in COUNTS:
            for weight in WEIGHTS:
                kept = [closest_sentences(q.text, h, kb.embedder.encode, count, weight)
                        for q, h in zip(sample, hits, strict=True)]
                found = [any(mentions(s.text, q.answer) and s.document_id == q.entity_id for s in k)
                         for q, k in zip(sample, kept, strict=True)]
                rows.append({"sentences": count, "lexical_weight": weight,
                             "answer_kept": sum(found) / len(found)})
                print(f"sentences {count} lexical weight {weight:.2f}: answer kept "
                      f"{rows[-1]['answer_kept']:.3f}")
    one = [r for r in rows if r["sentences"] == 1]
    chosen = max(one, key=lambda r: (r["answer_kept"], -r["lexical_weight"]))
    report = {"n": len(sample), "k": defaults.retrieval_k, "mode": defaults.retrieval_mode,
              "rows": rows,
              "chosen_for_one_sentence": chosen}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "evidence.json").write_text(json.dumps(report, indent=2) + "\n")
    print("chosen:", json.dumps(chosen))


if __name__ == "__main__":
    main()
