"""The request path's tool-call shaping (service/tool_calls.py) and the incremental reader of
calls (service/structured/call_stream.py), on replies given as text: a whole reply into
content / tool_calls / finish_reason, and a stream's deltas into OpenAI's tool-call chunks (the
name once it is written, then the arguments piece by piece), split at every boundary."""

from __future__ import annotations

import json

import pytest

from service.generation import Delta, TokenLogprob
from service.protocol import DeltaMessage
from service.structured import CallStream, plan_tools
from service.structured.examples import TIME_TOOL, WEATHER_TOOL
from service.tool_calls import Shape, tool_stream

PLAN = plan_tools([WEATHER_TOOL, TIME_TOOL], "auto")
CALL = '<tool_call>[{"name": "get_time", "arguments": {"zone": "Europe/Oslo"}}]</tool_call>'
# Two calls; braces, brackets, quotes, backslashes and the closing tag inside strings.
TWO = ('<tool_call>[{"name": "get_time", "arguments": {"zone": "a}]\\"\\\\", "n": [1, {"x": '
       '"</tool_call>{"}]}}, {"name": "get_weather", "arguments": {"city": "Par\\u00efs", '
       '"unit": "celsius"}}]</tool_call>')
ONE = '<tool_call>{"name": "get_time", "arguments": {"zone": "CET"}}</tool_call>'
SPACED = ('<tool_call>[ {"name" : "get_time",\n "arguments":{ "zone":"CET" } } ]\n'
          '</tool_call>')
CALLS = [CALL, TWO, ONE, SPACED]
LOGPROB = (TokenLogprob(7, -0.5),)


def _stream(pieces: list[str], finish: str = "stop", logprobs: bool = False
            ) -> list[tuple[dict, str | None, bool]]:
    """The chunks (delta as sent, finish_reason, whether it carries logprobs) a stream of
    `pieces` becomes, one choice."""
    def chunk(delta: DeltaMessage, reason: str | None = None, index: int = 0,
              logprobs: object = None) -> tuple[dict, str | None, bool]:
        return delta.model_dump(), reason, logprobs is not None

    def step(d: Delta) -> tuple[dict, str | None, bool]:
        return chunk(DeltaMessage(content=d.text or None), d.finish_reason, d.index, d.logprobs)

    wrapped = tool_stream(step, chunk, PLAN)
    out = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        out += wrapped(Delta(piece, i + 1, 5, finish if last else None,
                             logprobs=LOGPROB if logprobs else None))
    return out


def _calls(chunks: list[tuple[dict, str | None, bool]]) -> list[dict]:
    """The calls a client rebuilds from the chunks' tool_calls deltas (as the SDK does)."""
    calls: list[dict] = []
    for delta, _, _ in chunks:
        for tool in delta.get("tool_calls") or []:
            if tool.get("id"):
                assert tool["index"] == len(calls), "a new call takes the next index"
                calls.append({"id": tool["id"], "name": tool["function"]["name"],
                              "arguments": tool["function"]["arguments"], "pieces": 0})
            else:
                calls[tool["index"]]["arguments"] += tool["function"]["arguments"]
                calls[tool["index"]]["pieces"] += 1
    return calls


def _reply_calls(text: str) -> list[tuple[str, str]]:
    _, calls, _ = Shape(PLAN, None).reply(text, "stop")
    return [(c["function"]["name"], c["function"]["arguments"]) for c in calls]


def test_whole_reply_becomes_tool_calls_or_stays_text() -> None:
    content, calls, reason = Shape(PLAN, None).reply(CALL, "stop")
    assert content is None and reason == "tool_calls"
    assert calls[0]["function"]["name"] == "get_time"
    assert json.loads(calls[0]["function"]["arguments"]) == {"zone": "Europe/Oslo"}
    assert Shape(PLAN, None).reply("Sunny.", "stop") == ("Sunny.", None, "stop")
    assert Shape(PLAN, None).reply(CALL[:30], "length") == (CALL[:30], None, "length")
    assert Shape(None, None).reply(CALL, "stop") == (CALL, None, "stop")


def test_whole_reply_arguments_are_the_text_the_model_wrote() -> None:
    """What a stream sends piece by piece, so the two agree exactly."""
    assert _reply_calls(SPACED) == [("get_time", '{ "zone":"CET" }')]
    assert _reply_calls(TWO)[1] == ("get_weather",
                                    '{"city": "Par\\u00efs", "unit": "celsius"}')
    late = '<tool_call>[{"arguments": {"zone": "CET"}, "name": "get_time"}]</tool_call>'
    assert _reply_calls(late) == [("get_time", '{"zone": "CET"}')]
    bare = '<tool_call>[{"name": "get_time"}]</tool_call>'
    assert _reply_calls(bare) == [("get_time", "{}")]


@pytest.mark.parametrize("text", CALLS)
def test_reader_split_at_every_boundary_gives_the_arguments_text(text: str) -> None:
    expected = _reply_calls(text)
    for cut in range(len(text) + 1):
        for pieces in ([text[:cut], text[cut:]], [text[:cut], *text[cut:]]):
            reader, names, arguments = CallStream(PLAN.names), [], {}
            for piece in pieces:
                for delta in reader.feed(piece):
                    if delta.name is not None:
                        assert delta.index == len(names) and delta.index not in arguments
                        names.append(delta.name)
                    else:
                        assert delta.index == len(names) - 1 and delta.arguments
                        arguments[delta.index] = arguments.get(delta.index, "") + delta.arguments
            assert reader.closed and not reader.stopped
            assert list(zip(names, arguments.values(), strict=True)) == expected, cut


