"""The request path's tool-call shaping (service/tool_calls.py), on replies given as text:
a whole reply into content / tool_calls / finish_reason, and a stream's deltas into OpenAI's
tool-call chunks (held back while the text may still become a call)."""

from __future__ import annotations

import json

from service.generation import Delta
from service.protocol import DeltaMessage
from service.structured import plan_tools
from service.structured.examples import TIME_TOOL, WEATHER_TOOL
from service.tool_calls import Shape, tool_stream

PLAN = plan_tools([WEATHER_TOOL, TIME_TOOL], "auto")
CALL = '<tool_call>[{"name": "get_time", "arguments": {"zone": "Europe/Oslo"}}]</tool_call>'


def _stream(pieces: list[str], finish: str = "stop") -> list[tuple[dict, str | None]]:
    """The chunks (delta as sent, finish_reason) a stream of `pieces` becomes."""
    def chunk(delta: DeltaMessage, reason: str | None = None, index: int = 0,
              logprobs: dict | None = None) -> tuple[dict, str | None]:
        return delta.model_dump(), reason

    def step(d: Delta) -> tuple[dict, str | None]:
        return chunk(DeltaMessage(content=d.text or None), d.finish_reason)

    wrapped = tool_stream(step, chunk, PLAN)
    out = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        out += wrapped(Delta(piece, i + 1, 5, finish if last else None))
    return out


def test_whole_reply_becomes_tool_calls_or_stays_text() -> None:
    content, calls, reason = Shape(PLAN, None).reply(CALL, "stop")
    assert content is None and reason == "tool_calls"
    assert calls[0]["function"]["name"] == "get_time"
    assert json.loads(calls[0]["function"]["arguments"]) == {"zone": "Europe/Oslo"}
    assert Shape(PLAN, None).reply("Sunny.", "stop") == ("Sunny.", None, "stop")
    assert Shape(PLAN, None).reply(CALL[:30], "length") == (CALL[:30], None, "length")
    assert Shape(None, None).reply(CALL, "stop") == (CALL, None, "stop")


def test_streamed_call_is_held_then_sent_as_openai_pieces() -> None:
    chunks = _stream([CALL[:5], CALL[5:40], CALL[40:], ""])
    deltas = [d for d, _ in chunks]
    assert all(d["content"] is None for d in deltas), "nothing of the call leaks as text"
    first, second = deltas[0]["tool_calls"][0], deltas[1]["tool_calls"][0]
    assert first["id"].startswith("call_") and first["function"] == {
        "name": "get_time", "arguments": ""}
    assert json.loads(second["function"]["arguments"]) == {"zone": "Europe/Oslo"}
    assert chunks[-1] == ({"role": None, "content": None}, "tool_calls")


def test_streamed_text_goes_out_once_it_cannot_be_a_call() -> None:
    chunks = _stream(["<", "b>bold", " text"])
    assert [d["content"] for d, _ in chunks] == ["<b>bold", " text"]
    assert chunks[-1][1] == "stop"
    cut = _stream([CALL[:20], CALL[20:30]], finish="length")  # a call cut by max_tokens
    assert cut == [({"role": None, "content": CALL[:30]}, "length")]
