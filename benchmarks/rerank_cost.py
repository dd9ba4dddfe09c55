"""What the likelihood re-rank of the evidence sentence costs: grounding time, the engine's pass.

Usage: .venv/bin/python benchmarks/rerank_cost.py [--model DIR] [--kb DIR] [--n 200]
           [--paraphrase-n 30]

`Grounding.ground` re-ranks the best two evidence sentences by the served model's likelihood
of the question (`service/question_likelihood.py`) when they are close; the engine computes it
on its model thread between two decode steps. Measured here, with the real embedder, knowledge
base and model, the re-rank off and on taking turns question by question (the cache on, as
the service runs):
- grounding time per question on never-tuned KB questions (as `grounding_latency.py` draws
  them) and on the paraphrase benchmark's tune-side questions (where it fires more often), and
  how often the engine was asked;
- the engine's pass alone (what a decode loop waits for when a grounded request is re-ranked):
  two candidates, and eight (four requests batched);
- the gaps between the tokens of four running streams while re-ranked requests are grounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import threading
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cogcore.paths import artifacts_dir, default_kb_dir
from retrieval.embedder import CachedEncoder, Embedder
from retrieval.knowledge_base import KnowledgeBase
from retrieval.questions import question_set
from service.engine import Engine
from service.generation import GenerationRequest
from service.grounding import Grounding
from service.question_likelihood import QuestionScorer, scoring_prompts
from service.routing.router import Router, load_or_fit_router
from service.sampling import SamplingParams
from service.settings import GroundingSettings, default_model_dir

sys.path.insert(0, str(Path(__file__).parent))
from paraphrase_eval import questions as paraphrases  # noqa: E402

ROWS = [("Which city is the political centre of Kenya?",
         ["The capital of Kenya is Nairobi.", "Kenya lies in the world region Africa."])]


def ms(values: list[float], q: int | None = None) -> float:
    """The q-th percentile (None: the mean), in milliseconds."""
    if q is None:
        return round(1000 * statistics.fmean(values), 2)
    return round(1000 * statistics.quantiles(values, n=100, method="inclusive")[q - 1], 2)


class Counting:
    """The scorer, counting the questions it was asked about."""

    def __init__(self, scorer: QuestionScorer) -> None:
        self.scorer, self.asked = scorer, 0

    def __call__(self, asks):  # noqa: ANN001, ANN204 - the scorer's own signature
        self.asked += len(asks)
        return self.scorer(asks)


def grounding_times(groundings: dict[str, Grounding], texts: list[str]) -> dict:
    """Each question grounded by each configuration in turn; p50/p90/mean per configuration."""
    for grounding in groundings.values():
        grounding.ground([texts[0]])  # warm-up
    names = list(groundings)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i, text in enumerate(texts):
        for name in names if i % 2 == 0 else reversed(names):
            start = time.perf_counter()
            groundings[name].ground([text])
            times[name].append(time.perf_counter() - start)
    out = {name: {"p50_ms": ms(t, 50), "p90_ms": ms(t, 90), "mean_ms": ms(t)}
           for name, t in times.items()}
    out["on_over_off"] = {k: round(out["rerank on"][k] / out["rerank off"][k], 3)
                          for k in out["rerank off"]}
    return out


def engine_pass(engine: Engine, tokenizer, repeats: int = 30) -> dict:  # noqa: ANN001
    """The scoring pass alone, 2 and 8 rows, called directly (the model thread is idle)."""
    question, sentences = ROWS[0]
    two = scoring_prompts(tokenizer, question, sentences)
    out = {}
    with torch.inference_mode():
        for name, rows in {"score 2 rows": two, "score 8 rows": two * 4}.items():
            engine._likelihoods(rows)
            t = []
            for _ in range(repeats):
                start = time.perf_counter()
                engine._likelihoods(rows)
                t.append(time.perf_counter() - start)
            out[name] = {"p50_ms": ms(t, 50), "p90_ms": ms(t, 90)}
    return out


async def token_gaps(engine: Engine, tokenizer, grounding: Grounding | None,  # noqa: ANN001
                     texts: list[str]) -> dict:
    """Four streams of 64 tokens; meanwhile (when `grounding` is given) the questions are
    grounded one after another on a thread. The gaps between consecutive tokens."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Tell me a story."}],
                                         add_generation_prompt=True, tokenize=False)
    prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
    gaps: list[float] = []
    stop = threading.Event()

    def ground_all() -> None:
        for text in texts:
            if stop.is_set():
                return
            grounding.ground([text])

    async def stream() -> None:
        last = None
        params = SamplingParams(max_tokens=64, temperature=0.0)
        async for _ in engine.submit(GenerationRequest(list(prompt), params)):
            now = time.perf_counter()
            if last is not None:
                gaps.append(now - last)
            last = now

    eos, engine.eos_ids = engine.eos_ids, set()  # every stream runs its 64 tokens
    worker = threading.Thread(target=ground_all) if grounding else None
    if worker:
        worker.start()
    await asyncio.gather(*(stream() for _ in range(4)))
    stop.set()
    engine.eos_ids = eos
    if worker:
        worker.join()
    return {"p50_ms": ms(gaps, 50), "p99_ms": ms(gaps, 99), "max_ms": round(1000 * max(gaps), 2)}


def main() -> None:
    """Load the parts, measure, print and save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=default_model_dir())
    parser.add_argument("--kb", type=Path, default=default_kb_dir())
    parser.add_argument("--n", type=int, default=200, help="never-tuned KB questions")
    parser.add_argument("--paraphrase-n", type=int, default=30,
                        help="tune-side paraphrase questions per kind and group")
    parser.add_argument("--out", type=Path, default=artifacts_dir() / "reports" / "rerank")
    args = parser.parse_args()
    test = [q for q in question_set() if q.split == "test" and q.phrasing == "question"]
    kb_questions = [q.text for q in random.Random(11).sample(test, min(args.n, len(test)))]
    tune_side = [q.text for split in ("tune", "own")
                 for q in paraphrases(split, args.paraphrase_n)]
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    engine = Engine(model, tokenizer)
    engine.start()
    embedder = CachedEncoder(Embedder(), max_entries=4096)
    router_model = load_or_fit_router(args.kb, embedder, save=False)
    g = GroundingSettings()
    counting = Counting(QuestionScorer(engine.likelihoods, tokenizer))
    groundings = {}
    for name in ("rerank off", "rerank on"):
        kb = KnowledgeBase.open(args.kb, embedder=embedder, readonly=True)
        router = Router(embedder, threshold=g.route_threshold,
                        retrieval_threshold=g.route_retrieval_threshold, model=router_model)
        groundings[name] = Grounding(kb, router, g,
                                     scorer=counting if name == "rerank on" else None)
    report: dict = {"model": str(args.model)}
    try:
        sets = {"kb questions": kb_questions, "paraphrase tune side": tune_side}
        for name, texts in sets.items():
            counting.asked = 0
            report[name] = grounding_times(groundings, texts)
            report[name]["reranked"] = f"{counting.asked - 1} of {len(texts)}"  # less warm-up
        report["engine pass"] = engine_pass(engine, tokenizer)
        gaps = {"alone": asyncio.run(token_gaps(engine, tokenizer, None, []))}
        for name in ("rerank off", "rerank on"):
            gaps[f"beside grounding, {name}"] = asyncio.run(
                token_gaps(engine, tokenizer, groundings[name], tune_side))
        report["token gaps, 4 streams"] = gaps
    finally:
        engine.stop()
        for grounding in groundings.values():
            grounding.kb.close()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rerank_cost.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