def test_reader_sends_the_name_then_arguments_as_they_are_written() -> None:
    reader = CallStream(PLAN.names)
    head = '<tool_call>[{"name": "get_time'
    assert reader.feed(head) == []
    assert [d.name for d in reader.feed('", "arguments": {"zo')] == ["get_time", None]
    assert [d.arguments for d in reader.feed('ne": "}')] == ['ne": "}']
    assert [d.arguments for d in reader.feed('"}}]</tool_')] == ['"}']
    assert reader.feed("call>") == [] and reader.closed


@pytest.mark.parametrize("text", CALLS)
def test_stream_pieces_join_to_the_whole_reply_arguments(text: str) -> None:
    expected = _reply_calls(text)
    for cut in range(1, len(text)):
        chunks = _stream([*text[:cut], text[cut:], ""])
        assert all(d["content"] is None for d, _, _ in chunks), "nothing leaks as content"
        calls = _calls(chunks)
        assert [(c["name"], c["arguments"]) for c in calls] == expected, cut
        assert all(c["id"].startswith("call_") for c in calls)
        assert chunks[-1][1] == "tool_calls" and not any(chunks[-1][0].values())
    by_char = _calls(_stream([*text, ""]))
    assert all(c["pieces"] > 1 for c in by_char), "arguments come piece by piece"


def test_stream_sends_each_piece_when_it_is_written() -> None:
    pieces = ['<tool_call>[{"name": "get_', 'time", "argu', 'ments": {"zone": "Eu',
              'rope/Oslo"}}]</tool_call>', ""]
    chunks = [_stream(pieces[:i + 1] + [""])[:-1] for i in range(len(pieces) - 1)]
    sent = [_calls(c) for c in chunks]
    assert sent[0] == [] and sent[1][0]["arguments"] == ""
    assert sent[2][0]["arguments"] == '{"zone": "Eu'
    assert sent[3][0]["arguments"] == '{"zone": "Europe/Oslo"}'


def test_streamed_text_goes_out_once_it_cannot_be_a_call() -> None:
    chunks = _stream(["<", "b>bold", " text"])
    assert [d["content"] for d, _, _ in chunks] == ["<b>bold", " text"]
    assert chunks[-1][1] == "stop"
    before = _stream(["Sure. ", CALL])  # text before a call is content, as it always was
    assert [d["content"] for d, _, _ in before] == ["Sure. ", CALL]


def test_shapes_the_reader_does_not_follow_are_sent_whole_at_the_end() -> None:
    """auto: arguments before the name, or an unknown function: nothing is sent until the
    reply ends; then it is a call (sent whole) or text, as the whole-reply parse says."""
    late = '<tool_call>[{"arguments": {"zone": "CET"}, "name": "get_time"}]</tool_call>'
    chunks = _stream([*late, ""])
    assert len(chunks) == 3, "the name, the whole arguments and the end, all at the end"
    assert [(c["name"], c["arguments"], c["pieces"]) for c in _calls(chunks)] == [
        ("get_time", '{"zone": "CET"}', 1)]
    assert chunks[-1][1] == "tool_calls"
    unknown = CALL.replace("get_time", "get_date")
    chunks = _stream([*unknown, ""])
    assert [(d["content"], reason) for d, reason, _ in chunks] == [(unknown, "stop")]


def test_a_call_that_does_not_end_whole_ends_with_its_own_finish_reason() -> None:
    """Cut by max_tokens (or, without a grammar, JSON that breaks): the pieces already sent
    stand, as OpenAI's stream of a cut call; no "tool_calls", and no text sent again."""
    cut = _stream([*CALL[:60]], finish="length")
    [call] = _calls(cut)
    assert (call["name"], call["arguments"]) == ("get_time", '{"zone": "Euro')
    assert cut[-1][1] == "length" and not any(cut[-1][0].values())
    broken = _stream([*CALL.replace('"Europe/Oslo"', "Oslo"), ""])
    assert _calls(broken)[0]["arguments"].startswith('{"zone": Oslo}')
    assert [reason for _, reason, _ in broken] == [None] * (len(broken) - 1) + ["stop"]
    assert all(d["content"] is None for d, _, _ in broken)


def test_logprobs_go_out_while_a_call_is_held_and_streamed() -> None:
    chunks = _stream([*CALL, ""], logprobs=True)
    scored = [(d, reason) for d, reason, has in chunks if has]
    assert len(scored) == len(CALL) + 1, "every delta's logprobs go out, the last one too"
    assert all(not any(d.values()) for d, _ in scored)
    assert chunks[-1][1] == "tool_calls"


def test_choices_stream_their_calls_apart() -> None:
    def chunk(delta: DeltaMessage, reason: str | None = None, index: int = 0,
              logprobs: object = None) -> tuple[int, dict, str | None]:
        return index, delta.model_dump(), reason

    wrapped = tool_stream(lambda d: chunk(DeltaMessage(content=d.text or None),
                                          d.finish_reason, d.index), chunk, PLAN)
    out = []
    for i in range(len(CALL)):
        out += wrapped(Delta(CALL[i], i + 1, 5, None, index=0))
        out += wrapped(Delta("Hi"[i], i + 1, 5, None, index=1)) if i < 2 else []
    out += wrapped(Delta("", 99, 5, "stop", index=0)) + wrapped(Delta("", 3, 5, "stop", index=1))
    zero = _calls([(d, r, False) for i, d, r in out if i == 0])
    assert [(c["name"], c["arguments"]) for c in zero] == _reply_calls(CALL)
    assert [(d["content"], r) for i, d, r in out if i == 1] == [
        ("H", None), ("i", None), (None, "stop")]
