"""n, logprobs, penalties, logit_bias and echo through the official openai client, sync and
async, streamed and not, against a real `cogcore serve` of the default core on loopback."""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest
from openai import AsyncOpenAI, BadRequestError, OpenAI

from loadtest.server import Server
from tests.service.test_small_endpoints import core_server  # noqa: F401  (the module's server)

pytestmark = pytest.mark.real_model
SAY = [{"role": "user", "content": "Name a colour."}]


@pytest.fixture
def client(core_server: Server) -> OpenAI:  # noqa: F811
    return OpenAI(base_url=f"{core_server.url}/v1", api_key="k", max_retries=0)


@pytest.fixture
def aclient(core_server: Server) -> AsyncOpenAI:  # noqa: F811
    return AsyncOpenAI(base_url=f"{core_server.url}/v1", api_key="k", max_retries=0)


def metric(server: Server, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(f"cogcore:{name}_total"))


def test_n_four_prefills_the_prompt_once(client: OpenAI, core_server: Server) -> None:  # noqa: F811
    """n=4 at temperature 0.8: 4 choices indexed 0..3, the prompt counted 4 times as asked but
    prefilled at most once; the same seed gives the same 4 choices again."""
    asked, computed = metric(core_server, "prompt_tokens"), metric(core_server, "prefill_tokens")
    kwargs = {"model": core_server.model, "messages": SAY, "n": 4, "temperature": 0.8,
              "max_tokens": 6, "seed": 11}
    reply = client.chat.completions.create(**kwargs)
    prompt = reply.usage.prompt_tokens
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    assert metric(core_server, "prompt_tokens") - asked == 4 * prompt
    assert metric(core_server, "prefill_tokens") - computed <= prompt
    assert 4 <= reply.usage.completion_tokens <= 4 * 6  # every choice's tokens
    texts = [c.message.content for c in reply.choices]
    assert len(set(texts)) > 1
    assert [c.message.content for c in client.chat.completions.create(**kwargs).choices] == texts


def test_n_streams_every_choice(client: OpenAI, core_server: Server) -> None:  # noqa: F811
    """Streamed n=3 (top_p, max_completion_tokens): each choice's deltas carry its index and
    each ends once."""
    stream = client.chat.completions.create(model=core_server.model, messages=SAY, n=3,
                                            temperature=0.8, top_p=0.9,
                                            max_completion_tokens=5, stream=True,
                                            stream_options={"include_usage": True})
    texts: dict[int, str] = {}
    ends: dict[int, int] = {}
    usage = None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            ends[choice.index] = ends.get(choice.index, 0) + bool(choice.finish_reason)
    assert sorted(texts) == [0, 1, 2] and ends == {0: 1, 1: 1, 2: 1}
    assert usage is not None and usage.completion_tokens > 3


def test_chat_logprobs_whole_and_streamed(client: OpenAI, core_server: Server) -> None:  # noqa: F811
    """Greedy chat with top_logprobs=3: each token is its own top alternative, bytes spell it,
    the streamed logprobs equal the whole ones."""
    kwargs = {"model": core_server.model, "messages": SAY, "max_tokens": 5, "temperature": 0,
              "logprobs": True, "top_logprobs": 3}
    whole = client.chat.completions.create(**kwargs).choices[0]
    content = whole.logprobs.content
    assert len(content) == 5
    for entry in content:
        assert len(entry.top_logprobs) == 3 and entry.top_logprobs[0].token == entry.token
        assert entry.logprob <= 0 and math.isclose(entry.logprob, entry.top_logprobs[0].logprob)
    assert b"".join(bytes(e.bytes) for e in content).decode() == whole.message.content
    streamed = [e for c in client.chat.completions.create(**kwargs, stream=True)
                for ch in c.choices if ch.logprobs for e in ch.logprobs.content]
    assert [(e.token, round(e.logprob, 4)) for e in streamed] == [
        (e.token, round(e.logprob, 4)) for e in content]


def test_completion_echo_and_logprobs(client: OpenAI, core_server: Server) -> None:  # noqa: F811
    """echo with logprobs=2: the prompt's text first, its first token's logprob None, offsets
    counting through the whole text; streamed the same."""
    kwargs = {"model": core_server.model, "prompt": "One, two, three,", "max_tokens": 4,
              "temperature": 0, "echo": True, "logprobs": 2}
    choice = client.completions.create(**kwargs).choices[0]
    lp = choice.logprobs
    assert choice.text.startswith("One, two, three,")
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert all(v <= 0 for v in lp.token_logprobs[1:])
    assert "".join(lp.tokens) == choice.text and lp.text_offset[0] == 0
    assert all(len(t) <= 2 for t in lp.top_logprobs[1:])
    assert [choice.text[o:o + len(t)] for o, t in zip(lp.text_offset, lp.tokens, strict=True)
            ] == lp.tokens
    streamed = list(client.completions.create(**kwargs, stream=True))
    assert "".join(c.choices[0].text for c in streamed if c.choices) == choice.text
    tokens = [t for c in streamed if c.choices and c.choices[0].logprobs
              for t in c.choices[0].logprobs.tokens]
    assert tokens == lp.tokens


def test_logit_bias_and_penalties(client: OpenAI, core_server: Server) -> None:  # noqa: F811
    """A +100 bias on one token makes the greedy reply that token only; a frequency penalty
    beside it stops the repetition; a bias outside the vocabulary is a 400 naming it."""
    ids = httpx.post(f"{core_server.url}/tokenize", headers={"Authorization": "Bearer k"},
                     json={"prompt": " blue"}).json()["tokens"]
    kwargs = {"model": core_server.model, "messages": SAY, "max_tokens": 4, "temperature": 0}
    biased = client.chat.completions.create(**kwargs, logit_bias={str(ids[0]): 100})
    assert biased.choices[0].message.content == " blue" * 4
    penalized = client.chat.completions.create(**kwargs, logit_bias={str(ids[0]): 10},
                                               frequency_penalty=2.0, presence_penalty=2.0)
    assert penalized.choices[0].message.content.count("blue") < 4
    with pytest.raises(BadRequestError) as refused:
        client.chat.completions.create(**kwargs, logit_bias={"999999": 5})
    assert refused.value.body["param"] == "logit_bias" and "999999" in str(refused.value)


def test_async_client(aclient: AsyncOpenAI, core_server: Server) -> None:  # noqa: F811
    """The async client: n=2 with logprobs, whole and streamed, concurrently."""

    async def main() -> tuple:
        whole = aclient.chat.completions.create(
            model=core_server.model, messages=SAY, n=2, max_tokens=4, temperature=0.7, seed=3,
            logprobs=True)
        stream = await aclient.completions.create(
            model=core_server.model, prompt="Red, green,", n=2, max_tokens=4, temperature=0.7,
            logprobs=1, stream=True, frequency_penalty=0.5)
        indices = set()
        async for chunk in stream:
            indices.update(c.index for c in chunk.choices)
        return await whole, indices

    whole, indices = asyncio.run(main())
    assert [c.index for c in whole.choices] == [0, 1] and indices == {0, 1}
    assert all(c.logprobs.content and c.logprobs.content[0].top_logprobs == []
               for c in whole.choices)


def test_still_unsupported_is_named(client: OpenAI, core_server: Server) -> None:  # noqa: F811
    """best_of and suffix stay 400s that name themselves."""
    for extra in ({"best_of": 2}, {"suffix": "x"}):
        with pytest.raises(BadRequestError) as refused:
            client.completions.create(model=core_server.model, prompt="a", max_tokens=1,
                                      **extra)
        assert refused.value.body["param"] == next(iter(extra))

