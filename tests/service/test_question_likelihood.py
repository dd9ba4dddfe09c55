"""The evidence sentence re-ranked by the served model's likelihood of the question: the
engine's batched pass, its queue between decode steps, the scorer and grounding's use of it."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from retrieval.documents import Document
from retrieval.knowledge_base import KnowledgeBase
from service.engine import Engine
from service.generation import GenerationRequest
from service.grounding import Grounding
from service.question_likelihood import (
    RERANK_MARGIN,
    LikelihoodQueue,
    QuestionScorer,
    contenders,
    continuation_logprobs,
    question_scorer,
    reranked,
    scoring_prompts,
)
from service.routing.router import Router
from service.sampling import SamplingParams
from service.settings import GroundingSettings
from tests.retrieval.fakes import HashingEncoder


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir: Path) -> tuple:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    return model, tokenizer


def _one_at_a_time(model, ids: list[int], start: int) -> float:
    """The reference: one unpadded forward pass, every position's full distribution."""
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
    return sum(float(logits[i - 1, ids[i]]) for i in range(start, len(ids)))


def test_the_batched_pass_equals_each_row_alone(tiny: tuple) -> None:
    model, tokenizer = tiny
    rows = scoring_prompts(tokenizer, "Which city is the capital of Fiji?",
                           ["The capital of Fiji is Suva.", "Fiji lies in the world region "
                            "Oceania, in the subregion Melanesia."])
    assert rows[0][0][rows[0][1]:] == rows[1][0][rows[1][1]:], "the same question tokens"
    with torch.inference_mode():
        batched = continuation_logprobs(model, 0, rows)
    for (ids, start), value in zip(rows, batched, strict=True):
        assert value == pytest.approx(_one_at_a_time(model, ids, start), abs=1e-4)
    assert continuation_logprobs(model, 0, []) == []


def test_the_queue_serves_refuses_and_cancels() -> None:
    queue = LikelihoodQueue()
    served = queue.ask([([1, 2, 3], 1)])
    assert queue
    queue.serve(lambda rows: [float(len(ids) - start) for ids, start in rows])
    assert served.result(timeout=1) == [2.0] and not queue
    failing = queue.ask([([1], 0)])
    queue.serve(lambda rows: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(timeout=1)
    refused = queue.ask([([1], 0)], RuntimeError("stopping"))
    with pytest.raises(RuntimeError):
        refused.result(timeout=1)
    pending = queue.ask([([1], 0)])
    queue.cancel_all()
    assert pending.cancelled()


def test_the_engine_scores_between_steps_beside_a_running_request(tiny: tuple) -> None:
    """A request generating while the likelihoods are asked for (from another thread, as the
    grounding worker does) still completes, and the scores equal the pass run alone."""
    model, tokenizer = tiny
    rows = scoring_prompts(tokenizer, "How many people live in Fiji?",
                           ["The population of Fiji is 858,038.", "The capital of Fiji is Suva."])
    with torch.inference_mode():
        expected = continuation_logprobs(model, 0, rows)

    async def main() -> tuple[list[float], int]:
        engine = Engine(model, tokenizer)
        engine.eos_ids = set()
        engine.start()
        try:
            stream = engine.submit(GenerationRequest(tokenizer("a b c").input_ids,
                                                     SamplingParams(max_tokens=40)))
            first = await stream.__anext__()
            scored = await asyncio.to_thread(lambda: engine.likelihoods(rows).result(10))
            count = first.completion_tokens
            async for delta in stream:
                count = delta.completion_tokens
            return scored, count
        finally:
            engine.stop()

    scored, count = asyncio.run(main())
    assert scored == pytest.approx(expected, abs=1e-4)
    assert count == 40


def test_an_engine_without_a_torch_model_has_no_scorer(tiny: tuple) -> None:
    model, tokenizer = tiny
    assert question_scorer(Engine(model, tokenizer), tokenizer) is not None
    shim = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=[0]))
    assert not Engine(shim, tokenizer).scores_likelihoods  # type: ignore[arg-type]
    assert question_scorer(Engine(shim, tokenizer), tokenizer) is None  # type: ignore[arg-type]
    assert question_scorer(object(), tokenizer) is None, "the upstream engine has none"


def test_the_scorer_gives_a_mean_per_question_token_or_none(tiny: tuple) -> None:
    _, tokenizer = tiny

    def total(rows):  # one nat per scored token: every mean is -1
        future: Future = Future()
        future.set_result([-float(len(ids) - start) for ids, start in rows])
        return future

    scorer = QuestionScorer(total, tokenizer)
    assert scorer([("Q one?", ["A.", "B b b."]), ("Q two, longer?", ["C."])]) == [
        [-1.0, -1.0], [-1.0]]
    late = QuestionScorer(lambda rows: Future(), tokenizer, timeout_s=0.01)
    assert late([("Q?", ["A.", "B."])]) is None


