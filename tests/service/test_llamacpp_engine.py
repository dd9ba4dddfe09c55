"""The llama.cpp engine (the optional extra) on the real default core exported to GGUF at f32.

Greedy output equal to the torch engine's, requests batched into one decode, cancellation
freeing the sequence's KV cells, eager admission (429, 503), the evidence constraint honoured;
then a real server on loopback on this engine, answering the official openai client. Skipped
where llama_cpp is not importable (`make llamacpp` installs it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import torch
from openai import OpenAI
from transformers import AutoModelForCausalLM, AutoTokenizer

from cogcore.gguf_export import export_gguf
from cogcore.paths import default_core_dir
from loadtest.server import Server, start, stop
from service import batch
from service.engine import Engine
from service.errors import NotReady, QueueFull, UnsupportedParameter
from service.evidence_constraints import copy_constraint
from service.generation import GenerationRequest
from service.sampling import SamplingParams
from tests.conftest import REPO

pytest.importorskip(
    "llama_cpp", reason="llama.cpp extra not installed: `make llamacpp` (or make llamacpp-test)")

from service.llamacpp_engine import LlamaCppEngine  # noqa: E402  (needs the extra)

pytestmark = [pytest.mark.llamacpp, pytest.mark.real_model]

QUESTIONS = ["What is the capital of France?", "Name three colours.", "Write a haiku about rain."]
EVIDENCE = "Canberra is the capital city of Australia and lies in the Australian Capital Territory."


@pytest.fixture(scope="module")
def core() -> Path:
    checkpoint = REPO / default_core_dir()
    if not (checkpoint / "config.json").is_file():
        pytest.skip("no default core: `make core` builds it")
    return checkpoint


@pytest.fixture(scope="module")
def gguf(core: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_gguf(core, tmp_path_factory.mktemp("gguf") / "core-f32.gguf", "f32").path


@pytest.fixture(scope="module")
def tokenizer(core: Path):
    return AutoTokenizer.from_pretrained(core)


def chat_ids(tokenizer, question: str, system: str | None = None) -> list[int]:
    turns = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": question}]
    text = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False).input_ids


@contextlib.contextmanager
def started(engine: Engine) -> Iterator[Engine]:
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()


def run(engine: Engine, body: Callable[[Engine], Awaitable]) -> object:
    """Run `body(engine)` on the started engine inside a fresh event loop, then stop it."""
    async def main() -> object:
        with started(engine):
            return await body(engine)

    return asyncio.run(main())


def llama(gguf: Path, tokenizer, **kwargs: int) -> LlamaCppEngine:
    # One thread: this machine's cores are shared, and spinning OpenMP threads collapse there.
    return LlamaCppEngine(gguf, tokenizer, {tokenizer.eos_token_id}, threads=1, **kwargs)


async def text_of(engine: Engine, ids: list[int], params: SamplingParams) -> str:
    return "".join([d.text async for d in engine.submit(GenerationRequest(ids, params))])


async def settled(engine: LlamaCppEngine) -> None:
    """Wait until the model thread has let every finished row go."""
    for _ in range(200):
        if engine.num_running == 0 and engine.cached_sequences == 0:
            return
        await asyncio.sleep(0.05)


def test_greedy_equals_torch_engine_and_rows_batch(core: Path, gguf: Path, tokenizer) -> None:
    """Concurrent greedy requests give the torch engine's text, several rows per decode."""
    params = SamplingParams(max_tokens=20)
    prompts = [chat_ids(tokenizer, q) for q in QUESTIONS]

    async def together(engine: Engine) -> list[str]:
        return list(await asyncio.gather(*[text_of(engine, p, params) for p in prompts]))

    model = AutoModelForCausalLM.from_pretrained(core, dtype=torch.float32).eval()
    want = run(Engine(model, tokenizer), together)
    engine = llama(gguf, tokenizer)

    async def with_prefix(engine: LlamaCppEngine) -> tuple[list[str], int]:
        return await together(engine), max(engine.held_prompts)  # before stop clears them

    got, shared = run(engine, with_prefix)
    assert got == want
    assert all(got)
    assert engine.max_decode_rows == len(prompts)  # one decode advanced every request
    assert engine.decode_rows > engine.decode_steps
    assert shared >= 16  # the chat template's system turn, decoded once for all


