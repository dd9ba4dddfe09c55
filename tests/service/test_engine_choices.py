"""n choices, logprobs and logits processors inside the engine, on tiny random checkpoints."""

from __future__ import annotations

import asyncio

import torch

from service.engine import Engine
from service.generation import Delta
from service.penalties import LogitBias, Penalties
from service.sampling import SamplingParams
from tests.service import test_engine
from tests.service.test_engine import PROMPTS, generate, run_engine

engine_parts = test_engine.engine_parts  # the same fixture: each tiny architecture


class Counts:
    """An observer that keeps the prompt and prefill token counts."""

    def __init__(self) -> None:
        self.prompt = self.prefilled_tokens = 0

    def admitted(self, queue_s: float, prompt_tokens: int) -> None:
        self.prompt += prompt_tokens

    def prefilled(self, tokens: int) -> None:
        self.prefilled_tokens += tokens

    def token(self, since_previous_s: float | None, since_arrival_s: float) -> None:
        pass

    def finished(self, e2e_s: float, finish_reason: str) -> None:
        pass


async def by_choice(stream: object) -> dict[int, list[Delta]]:
    out: dict[int, list[Delta]] = {}
    async for delta in stream:  # type: ignore[attr-defined]
        out.setdefault(delta.index, []).append(delta)
    return out


def test_n_choices_share_one_prefill_and_differ(engine_parts: tuple) -> None:
    """n=4 rows of one request: the prompt is prefilled once, 4 choices come back, each ends
    once; seeds differ per row yet a seed reproduces all four."""
    _, tokenizer = engine_parts
    ids = tokenizer(PROMPTS[3]).input_ids
    counts = Counts()
    params = SamplingParams(8, temperature=0.8, seed=5, n=4)

    async def body(engine: Engine) -> list[dict[int, list[Delta]]]:
        engine.observer = counts
        first = await by_choice(generate(engine, ids, params))
        return [first, await by_choice(generate(engine, ids, params))]

    first, again = run_engine(engine_parts, body)
    assert sorted(first) == [0, 1, 2, 3]
    texts = ["".join(d.text for d in first[i]) for i in range(4)]
    assert texts == ["".join(d.text for d in again[i]) for i in range(4)]
    assert len(set(texts)) > 1
    assert all([d.finish_reason for d in first[i]][-1] == "length" for i in range(4))
    assert all(sum(d.finish_reason is not None for d in first[i]) == 1 for i in range(4))
    # Asked: 4 prompts per request; computed: the prompt once (the second request reuses
    # the prefix kept from the first and computes less).
    assert counts.prompt == 2 * 4 * len(ids)
    assert counts.prefilled_tokens <= 2 * len(ids)


def test_logprobs_are_the_raw_distribution(engine_parts: tuple) -> None:
    """Greedy with logprobs=3: each token is the top alternative and its logprob matches a
    plain forward pass; prompt logprobs start with None and score the prompt."""
    model, tokenizer = engine_parts
    ids = tokenizer(PROMPTS[0]).input_ids
    params = SamplingParams(4, logprobs=3, prompt_logprobs=2)

    async def body(engine: Engine) -> list[Delta]:
        return (await by_choice(generate(engine, ids, params)))[0]

    deltas = run_engine(engine_parts, body)
    scores = [s for d in deltas for s in d.logprobs]
    assert len(scores) == 4 and all(len(s.top) == 3 for s in scores)
    tokens = [s.token for s in scores]
    full = torch.tensor([ids + tokens])
    with torch.no_grad():
        expected = model(full).logits[0].log_softmax(-1)
    for i, s in enumerate(scores):
        assert s.top[0][0] == s.token
        assert abs(s.logprob - float(expected[len(ids) - 1 + i, s.token])) < 1e-3
    prompt = deltas[0].prompt_logprobs
    assert prompt[0] is None and len(prompt) == len(ids)
    assert abs(prompt[1].logprob - float(expected[0, ids[1]])) < 1e-3
    assert all(d.prompt_logprobs is None for d in deltas[1:])


def test_bias_and_penalties_steer_the_engine(engine_parts: tuple) -> None:
    """A +100 bias makes one token the whole greedy reply; a frequency penalty then stops it
    repeating; rows without processors beside them are unchanged."""
    _, tokenizer = engine_parts
    ids = tokenizer(PROMPTS[1]).input_ids

    async def body(engine: Engine) -> list[list[int]]:
        rows = [SamplingParams(6, processors=(LogitBias({42: 100.0}),)),
                SamplingParams(6, processors=(LogitBias({42: 100.0}), Penalties(0.0, 1000.0))),
                SamplingParams(6), SamplingParams(6)]
        outs = await asyncio.gather(*(by_choice(generate(engine, ids, p)) for p in rows[:3]))
        alone = await by_choice(generate(engine, ids, rows[3]))
        return [[s for d in o[0] for s in tokenizer(d.text, add_special_tokens=False)
                 .input_ids] for o in outs] + [["".join(d.text for d in alone[0])],
                                              ["".join(d.text for d in outs[2][0])]]

    biased, penalized, _, alone, beside = run_engine(engine_parts, body)
    assert tokenizer.decode(biased) == tokenizer.decode([42] * 6)
    assert tokenizer.decode(penalized).count(tokenizer.decode([42])) == 1
    assert alone == beside
