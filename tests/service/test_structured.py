"""Structured outputs' logic on a tiny byte-level tokenizer built in code: compiling and
caching grammars, the constraint's two paths, response_format and tool handling."""

from __future__ import annotations

import functools
import json

import pytest
import torch

from service.structured import (
    GrammarCompiler,
    MaskBatch,
    StructuredOutputError,
    could_be_tool_call,
    parse_reply,
    plan_tools,
    render_messages,
    response_format_grammar,
    tool_grammar,
)
from service.structured.examples import EXAMPLES, TIME_TOOL, WEATHER_TOOL
from service.structured.grammar import Grammar
from tests.tiny_models import build_tokenizer

CALL = ('<tool_call>[{"name": "get_weather", "arguments": {"city": "Lima", '
        '"unit": "celsius"}}]</tool_call>')


tiny_tokenizer = functools.cache(build_tokenizer)


@pytest.fixture
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture
def compiler(tokenizer) -> GrammarCompiler:
    return GrammarCompiler(tokenizer, eos_ids=[tokenizer.eos_token_id])


def accepts(compiler: GrammarCompiler, grammar: Grammar, text: str) -> bool:
    """Whether `text`, then EOS, is a whole reply of `grammar`, each token checked against
    `allowed()` (the TokenConstraint path)."""
    tokenizer = tiny_tokenizer()
    constraint = compiler.constraint(grammar)
    reply = tokenizer(text, add_special_tokens=False)["input_ids"]
    for n in range(len(reply)):
        if reply[n] not in constraint.allowed(reply[:n]):
            return False
    return tokenizer.eos_token_id in constraint.allowed(reply)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_each_example_schema_takes_its_valid_document_and_refuses_its_invalid_one(
        compiler: GrammarCompiler, example) -> None:
    grammar = compiler.json_schema(example.schema)
    assert accepts(compiler, grammar, example.valid)
    assert not accepts(compiler, grammar, example.invalid)


def test_a_complete_document_allows_only_eos(compiler: GrammarCompiler, tokenizer) -> None:
    constraint = compiler.constraint(compiler.json_schema(EXAMPLES[0].schema))
    reply = tokenizer('{"name": "Ada", "age": 120', add_special_tokens=False)["input_ids"]
    assert tokenizer.eos_token_id not in constraint.allowed(reply), "not finished yet"
    done = reply + tokenizer("}", add_special_tokens=False)["input_ids"]
    assert constraint.allowed(done) == {tokenizer.eos_token_id}
    assert constraint.complete and not constraint.finished
    logits = torch.zeros(1, len(tokenizer))
    MaskBatch(len(tokenizer), max_rows=1).apply(logits, [(0, constraint)])
    assert torch.isfinite(logits[0]).nonzero().flatten().tolist() == [tokenizer.eos_token_id]
    constraint.advance(tokenizer.eos_token_id)
    assert constraint.finished


def test_cache_compiles_each_schema_once(compiler: GrammarCompiler) -> None:
    first = compiler.json_schema(EXAMPLES[0].schema)
    again = compiler.json_schema(json.loads(json.dumps(EXAMPLES[0].schema)))
    assert again is first
    compiler.json_schema(EXAMPLES[1].schema)
    assert (compiler.misses, compiler.hits) == (2, 1)


def test_cache_keeps_the_most_recent_schemas(tokenizer) -> None:
    small = GrammarCompiler(tokenizer, cache_size=1)
    a = small.json_schema(EXAMPLES[0].schema)
    small.json_schema(EXAMPLES[1].schema)
    assert small.json_schema(EXAMPLES[0].schema) is not a, "evicted, compiled again"
    assert small.misses == 3


@pytest.mark.parametrize("schema", [
    {"type": "objekt"},
    {"type": "string", "pattern": "(?=a)b"},
    {"type": "object", "properties": {"a": {"$ref": "#/defs/missing"}}},
    {"type": "integer", "minimum": "zero"},
    {"type": "string", "format": "no-such-format"},
    "not an object",
    {"type": "object", "description": "x" * 70_000},
])
def test_a_malformed_schema_is_refused_with_its_parameter(compiler: GrammarCompiler,
                                                          schema: object) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "bad", "schema": schema}}
    with pytest.raises(StructuredOutputError) as caught:
        response_format_grammar(compiler, fmt)
    assert caught.value.param == "response_format.json_schema.schema"
    assert str(caught.value)