def test_chat_and_reader_prompts_together_each_keep_their_held_head(
        core: Path, gguf: Path, tokenizer) -> None:
    """Chat turns and grounded reader prompts (another system turn) admitted together, twice:
    each kind's head is decoded once the first time and copied from its held prompt the
    second, and the texts are the torch engine's."""
    params = SamplingParams(max_tokens=8)
    reader = "Answer the question using only the given context."
    prompts = [chat_ids(tokenizer, q, system) for q in QUESTIONS for system in (None, reader)]

    async def twice(engine: Engine) -> tuple[list[str], list[int]]:
        texts, reused = [], []
        for _ in range(2):
            before = getattr(engine, "reused_prompt_tokens", 0)
            texts += await asyncio.gather(*[text_of(engine, p, params) for p in prompts])
            reused.append(getattr(engine, "reused_prompt_tokens", 0) - before)
        return texts, reused

    model = AutoModelForCausalLM.from_pretrained(core, dtype=torch.float32).eval()
    want, _ = run(Engine(model, tokenizer), twice)
    engine = llama(gguf, tokenizer)
    got, reused = run(engine, twice)
    assert got == want and all(got)
    heads = [batch.common_prefix([prompts[i], prompts[i + 2]], 10**6) for i in (0, 1)]
    assert min(heads) >= 16 and reused[0] == 0
    # The second time every prompt takes at least its kind's head from the held cells.
    assert reused[1] >= len(QUESTIONS) * sum(heads)


def test_the_next_turn_takes_the_held_prompt_instead_of_decoding_it(
        core: Path, gguf: Path, tokenizer) -> None:
    """A follow-up prompt starts with the previous prompt: its cells are reused, the text is
    the torch engine's."""
    params = SamplingParams(max_tokens=12)
    first = chat_ids(tokenizer, QUESTIONS[0])
    turns = [{"role": "user", "content": QUESTIONS[0]},
             {"role": "assistant", "content": "Paris."}, {"role": "user", "content": "Why?"}]
    follow = tokenizer(tokenizer.apply_chat_template(turns, tokenize=False,
                                                     add_generation_prompt=True),
                       add_special_tokens=False).input_ids
    assert follow[:len(first)] == first

    async def in_turn(engine: Engine) -> tuple[list[str], int]:
        texts = [await text_of(engine, ids, params) for ids in (first, follow, first)]
        return texts, getattr(engine, "reused_prompt_tokens", 0)

    model = AutoModelForCausalLM.from_pretrained(core, dtype=torch.float32).eval()
    want, _ = run(Engine(model, tokenizer), in_turn)
    got, reused = run(llama(gguf, tokenizer), in_turn)
    assert got == want and all(got)
    # The follow-up took all of the first prompt; the first prompt again took all of itself
    # but its last token (decoded for its logits) from the follow-up's held cells.
    assert reused == 2 * len(first) - 1


def test_prompts_asked_again_in_turn_are_held_whole(gguf: Path, tokenizer) -> None:
    """Different chats one after another, then again: each one the second time takes all of
    its prompt but the last token from its held cells (llama-server's slots keep theirs), and
    gives the same text."""
    params = SamplingParams(max_tokens=6)
    prompts = [chat_ids(tokenizer, q) for q in QUESTIONS]

    async def twice(engine: LlamaCppEngine) -> tuple[list[str], list[int], int]:
        texts, reused = [], []
        for ids in prompts * 2:
            before = engine.reused_prompt_tokens
            texts.append(await text_of(engine, ids, params))
            reused.append(engine.reused_prompt_tokens - before)
        return texts, reused, len(engine.held_prompts)

    texts, reused, held = run(llama(gguf, tokenizer), twice)
    assert texts[:3] == texts[3:] and all(texts)
    assert reused[3:] == [len(ids) - 1 for ids in prompts]
    assert min(reused[1:3]) >= 16 > reused[0]  # the first time, the template's turn only
    assert held == len(prompts)