def test_only_two_close_sentences_are_reranked() -> None:
    texts = ["a", "b", "a", "c"]
    assert contenders([0.9, 0.8, 0.85, 0.1], texts) == [0, 1], "a repeated text counts once"
    assert contenders([0.9, 0.9 - RERANK_MARGIN - 0.01, 0.1, 0.0], texts) == []
    assert contenders([0.9, float("-inf"), float("-inf"), float("-inf")], texts) == []
    scores = reranked([0.9, 0.8, 0.85, 0.1], [0, 1], [-3.0, -1.0])
    assert scores.index(max(scores)) == 1 and scores[2] == scores[3] == float("-inf")


PORTUGAL = ("The capital of Portugal is Lisbon. Portugal lies in the world region Europe. "
            "The subregion of Portugal is Southern Europe.")


def _grounding(tmp_path: Path, **settings: object) -> tuple[Grounding, KnowledgeBase]:
    encoder = HashingEncoder()
    kb = KnowledgeBase.open(tmp_path / "kb", embedder=encoder)
    kb.upsert([Document("portugal", PORTUGAL, {"kind": "country"})])
    return Grounding(kb, Router(encoder, threshold=0.0),
                     GroundingSettings(abstain_min_score=-1.0, **settings)), kb


class Prefers:
    """A scorer whose likelihood favours the sentences holding `word`; counts its calls."""

    def __init__(self, word: str) -> None:
        self.word, self.calls, self.lock = word, [], threading.Lock()

    def __call__(self, asks):
        with self.lock:
            self.calls.append(asks)
        return [[0.0 if self.word in s else -20.0 for s in sentences] for _, sentences in asks]


def test_grounding_reads_the_sentence_the_scorer_prefers(tmp_path: Path) -> None:
    grounding, kb = _grounding(tmp_path, evidence_rerank=True)
    with kb:
        asked = "The capital of Portugal in the world region?"
        plain = grounding.ground([asked]).sources[0].text
        second = [s for s in PORTUGAL.split(". ") if s.rstrip(".") + "." != plain][0]
        grounding.scorer = Prefers(second.split()[-1].rstrip("."))
        chosen = grounding.ground([asked]).sources[0].text
        assert len(grounding.scorer.calls) == 1
        (question, sentences), = grounding.scorer.calls[0]
        assert question == asked and len(sentences) == 2 and plain in sentences
        picked = [s for s in sentences if s != plain][0]
        assert chosen == picked != plain


def test_without_a_scorer_or_switched_off_or_failing_the_embedding_decides(tmp_path: Path
                                                                           ) -> None:
    asked = "The capital of Portugal in the world region?"
    grounding, kb = _grounding(tmp_path)  # off by default
    with kb:
        plain = grounding.ground([asked]).sources[0].text
        grounding.scorer = Prefers("Southern")
        assert grounding.ground([asked]).sources[0].text == plain
        assert grounding.scorer.calls == [], "the switch is off: no engine pass"
    grounding, kb = _grounding(tmp_path / "2", evidence_rerank=True)
    with kb:
        grounding.scorer = lambda asks: None  # the engine was late or failed
        assert grounding.ground([asked]).sources[0].text == plain


class Vocabulary(HashingEncoder):
    """Words of a small vocabulary are one token; any other word one per three letters."""

    WORDS = frozenset({"about", "quick", "how", "big", "is"})

    def count_tokens(self, text: str) -> int:
        return sum(1 if w in self.WORDS else -(-len(w) // 3) for w in text.lower().split())


def test_an_ordinary_opening_word_is_not_an_unknown_name(tmp_path: Path) -> None:
    """"About how big is Fiji?": the store never says "about", yet it names nothing; an
    invented name opening the question is still refused."""
    encoder = Vocabulary()
    with KnowledgeBase.open(tmp_path / "kb", embedder=encoder) as kb:
        kb.upsert([Document("fiji", "The area of Fiji is 18,274 square kilometres.",
                            {"kind": "country"})])
        grounding = Grounding(kb, Router(encoder, threshold=0.0),
                              GroundingSettings(abstain_min_score=-1.0))
        assert not grounding.ground(["About how big is Fiji?"]).abstained
        assert not grounding.ground(["Quick: how big is Fiji?"]).abstained
        assert grounding.ground(["Zorblaxia is how big?"]).abstained
        assert grounding.ground(["About how big is Zorblaxia?"]).abstained
