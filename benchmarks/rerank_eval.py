"""The evidence sentence chosen with and without the likelihood re-rank, offline (no generation).

Usage: .venv/bin/python benchmarks/rerank_eval.py [--model DIR] [--kb DIR] [--n 30]
           [--only tune,own] [--weights 0,0.1,0.25,0.5,1] [--margins 0.3,inf]

The tune side of `benchmarks/paraphrase_eval.py` (never `heldout`) goes through the service's
own grounding up to its passages; the sentences are scored as the service scores them
(`service.evidence_sentences.sentence_scores`), and the best two, when within the margin, are
re-ranked by the model's log P(question | sentence) per token
(`service.question_likelihood`) at each weight. Counted: questions whose chosen sentence is
from the answering entity's document and holds the answer, of those that were not refused.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from paraphrase_eval import correct, questions
from transformers import AutoModelForCausalLM, AutoTokenizer

from cogcore.paths import artifacts_dir, default_kb_dir
from retrieval.embedder import CachedEncoder, Embedder
from retrieval.knowledge_base import KnowledgeBase
from service import question_likelihood as ql
from service.evidence_sentences import sentence_scores
from service.grounding import Ask, Grounding, _Evidence
from service.routing.router import Router, load_or_fit_router
from service.settings import GroundingSettings, default_model_dir


def main() -> None:
    """Score every question's candidates once, then count right sentences per setting."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=default_model_dir())
    parser.add_argument("--kb", type=Path, default=default_kb_dir())
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--only", default="tune,own")
    parser.add_argument("--weights", default="0,0.1,0.25,0.5,1")
    parser.add_argument("--margins", default="0.3,inf")
    parser.add_argument("--out", type=Path, default=artifacts_dir() / "reports" / "rerank")
    args = parser.parse_args()
    groups = [g.strip() for g in args.only.split(",")]
    if "heldout" in groups:
        parser.error("the held-out half chooses nothing: run it through paraphrase_eval.py")
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    embedder = CachedEncoder(Embedder(), max_entries=100_000)
    g = GroundingSettings()
    router = Router(embedder, threshold=g.route_threshold,
                    retrieval_threshold=g.route_retrieval_threshold,
                    model=load_or_fit_router(args.kb, embedder, save=False))
    cases = []
    with KnowledgeBase.open(args.kb, embedder=embedder, readonly=True) as kb:
        grounding = Grounding(kb, router, g)
        for group in groups:
            for q in questions(group, args.n):
                ask = Ask((q.text,))
                found = grounding._question(ask)
                found = grounding._retrieve(ask, found) if isinstance(found, str) else found
                if not isinstance(found, _Evidence):
                    continue
                cut, scores = sentence_scores(found.query, found.hits, embedder.encode, 1,
                                              g.evidence_lexical_weight)
                order: list[int] = []  # the best two of distinct text, as the service's
                for j in sorted(range(len(cut)), key=lambda j: -scores[j]):
                    if cut[j][1] not in {cut[i][1] for i in order}:
                        order.append(j)
                order = order[:ql.RERANK_CANDIDATES]
                rows = ql.scoring_prompts(tokenizer, found.query, [cut[j][1] for j in order])
                with torch.inference_mode():
                    sums = ql.continuation_logprobs(model, tokenizer.pad_token_id or 0, rows)
                right = [found.hits[cut[j][0]].document_id == q.entity_id
                         and correct(q, cut[j][1]) for j in order]
                cases.append({"group": group, "kind": q.kind, "scores": [scores[j] for j in order],
                              "means": [s / (len(ids) - start) for s, (ids, start)
                                        in zip(sums, rows, strict=True)], "right": right})
    table = {}
    for margin in (float(m) for m in args.margins.split(",")):
        for weight in (float(w) for w in args.weights.split(",")):
            counts = {}
            for group in groups:
                mine = [c for c in cases if c["group"] == group]
                chosen = [_choice(c, weight, margin) for c in mine]
                counts[group] = f"{sum(c['right'][j] for c, j in zip(mine, chosen, strict=True))}"\
                                f" of {len(mine)}"
            table[f"margin {margin:g}, weight {weight:g}"] = counts
    report = {"in the best two": {grp: sum(any(c["right"]) for c in cases if c["group"] == grp)
                                  for grp in groups}, "right sentence": table}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rerank_eval.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def _choice(case: dict, weight: float, margin: float) -> int:
    """The index (of the best two) chosen at `weight` when they are within `margin`."""
    scores, means = case["scores"], case["means"]
    if len(scores) < 2 or scores[0] - scores[1] > margin or weight == 0 or math.isinf(weight):
        return 0
    both = [s + weight * m for s, m in zip(scores, means, strict=True)]
    return int(both[1] > both[0])


if __name__ == "__main__":
    main()
