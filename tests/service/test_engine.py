"""Engine mechanics on tiny random Llama and Qwen2 checkpoints: batching must not change output."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from service import batch
from service.engine import Engine
from service.errors import QueueFull, RequestTimeout
from service.generation import Delta, DeltaStream, GenerationRequest
from service.sampling import SamplingParams

PROMPTS = [
    "The capital of France is",
    "All blickets are daxes. No dax is a wug.",
    "a b c",
    "True and not False is True. 7 is greater than 3. The list 4 2 9 sorted is",
    "According to the context,",
]


@pytest.fixture
def engine_parts(tiny_checkpoint: Path) -> tuple:
    """Model and tokenizer of one tiny architecture, greedy-ready; EOS disabled so every
    request runs to max_tokens (a random model would otherwise stop at random points)."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint, dtype=torch.float32).eval()
    model.generation_config.eos_token_id = None
    return model, tokenizer


def run_engine(parts: tuple, body: Callable[[Engine], Awaitable], **kwargs: int) -> object:
    """Run `body(engine)` on a started engine inside a fresh event loop."""
    model, tokenizer = parts

    async def main() -> object:
        engine = Engine(model, tokenizer, **kwargs)
        engine.eos_ids = set()
        engine.start()
        try:
            return await body(engine)
        finally:
            engine.stop()

    return asyncio.run(main())


async def collect(stream: AsyncIterator[Delta]) -> tuple[list[int], str, Delta]:
    """All deltas of one request: the token count seen at each delta, the text, the last."""
    counts, text, last = [], "", None
    async for delta in stream:
        counts.append(delta.completion_tokens)
        text += delta.text
        last = delta
    assert last is not None
    return counts, text, last


def generate(engine: Engine, ids: list[int], params: SamplingParams,
             timeout_s: float | None = None) -> DeltaStream:
    """Submit one request to `engine`; its deltas."""
    return engine.submit(GenerationRequest(ids, params, timeout_s))


def reference_ids(parts: tuple, prompt: str, max_tokens: int) -> list[int]:
    """Plain greedy `generate` for one prompt, no batching."""
    model, tokenizer = parts
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                         do_sample=False, eos_token_id=None, pad_token_id=tokenizer.pad_token_id)
    return out[0, ids.shape[1]:].tolist()


def test_batched_greedy_equals_one_at_a_time(engine_parts: tuple) -> None:
    """Concurrent requests, rows joining mid-flight and leaving at different lengths, give
    exactly the greedy text of each request run alone."""
    _, tokenizer = engine_parts
    lengths = [12, 5, 20, 9, 15]
    expected = [tokenizer.decode(reference_ids(engine_parts, p, n), skip_special_tokens=True)
                for p, n in zip(PROMPTS, lengths, strict=True)]

    async def body(engine: Engine) -> list[str]:
        async def one(i: int) -> str:
            await asyncio.sleep(0.02 * i)  # staggered arrivals join a running batch
            ids = tokenizer(PROMPTS[i]).input_ids
            _, text, last = await collect(generate(engine, ids, SamplingParams(lengths[i])))
            assert last.finish_reason == "length" and last.completion_tokens == lengths[i]
            return text
        return await asyncio.gather(*(one(i) for i in range(len(PROMPTS))))

    assert run_engine(engine_parts, body, max_batch_size=3) == expected


def test_shared_prefix_is_encoded_once_and_changes_nothing(engine_parts: tuple) -> None:
    """Prompts with a common head (a chat template's system turn) reuse one encoded prefix,
    across batches too, and still give exactly each prompt's greedy text run alone."""
    _, tokenizer = engine_parts
    head = "System: answer briefly and cite the context. User: "
    prompts = [head + p for p in PROMPTS]
    expected = [tokenizer.decode(reference_ids(engine_parts, p, 8), skip_special_tokens=True)
                for p in prompts]

    async def body(engine: Engine) -> tuple[list[str], tuple[int, ...]]:
        async def one(i: int) -> str:
            ids = tokenizer(prompts[i]).input_ids
            return (await collect(generate(engine, ids, SamplingParams(8))))[1]
        first = await asyncio.gather(*(one(i) for i in range(3)))
        later = await asyncio.gather(*(one(i) for i in range(3, len(prompts))))
        return [*first, *later], [p.ids for p in engine._prefixes]

    texts, prefixes = run_engine(engine_parts, body, min_shared_prefix=4)
    assert texts == expected
    # The head is remembered (and a longer prefix that some later prompts share, if any).
    assert head.strip() in [tokenizer.decode(ids).strip() for ids in prefixes]


