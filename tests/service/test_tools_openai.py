"""Structured outputs and tool calls through the official openai client against a real
`cogcore serve` on loopback, serving the real model (the default core, or the base on a clean
clone: tests/conftest.py): JSON mode and JSON schemas (sync and async, whole and streamed),
required, named and auto tool calls, tool results in the conversation, and 400s."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from openai.lib.streaming.chat import ChatCompletionStreamState

from loadtest.server import Server, start, stop
from service.structured.examples import EXAMPLES, TIME_TOOL, WEATHER_TOOL

pytestmark = pytest.mark.real_model
TOOLS = [WEATHER_TOOL, TIME_TOOL]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
PERSON = next(e for e in EXAMPLES if e.name == "person")


@pytest.fixture(scope="module")
def server(served_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    """A real server on the served model, on loopback (a long request timeout: a shared,
    loaded machine decodes slowly)."""
    running = start(served_model_dir, tmp_path_factory.mktemp("tools") / "serve.log",
                    env={"COGCORE_REQUEST_TIMEOUT_S": "1800"})
    yield running
    stop(running)


@pytest.fixture
def client(server: Server) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def _schema_format(example=PERSON) -> dict:
    return {"type": "json_schema", "json_schema": {"name": example.name, "strict": True,
                                                   "schema": example.schema}}


def _ask(model: str, text: str, **kwargs) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}],
            "temperature": 0, "max_tokens": 96, **kwargs}


def _valid_calls(calls) -> list[dict]:
    """Each call's arguments, checked against its function's schema."""
    out = []
    for call in calls:
        assert call.type == "function" and call.id.startswith("call_")
        arguments = json.loads(call.function.arguments)
        jsonschema.validate(arguments, SCHEMAS[call.function.name])
        out.append(arguments)
    return out


def test_json_object_and_schema_whole_and_streamed(client: OpenAI, server: Server) -> None:
    reply = client.chat.completions.create(**_ask(
        server.model, "Describe a cat as a JSON object.",
        response_format={"type": "json_object"}))
    assert reply.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(reply.choices[0].message.content), dict)

    kwargs = _ask(server.model, PERSON.request, response_format=_schema_format())
    whole = client.chat.completions.create(**kwargs).choices[0].message.content
    jsonschema.validate(json.loads(whole), PERSON.schema)
    streamed = "".join(c.choices[0].delta.content or "" for c in
                       client.chat.completions.create(**kwargs, stream=True) if c.choices)
    assert streamed == whole, "greedy: the stream carries the same document"


def test_json_schema_async_whole_and_streamed(server: Server) -> None:
    async def run() -> tuple[str, str]:
        aclient = AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        kwargs = _ask(server.model, PERSON.request, response_format=_schema_format())
        whole = (await aclient.chat.completions.create(**kwargs)).choices[0].message.content
        parts = [c.choices[0].delta.content or "" async for c in
                 await aclient.chat.completions.create(**kwargs, stream=True) if c.choices]
        await aclient.close()
        return whole, "".join(parts)

    whole, streamed = asyncio.run(run())
    jsonschema.validate(json.loads(whole), PERSON.schema)
    assert streamed == whole


def test_required_and_named_tool_calls(client: OpenAI, server: Server) -> None:
    ask = _ask(server.model, "What is the weather in Paris?", tools=TOOLS)
    reply = client.chat.completions.create(**ask, tool_choice="required").choices[0]
    assert reply.finish_reason == "tool_calls" and reply.message.tool_calls
    _valid_calls(reply.message.tool_calls)

    named = {"type": "function", "function": {"name": "get_time"}}
    reply = client.chat.completions.create(**ask, tool_choice=named).choices[0]
    assert [c.function.name for c in reply.message.tool_calls] == ["get_time"]
    _valid_calls(reply.message.tool_calls)


def _argument_pieces(chunks: list) -> tuple[list, dict[int, list[str]]]:
    """A stream's call-opening deltas (id, name) and each call's argument pieces, in order."""
    deltas = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
    named = [t for t in deltas if t.id]
    pieces: dict[int, list[str]] = {}
    for t in deltas:
        if not t.id:
            pieces.setdefault(t.index, []).append(t.function.arguments)
    return named, pieces


def test_streamed_tool_call_comes_in_pieces_that_join_to_the_whole(client: OpenAI,
                                                                    server: Server) -> None:
    """The arguments stream as they are generated (as OpenAI's do), and the pieces join to
    the arguments of the same request answered whole (greedy)."""
    kwargs = _ask(server.model, "What is the weather in Oslo?", tools=TOOLS,
                  tool_choice="required")
    whole = client.chat.completions.create(**kwargs).choices[0]
    state = ChatCompletionStreamState()
    chunks = list(client.chat.completions.create(**kwargs, stream=True))
    for chunk in chunks:
        state.handle_chunk(chunk)
    final = state.get_final_completion().choices[0]
    assert final.finish_reason == whole.finish_reason == "tool_calls"
    _valid_calls(final.message.tool_calls)
    named, pieces = _argument_pieces(chunks)
    assert [t.function.arguments for t in named] == [""] * len(named), \
        "the id and name come first, then the arguments"
    assert [t.function.name for t in named] == [c.function.name for c in
                                                whole.message.tool_calls]
    for k, call in enumerate(whole.message.tool_calls):
        assert len(pieces[k]) > 1, pieces
        assert "".join(pieces[k]) == call.function.arguments
        assert final.message.tool_calls[k].function.arguments == call.function.arguments


def test_stream_helper_accumulates_the_streamed_call(client: OpenAI, server: Server) -> None:
    """`client.chat.completions.stream(...)`, what apps use: its argument delta events join
    to its done event's arguments, which it parses (strict tools) and which equal the
    arguments of the same request answered whole."""
    strict = [{"type": "function", "function": {**t["function"], "strict": True}}
              for t in TOOLS]
    named = {"type": "function", "function": {"name": "get_time"}}
    kwargs = _ask(server.model, "What time is it in Tokyo?", tools=strict, tool_choice=named)
    whole = client.chat.completions.create(**kwargs).choices[0].message.tool_calls
    with client.chat.completions.stream(**kwargs) as stream:
        events = list(stream)
        final = stream.get_final_completion().choices[0]
    pieces = [e.arguments_delta for e in events
              if e.type == "tool_calls.function.arguments.delta"]
    [done] = [e for e in events if e.type == "tool_calls.function.arguments.done"]
    assert len(pieces) > 1 and "".join(pieces) == done.arguments
    assert done.name == "get_time" and done.arguments == whole[0].function.arguments
    assert done.parsed_arguments == json.loads(done.arguments)
    assert final.finish_reason == "tool_calls"
    assert _valid_calls(final.message.tool_calls) == [done.parsed_arguments]


def test_auto_calls_or_answers_and_takes_tool_results(client: OpenAI, server: Server) -> None:
    reply = client.chat.completions.create(**_ask(
        server.model, "What is the weather in Rome?", tools=TOOLS)).choices[0]
    if reply.message.tool_calls:  # auto: a call (valid) or text, the model's choice
        assert reply.finish_reason == "tool_calls"
        _valid_calls(reply.message.tool_calls)
    else:
        assert reply.message.content and not reply.message.content.startswith("<tool_call>")
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}
    messages = [{"role": "user", "content": "What is the weather in Rome?"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1",
                 "content": '{"temperature": 21, "sky": "sunny"}'}]
    answer = client.chat.completions.create(model=server.model, messages=messages, tools=TOOLS,
                                            tool_choice="none", temperature=0, max_tokens=40)
    text = answer.choices[0].message.content
    assert text and answer.choices[0].message.tool_calls is None
    assert "21" in text or "sunny" in text.lower(), text


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"response_format": {"type": "json_schema", "json_schema": {
        "name": "bad", "schema": {"type": "no-such-type"}}}}, "response_format.json_schema.schema"),
    ({"response_format": {"type": "xml"}}, "response_format"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     "tool_choice"),
    ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools"),
])
def test_bad_structure_is_a_400_naming_it(client: OpenAI, server: Server, kwargs: dict,
                                         param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**_ask(server.model, "hi", **kwargs))
    assert caught.value.body["param"] == param


def test_agents_sdk_loop_with_two_tools_completes(server: Server) -> None:
    """The OpenAI Agents SDK, offline (tracing off), runs its tool loop against the server:
    the model must choose one of two tools (required), the SDK runs it with arguments valid for
    its signature, and the run ends on that tool's result. A 135M model left on `auto` after a
    tool result keeps calling tools until max_turns, so the agent stops on the first tool."""
    from agents import (
        Agent,
        ModelSettings,
        OpenAIChatCompletionsModel,
        Runner,
        function_tool,
        set_tracing_disabled,
    )

    set_tracing_disabled(True)
    ran: list[tuple[str, str]] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        ran.append(("get_weather", city))
        return f"Sunny and 21 degrees in {city}."

    @function_tool
    def get_time(zone: str) -> str:
        """The local time in an IANA time zone."""
        ran.append(("get_time", zone))
        return f"It is 14:05 in {zone}."

    async def run() -> object:
        aclient = AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        agent = Agent(
            name="assistant", instructions="Answer with the tools' results.",
            tools=[get_weather, get_time], tool_use_behavior="stop_on_first_tool",
            model=OpenAIChatCompletionsModel(model=server.model, openai_client=aclient),
            model_settings=ModelSettings(temperature=0, max_tokens=96, tool_choice="required"))
        try:
            return await Runner.run(agent, "What is the weather in Paris?", max_turns=6)
        finally:
            await aclient.close()

    result = asyncio.run(run())
    assert ran and all(isinstance(arg, str) for _, arg in ran), ran
    assert result.final_output in {f"Sunny and 21 degrees in {ran[0][1]}.",
                                   f"It is 14:05 in {ran[0][1]}."}, result.final_output
