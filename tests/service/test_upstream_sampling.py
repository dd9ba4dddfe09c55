"""The upstream engine passes n, logit_bias and penalties through, reads choices by index, and
refuses what the OpenAI API cannot carry with a 400 naming it (never silently dropped)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from service.errors import UnsupportedParameter
from service.generation import GenerationRequest
from service.penalties import LogitBias, Penalties
from service.sampling import SamplingParams
from service.upstream import UpstreamEngine

EVENTS = [
    {"choices": [{"index": 0, "text": "a"}, {"index": 1, "text": "b"}]},
    {"choices": [{"index": 1, "text": "c", "finish_reason": "length"}]},
    {"choices": [{"index": 0, "text": "", "finish_reason": "stop"}]},
    {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 3}},
]


def run(params: SamplingParams) -> tuple[dict, list]:
    seen: dict = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(json.loads(request.content))
        body = "".join(f"data: {json.dumps(e)}\n\n" for e in EVENTS) + "data: [DONE]\n\n"
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    async def main() -> list:
        engine = UpstreamEngine("http://upstream", "m")
        engine._client = httpx.AsyncClient(base_url="http://upstream",
                                           transport=httpx.MockTransport(handler))
        stream = engine.submit(GenerationRequest([1, 2, 3], params))
        return [d async for d in stream]

    return seen, asyncio.run(main())


def test_n_bias_and_penalties_pass_through() -> None:
    params = SamplingParams(4, temperature=0.5, n=2, processors=(
        LogitBias({5: 10.0}), Penalties(0.5, 0.25)))
    body, deltas = run(params)
    assert body["n"] == 2 and body["logit_bias"] == {"5": 10.0}
    assert body["presence_penalty"] == 0.5 and body["frequency_penalty"] == 0.25
    text = {i: "".join(d.text for d in deltas if d.index == i) for i in (0, 1)}
    assert text == {0: "a", 1: "bc"}
    ends = {d.index: d.finish_reason for d in deltas if d.finish_reason}
    assert ends == {0: "stop", 1: "length"}


class Grammar:
    """A processor with no OpenAI field."""

    param = "response_format"

    def __call__(self, logits: object, reply: object) -> None: ...


@pytest.mark.parametrize(("params", "name"), [
    (SamplingParams(4, logprobs=2), "logprobs"),
    (SamplingParams(4, logprobs=0, prompt_logprobs=0), "logprobs"),
    (SamplingParams(4, processors=(Grammar(),)), "response_format"),
])
def test_what_cannot_be_carried_is_a_named_400(params: SamplingParams, name: str) -> None:
    with pytest.raises(UnsupportedParameter) as refused:
        run(params)
    assert refused.value.param == name