@pytest.mark.parametrize("fmt", [
    {"type": "json_schema"}, {"type": "json_schema", "json_schema": {"schema": {}}},
    {"type": "yaml"}, "json_object",
])
def test_a_malformed_response_format_is_refused(compiler: GrammarCompiler, fmt: object) -> None:
    with pytest.raises(StructuredOutputError) as caught:
        response_format_grammar(compiler, fmt)
    assert caught.value.param == "response_format"


def test_json_object_takes_any_object_and_only_an_object(compiler: GrammarCompiler) -> None:
    assert response_format_grammar(compiler, None) is None
    assert response_format_grammar(compiler, {"type": "text"}) is None
    grammar = response_format_grammar(compiler, {"type": "json_object"})
    assert accepts(compiler, grammar, '{"a": [1, 2, {"b": null}], "c": "d"}')
    assert not accepts(compiler, grammar, "[1, 2]")
    assert not accepts(compiler, grammar, 'Sure! {"a": 1}')


def test_mask_batch_masks_constrained_rows_and_leaves_the_others(compiler: GrammarCompiler,
                                                                 tokenizer) -> None:
    grammar = compiler.json_schema(EXAMPLES[1].schema)
    first, second = compiler.constraint(grammar), compiler.constraint(grammar)
    reply = tokenizer('{"color": "', add_special_tokens=False)["input_ids"]
    for token in reply:
        second.advance(token)
    vocab = len(tokenizer)
    logits = torch.randn(3, vocab)
    free_row = logits[1].clone()
    MaskBatch(vocab, max_rows=2).apply(logits, [(0, first), (2, second)])
    assert torch.equal(logits[1], free_row), "a row without a grammar is untouched"
    for row, constraint, prefix in ((0, first, []), (2, second, reply)):
        allowed = set(torch.isfinite(logits[row]).nonzero().flatten().tolist())
        assert allowed == constraint.allowed(prefix)
    assert set(torch.isfinite(logits[0]).nonzero().flatten().tolist()) == set(
        tokenizer("{", add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize(("tools", "choice", "param"), [
    (None, "required", "tool_choice"),
    ([WEATHER_TOOL], {"type": "function", "function": {"name": "get_time"}}, "tool_choice"),
    ([WEATHER_TOOL], "sometimes", "tool_choice"),
    ([{"type": "retrieval"}], "auto", "tools"),
    ([{"type": "function", "function": {"name": "has space"}}], "auto", "tools"),
    ([WEATHER_TOOL, WEATHER_TOOL], "auto", "tools"),
    ([{"type": "function", "function": {"name": "f", "parameters": "x"}}], "auto", "tools"),
])
def test_bad_tools_or_tool_choice_are_refused(tools, choice, param: str) -> None:
    with pytest.raises(StructuredOutputError) as caught:
        plan_tools(tools, choice)
    assert caught.value.param == param


def test_tool_choice_modes() -> None:
    assert plan_tools(None, None) is None
    assert plan_tools([WEATHER_TOOL], "none") is None
    assert plan_tools([WEATHER_TOOL, TIME_TOOL], None).mode == "auto"
    named = plan_tools([WEATHER_TOOL, TIME_TOOL],
                       {"type": "function", "function": {"name": "get_time"}})
    assert (named.mode, named.names, named.parallel) == ("required", {"get_time"}, False)
    assert not plan_tools([WEATHER_TOOL], "auto", parallel_tool_calls=False).parallel
    with pytest.raises(StructuredOutputError):
        plan_tools([WEATHER_TOOL], "auto", parallel_tool_calls="yes")


def test_parallel_calls_unless_turned_off(compiler: GrammarCompiler) -> None:
    two = ('<tool_call>[{"name": "get_time", "arguments": {"zone": "CET"}}, '
           '{"name": "get_time", "arguments": {"zone": "UTC"}}]</tool_call>')
    for parallel in (True, False):
        plan = plan_tools([TIME_TOOL], "required", parallel_tool_calls=parallel)
        assert accepts(compiler, tool_grammar(compiler, plan), two) is parallel


def test_required_is_a_call_and_nothing_else(compiler: GrammarCompiler) -> None:
    grammar = tool_grammar(compiler, plan_tools([WEATHER_TOOL, TIME_TOOL], "required"))
    assert accepts(compiler, grammar, CALL)
    assert not accepts(compiler, grammar, "It is sunny.")
    assert not accepts(compiler, grammar, CALL.replace("celsius", "kelvin"))
    assert not accepts(compiler, grammar, CALL.replace('"city": "Lima", ', ""))


def test_named_function_allows_only_that_function(compiler: GrammarCompiler) -> None:
    plan = plan_tools([WEATHER_TOOL, TIME_TOOL],
                      {"type": "function", "function": {"name": "get_time"}})
    grammar = tool_grammar(compiler, plan)
    assert not accepts(compiler, grammar, CALL)
    assert accepts(compiler, grammar,
                   '<tool_call>[{"name": "get_time", "arguments": {"zone": "CET"}}]</tool_call>')


def test_auto_allows_text_or_a_valid_call(compiler: GrammarCompiler) -> None:
    grammar = tool_grammar(compiler, plan_tools([WEATHER_TOOL], "auto"))
    assert accepts(compiler, grammar, "It is sunny in Lima.")
    assert accepts(compiler, grammar, CALL)
    assert not accepts(compiler, grammar, CALL.replace("celsius", "kelvin"))


def test_parse_reply_into_openai_tool_calls() -> None:
    names = frozenset({"get_weather", "get_time"})
    reply = parse_reply("Let me check.\n" + CALL, names)
    assert reply.content == "Let me check."
    [call] = reply.tool_calls
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Lima", "unit": "celsius"}
    two = parse_reply('<tool_call>[{"name": "get_time", "arguments": {"zone": "CET"}}, '
                      '{"name": "get_time", "arguments": {"zone": "UTC"}}]</tool_call>', names)
    assert [json.loads(c["function"]["arguments"])["zone"] for c in two.tool_calls] == [
        "CET", "UTC"]
    assert two.content is None
    assert len({c["id"] for c in two.tool_calls}) == 2
    tricky = parse_reply(CALL.replace("Lima", "Lima</tool_call> x"), names)
    assert json.loads(tricky.tool_calls[0]["function"]["arguments"])["city"] == (
        "Lima</tool_call> x"), "a closing tag inside an argument is text"
    single = parse_reply('<tool_call>{"name": "get_time", "arguments": {}}</tool_call>', names)
    assert single.tool_calls[0]["function"]["arguments"] == "{}"


@pytest.mark.parametrize("text", [
    "It is sunny.", CALL[:-5], CALL.replace("get_weather", "get_stock"),
    "<tool_call>[{nope}]</tool_call>",
])
def test_a_reply_that_is_not_a_whole_known_call_stays_text(text: str) -> None:
    reply = parse_reply(text, frozenset({"get_weather"}))
    assert (reply.content, reply.tool_calls) == (text, [])


def test_could_be_tool_call() -> None:
    assert could_be_tool_call("") and could_be_tool_call("<tool") and could_be_tool_call(CALL)
    assert not could_be_tool_call("It") and not could_be_tool_call("<b>")


def test_render_messages_for_a_tool_loop() -> None:
    plan = plan_tools([WEATHER_TOOL], "auto")
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Lima"}'}}
    messages = render_messages([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Lima?"}]},
        {"role": "assistant", "content": None, "tool_calls": [call, {**call, "id": "call_2"}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21 C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "sunny"},
    ], plan)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"].startswith("Be brief.\n\nYou can call")
    assert '"name": "get_weather"' in messages[0]["content"]
    assert "plain text" in messages[0]["content"], "auto says text is allowed"
    replayed = parse_reply(messages[2]["content"], plan.names)
    assert [json.loads(c["function"]["arguments"]) for c in replayed.tool_calls] == [
        {"city": "Lima"}, {"city": "Lima"}]
    assert messages[3]["content"] == (
        '<tool_response>{"name": "get_weather", "content": "21 C"}</tool_response>\n'
        '<tool_response>{"name": "get_weather", "content": "sunny"}</tool_response>')


def test_render_messages_without_tools_changes_nothing_but_developer() -> None:
    messages = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert render_messages(messages, None) == [{"role": "system", "content": "Be brief."},
                                               {"role": "user", "content": "Hi"}]
    required = render_messages(messages[1:], plan_tools([WEATHER_TOOL], "required"))
    assert required[0]["role"] == "system" and "plain text" not in required[0]["content"]


@pytest.mark.parametrize("message", [
    {"role": "tool", "content": "21 C"},
    {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f",
                                                                  "arguments": "{oops"}}]},
    {"role": "assistant", "tool_calls": [{"id": "c"}]},
    {"role": "user", "content": 42},
])
def test_malformed_tool_messages_are_refused(message: dict) -> None:
    with pytest.raises(StructuredOutputError) as caught:
        render_messages([message], None)
    assert caught.value.param == "messages"