def test_prefix_kept_from_a_lone_prompt_changes_nothing(engine_parts: tuple) -> None:
    """One client at a time: the shared head is cut from a lone prompt's own prefill, then
    reused, and every answer is still the prompt's greedy text run alone."""
    _, tokenizer = engine_parts
    prompts = ["System: answer briefly and cite the context. User: " + p for p in PROMPTS[:3]]
    expected = [tokenizer.decode(reference_ids(engine_parts, p, 6), skip_special_tokens=True)
                for p in prompts]

    async def body(engine: Engine) -> tuple[list[str], bool]:
        texts = []
        for prompt in prompts:
            ids = tokenizer(prompt).input_ids
            texts.append((await collect(generate(engine, ids, SamplingParams(6))))[1])
        return texts, len(engine._prefixes) == 1

    assert run_engine(engine_parts, body, min_shared_prefix=4) == (expected, True)


def test_two_kinds_of_prompt_in_one_batch_share_a_prefix_each(engine_parts: tuple) -> None:
    """Chat turns and grounded reader prompts admitted together: each kind's head is encoded
    once and remembered beside the other's (no common prefix of all of them is needed), the
    next batch reuses both, and every text is still the prompt's greedy text run alone."""
    _, tokenizer = engine_parts
    heads = ["System: answer briefly and cite the context. User: ",
             "Context: the sky looks blue because air scatters blue light. Question: "]
    prompts = [head + p for p in PROMPTS[:3] for head in heads]
    expected = [tokenizer.decode(reference_ids(engine_parts, p, 6), skip_special_tokens=True)
                for p in prompts]

    counted = SimpleNamespace(tokens=0)
    observer = SimpleNamespace(admitted=lambda *_: None, token=lambda *_: None,
                               finished=lambda *_: None,
                               prefilled=lambda n: setattr(counted, "tokens", counted.tokens + n))

    async def body(engine: Engine) -> tuple[list[str], list[str], list[int]]:
        async def one(prompt: str) -> str:
            ids = tokenizer(prompt).input_ids
            return (await collect(generate(engine, ids, SamplingParams(6))))[1]
        texts, prefilled = [], []
        engine.observer = observer
        for _ in range(2):
            before = counted.tokens
            texts += await asyncio.gather(*(one(p) for p in prompts))
            prefilled.append(counted.tokens - before)
        return texts, sorted(tokenizer.decode(p.ids).strip() for p in engine._prefixes), \
            prefilled

    texts, held, prefilled = run_engine(engine_parts, body, min_shared_prefix=4)
    assert texts == expected * 2
    # Both heads are remembered (beside a longer prefix some prompts share, if any).
    assert {head.strip() for head in heads} <= set(held)
    ids = [tokenizer(p).input_ids for p in prompts]
    kinds = [ids[k::len(heads)] for k in range(len(heads))]  # each head's prompts
    shared = sum(len(kind) * batch.common_prefix(kind, 10**6) for kind in kinds)
    # The second batch decodes no head: at most what each prompt has beyond its kind's.
    assert prefilled[1] <= sum(map(len, ids)) - shared, prefilled


def test_prefix_groups_split_prompts_by_the_head_they_share() -> None:
    chat = [1, 2, 3, 4, 5]
    reader = [9, 8, 7, 6]
    prompts = [chat + [10, 11], reader + [20], chat + [12], [5, 5], reader + [21, 22], chat]
    groups = batch.prefix_groups(prompts, minimum=4)
    # `chat` itself joins its kind: the group shares 4 tokens, and each keeps one of its own.
    assert sorted(sorted(g) for g in groups) == [[0, 2, 5], [1, 4], [3]]
    # They share 5 tokens: under a minimum of 6, each is a group of its own.
    assert batch.prefix_groups([chat + [6], chat + [7]], minimum=6) == [[0], [1]]
    assert batch.prefix_groups([], minimum=4) == []


def test_seeded_sampling_is_reproducible_inside_a_batch(engine_parts: tuple) -> None:
    """The same seed gives the same sample whether the request runs alone or with others."""
    _, tokenizer = engine_parts
    params = SamplingParams(10, temperature=1.0, top_p=0.9, seed=7)
    ids = tokenizer(PROMPTS[0]).input_ids

    async def alone(engine: Engine) -> str:
        return (await collect(generate(engine, ids, params)))[1]

    async def crowded(engine: Engine) -> str:
        others = [collect(generate(engine, tokenizer(p).input_ids, SamplingParams(10, 1.0)))
                  for p in PROMPTS[1:]]
        results = await asyncio.gather(collect(generate(engine, ids, params)), *others)
        return results[0][1]

    assert run_engine(engine_parts, alone) == run_engine(engine_parts, crowded)


