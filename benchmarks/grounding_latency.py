"""What the embedding cache saves a grounded request: `Grounding.ground` with and without it.

Usage: .venv/bin/python benchmarks/grounding_latency.py [--kb artifacts/kb/default] [--n 200]
           [--value-weight 0]

Routing, the abstention check, the hybrid search and the choice of evidence sentences each
need the question's vector; without a cache each embeds it again. The same never-tuned KB
questions go through the service's own grounding (default settings, the real embedder and
knowledge base) once per configuration, the configurations taking turns question by question
so that the shared machine's load falls on both alike. Each configuration starts with an empty
cache and sees each question once: the saving is within one request, not from repeats. No
language model runs. `--value-weight` sets the evidence scorer's value-free term
(`service/evidence_sentences.py`; 0: the whole-sentence scorer alone).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

from cogcore.paths import artifacts_dir, default_kb_dir
from retrieval.embedder import CachedEncoder, Embedder
from retrieval.knowledge_base import KnowledgeBase
from retrieval.questions import question_set
from service.evidence_sentences import VALUE_FREE_WEIGHT
from service.grounding import Grounding
from service.routing.router import Router
from service.settings import GroundingSettings

CONFIGS = {"no cache": 0, "cache": 4096}  # max_entries of the CachedEncoder


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile, in milliseconds."""
    return 1000 * statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    """Time `ground` per question in each configuration; print and save p50/p90 and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=Path, default=default_kb_dir())
    parser.add_argument("--n", type=int, default=200, help="never-tuned questions to ground")
    parser.add_argument("--value-weight", type=float, default=VALUE_FREE_WEIGHT,
                        help="the evidence scorer's value-free term (0: off)")
    parser.add_argument("--out", type=Path, default=artifacts_dir() / "reports" / "grounding")
    args = parser.parse_args()
    test = [q for q in question_set() if q.split == "test" and q.phrasing == "question"]
    questions = [q.text for q in random.Random(11).sample(test, min(args.n, len(test)))]
    embedder = Embedder()
    groundings = {}
    for name, entries in CONFIGS.items():
        encoder = CachedEncoder(embedder, max_entries=entries)
        kb = KnowledgeBase.open(args.kb, embedder=encoder, readonly=True)
        groundings[name] = Grounding(kb, Router(encoder), GroundingSettings(),
                                     value_weight=args.value_weight)
    for grounding in groundings.values():
        grounding.ground([questions[0]])  # warm-up: first search loads the indexes
    times: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for i, question in enumerate(questions):
        for name in CONFIGS if i % 2 == 0 else reversed(CONFIGS):
            start = time.perf_counter()
            groundings[name].ground([question])
            times[name].append(time.perf_counter() - start)
    for grounding in groundings.values():
        grounding.kb.close()
    report = {"n": len(questions), "value_weight": args.value_weight, "configs": {
        name: {"p50_ms": round(percentile(t, 50), 2), "p90_ms": round(percentile(t, 90), 2),
               "mean_ms": round(1000 * statistics.fmean(t), 2)} for name, t in times.items()}}
    base, cached = report["configs"]["no cache"], report["configs"]["cache"]
    report["cache_over_no_cache"] = {k: round(cached[k] / base[k], 3) for k in base}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "grounding_latency.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