def test_held_prompts_stay_within_their_bounds(gguf: Path, tokenizer) -> None:
    """More prompts than may be held, each longer than the last: the held ones stay within
    HELD_PROMPTS and their share of the cells, the most recent first, and a follow-up turn
    takes the place of the turn it extends."""
    from service.llamacpp_engine import HELD_CELLS_SHARE, HELD_PROMPTS

    params = SamplingParams(max_tokens=2)
    prompts = [chat_ids(tokenizer, f"Count to {i}: " + "one two three " * i)
               for i in range(HELD_PROMPTS + 4)]
    turns = [{"role": "user", "content": QUESTIONS[0]},
             {"role": "assistant", "content": "Paris."}, {"role": "user", "content": "Why?"}]
    follow = tokenizer(tokenizer.apply_chat_template(turns, tokenize=False,
                                                     add_generation_prompt=True),
                       add_special_tokens=False).input_ids

    async def many(engine: LlamaCppEngine) -> tuple[list[int], list[int]]:
        for ids in prompts:
            await text_of(engine, ids, params)
        after_many = engine.held_prompts
        for ids in (chat_ids(tokenizer, QUESTIONS[0]), follow):
            await text_of(engine, ids, params)
        return after_many, engine.held_prompts

    engine = llama(gguf, tokenizer, n_ctx=4096)
    after_many, after_follow = run(engine, many)
    assert len(after_many) <= HELD_PROMPTS and sum(after_many) <= 4096 // HELD_CELLS_SHARE
    assert len(after_many) > 1
    assert after_many[0] == len(prompts[-1])  # the most recent first
    assert after_many == sorted(after_many, reverse=True)  # the oldest went first
    assert after_follow[0] == len(follow)
    assert len(chat_ids(tokenizer, QUESTIONS[0])) not in after_follow  # replaced by its turn


def test_cancelled_request_frees_its_sequence(gguf: Path, tokenizer) -> None:
    async def body(engine: LlamaCppEngine) -> tuple[int, int, int]:
        stream = engine.submit(GenerationRequest(chat_ids(tokenizer, QUESTIONS[2]),
                                                 SamplingParams(max_tokens=200)))
        await stream.__anext__()
        held = engine.cached_sequences
        await stream.aclose()
        await settled(engine)
        return held, engine.cached_sequences, engine.num_running

    assert run(llama(gguf, tokenizer), body) == (1, 0, 0)


def test_admission_is_eager(gguf: Path, tokenizer) -> None:
    """A full engine refuses with 429 at once; a stopping one with 503; echo with 400."""
    ids = chat_ids(tokenizer, QUESTIONS[0])

    async def body(engine: LlamaCppEngine) -> None:
        first = engine.submit(GenerationRequest(ids, SamplingParams(max_tokens=100)))
        await first.__anext__()  # running: the one row is taken, nothing may wait
        with pytest.raises(QueueFull):
            engine.submit(GenerationRequest(ids, SamplingParams(max_tokens=4)))
        with pytest.raises(UnsupportedParameter):
            engine.submit(GenerationRequest(ids, SamplingParams(max_tokens=4,
                                                                prompt_logprobs=1)))
        await first.aclose()
        await engine.drain(0.0)  # refuses from now on
        with pytest.raises(NotReady):
            engine.submit(GenerationRequest(ids, SamplingParams(max_tokens=4)))

    run(llama(gguf, tokenizer, max_batch_size=1, max_waiting=0), body)


def test_evidence_constraint_is_honoured(core: Path, gguf: Path, tokenizer) -> None:
    """A grounded reply under the copy constraint copies the evidence, as on the torch engine."""
    question = "What is the capital of Australia?"
    ids = chat_ids(tokenizer, question, system=f"Answer from this evidence: {EVIDENCE}")

    def reply(engine: Engine) -> str:
        constraint = copy_constraint(tokenizer, [EVIDENCE], engine.stop_ids, question)
        params = SamplingParams(max_tokens=40, constraint=constraint)
        return run(engine, lambda e: text_of(e, ids, params))

    got = reply(llama(gguf, tokenizer))
    model = AutoModelForCausalLM.from_pretrained(core, dtype=torch.float32).eval()
    assert got == reply(Engine(model, tokenizer))
    assert got.strip() and got.strip() in EVIDENCE


@pytest.fixture(scope="module")
def llama_server(core: Path, default_kb_dir: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real `cogcore serve --engine llamacpp` on loopback with the default knowledge base."""
    tmp = tmp_path_factory.mktemp("llama-server")
    server = start(core, tmp / "serve.log", kb_dir=default_kb_dir, env={
        "COGCORE_ENGINE": "llamacpp", "COGCORE_LLAMACPP_THREADS": "1",
        "COGCORE_ARTIFACTS": str(tmp), "COGCORE_API_KEYS": "test-key"})
    yield server
    stop(server)


def test_server_on_llamacpp_answers_the_openai_client(llama_server: Server) -> None:
    client = OpenAI(base_url=f"{llama_server.url}/v1", api_key="test-key", max_retries=0)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    whole = client.chat.completions.create(model=llama_server.model, messages=messages,
                                           max_tokens=24, temperature=0)
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model=llama_server.model, messages=messages, max_tokens=24, temperature=0, stream=True)
        if c.choices)
    assert whole.choices[0].message.content == streamed
    assert "Paris" in streamed
    assert list((llama_server.log_path.parent / "cache" / "gguf").glob("*.gguf"))