def test_stop_string_ends_the_request_without_sending_it(engine_parts: tuple) -> None:
    """The text up to the stop string is returned, the stop string is not."""
    _, tokenizer = engine_parts
    ids = tokenizer(PROMPTS[2]).input_ids
    full = tokenizer.decode(reference_ids(engine_parts, PROMPTS[2], 20), skip_special_tokens=True)
    stop = full[5:8]
    params = SamplingParams(20, stop=(stop,))

    async def body(engine: Engine) -> tuple[str, Delta]:
        _, text, last = await collect(generate(engine, ids, params))
        return text, last

    text, last = run_engine(engine_parts, body)
    assert text == full[: full.index(stop)]
    assert last.finish_reason == "stop"


def test_cancelled_request_leaves_the_batch(engine_parts: tuple) -> None:
    """A consumer that stops reading frees its row before the next decode step."""
    _, tokenizer = engine_parts

    async def body(engine: Engine) -> tuple[int, int]:
        stream = generate(engine, tokenizer(PROMPTS[0]).input_ids, SamplingParams(200))
        await anext(stream)
        during = engine.num_running
        await stream.aclose()
        for _ in range(100):
            if engine.num_running == 0:
                break
            await asyncio.sleep(0.01)
        return during, engine.num_running

    assert run_engine(engine_parts, body) == (1, 0)


def test_full_queue_refuses_with_queue_full(engine_parts: tuple) -> None:
    """With one row and one waiting slot taken, the next request is refused at once."""
    _, tokenizer = engine_parts
    ids = tokenizer(PROMPTS[0]).input_ids

    async def body(engine: Engine) -> None:
        first = generate(engine, ids, SamplingParams(200))
        await anext(first)
        second = generate(engine, ids, SamplingParams(200))
        with pytest.raises(QueueFull):
            generate(engine, ids, SamplingParams(200))
        await second.aclose()
        await first.aclose()

    run_engine(engine_parts, body, max_batch_size=1, max_waiting=1)


def test_timeout_drops_the_request(engine_parts: tuple) -> None:
    """A request past its timeout raises RequestTimeout and its row is dropped."""
    _, tokenizer = engine_parts

    async def body(engine: Engine) -> int:
        with pytest.raises(RequestTimeout):
            await collect(generate(engine, tokenizer(PROMPTS[0]).input_ids,
                                          SamplingParams(10_000), timeout_s=0.2))
        for _ in range(100):
            if engine.num_running == 0:
                break
            await asyncio.sleep(0.01)
        return engine.num_running

    assert run_engine(engine_parts, body) == 0


class Always:
    """A constraint allowing the same tokens at every step."""

    def __init__(self, tokens: frozenset[int]) -> None:
        self.tokens = tokens

    def allowed(self, reply: Sequence[int]) -> frozenset[int]:  # noqa: ARG002 - same every step
        return self.tokens


def test_allowed_tokens_restrict_one_row_and_leave_the_rest_of_its_batch_alone(
    engine_parts: tuple,
) -> None:
    """A row restricted to a token set (grounded decoding) gives exactly the greedy text of
    `generate` under the same restriction; the row batched beside it is unchanged."""
    model, tokenizer = engine_parts
    allowed = frozenset(tokenizer(" the capital of Peru is Lima.")["input_ids"])
    ids = tokenizer(PROMPTS[4]).input_ids
    prompt = torch.tensor([ids])
    out = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=10,
                         do_sample=False, eos_token_id=None, pad_token_id=tokenizer.pad_token_id,
                         prefix_allowed_tokens_fn=lambda _b, _ids: sorted(allowed))
    restricted = out[0, len(ids):].tolist()
    assert set(restricted) <= allowed
    free = tokenizer.decode(reference_ids(engine_parts, PROMPTS[4], 10), skip_special_tokens=True)

    async def body(engine: Engine) -> list[str]:
        rows = [SamplingParams(10, constraint=Always(allowed)), SamplingParams(10)]
        return [t for _, t, _ in await asyncio.gather(
            *(collect(generate(engine, ids, p)) for p in rows))]

    texts = run_engine(engine_parts, body, max_batch_size=2)
    assert texts == [tokenizer.decode(restricted, skip_special_tokens=True), free]
    assert texts[0] != texts[1]


def test_a_constraint_sees_the_reply_its_row_generated_so_far(engine_parts: tuple) -> None:
    """The engine hands each row's tokens so far to its constraint (none before the first)."""
    _, tokenizer = engine_parts
    seen: list[list[int]] = []

    class Counting:
        def allowed(self, reply: Sequence[int]) -> frozenset[int]:
            seen.append(list(reply))
            return frozenset({reply[-1] + 1 if reply else 40})

    ids = tokenizer(PROMPTS[0]).input_ids

    async def body(engine: Engine) -> str:
        return (await collect(generate(engine, ids, SamplingParams(6, constraint=Counting()))))[1]

    assert run_engine(engine_parts, body) == tokenizer.decode(list(range(40, 46)))
    assert seen == [list(range(40, 40 + n)) for n in range(6)]
