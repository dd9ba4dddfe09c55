"""OpenAI `tools` and `tool_choice`: which functions the reply may call, the grammar that holds
a call to its function's parameters, and the reply's text parsed back into `tool_calls`.

The calls are written as the SmolLM2 family was taught to write them (Synth-APIGen data, the
format SmolLM2-Instruct's model card gives): one JSON list of {"name", "arguments"} objects
inside `<tool_call>...</tool_call>`. The checkpoint's chat template knows no tools, so the
list of functions goes into the system prompt (service/structured/prompt.py).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from service.structured.grammar import JSON_FORMAT, Grammar, GrammarCompiler, StructuredOutputError

TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"
JSON_SPACE = " \t\n\r"  # the whitespace JSON allows between tokens
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's rule for function names
NO_PARAMETERS: dict = {"type": "object", "properties": {}}
_DECODER = json.JSONDecoder()
Mode = Literal["none", "auto", "required"]


@dataclass(frozen=True)
class Function:
    """One callable function: its name, description and JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict

    def describe(self) -> dict:
        """The function as the system prompt lists it."""
        return {"name": self.name, "description": self.description,
                "parameters": self.parameters}


@dataclass(frozen=True)
class ToolPlan:
    """What the reply may do: `mode` none / auto / required, over `functions` (only the named
    one when tool_choice names a function)."""

    functions: tuple[Function, ...]
    mode: Mode
    parallel: bool = True  # parallel_tool_calls: more than one call in a reply

    @property
    def names(self) -> frozenset[str]:
        """Names the reply may call."""
        return frozenset(f.name for f in self.functions)


def plan_tools(tools: object, tool_choice: object, parallel_tool_calls: object = None
               ) -> ToolPlan | None:
    """Check `tools`, `tool_choice` and `parallel_tool_calls` as a request sends them; None when
    no tool is offered (tools absent, or tool_choice "none": the prompt lists no function)."""
    if parallel_tool_calls not in (None, True, False):
        raise StructuredOutputError("parallel_tool_calls must be true or false",
                                    "parallel_tool_calls")
    parallel = parallel_tool_calls is not False
    if not tools:
        if tool_choice not in (None, "none"):
            raise StructuredOutputError("tool_choice needs a non-empty tools list", "tool_choice")
        return None
    if not isinstance(tools, list):
        raise StructuredOutputError("tools must be a list", "tools")
    functions = [_function(tool, i) for i, tool in enumerate(tools)]
    names = [f.name for f in functions]
    if len(set(names)) != len(names):
        raise StructuredOutputError("two tools have the same function name", "tools")
    choice = "auto" if tool_choice is None else tool_choice
    if choice == "none":
        return None
    if choice in ("auto", "required"):
        return ToolPlan(tuple(functions), choice, parallel)
    named = _named_choice(choice)
    if named not in names:
        raise StructuredOutputError(f"tool_choice names {named!r}, which is not in tools",
                                    "tool_choice")
    return ToolPlan(tuple(f for f in functions if f.name == named), "required", False)


def _function(tool: object, index: int) -> Function:
    where = f"tools[{index}]"
    if not isinstance(tool, dict) or tool.get("type") != "function":
        raise StructuredOutputError(f'{where} must be {{"type": "function", ...}}', "tools")
    spec = tool.get("function")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise StructuredOutputError(f"{where}.function needs a name", "tools")
    if not NAME.match(spec["name"]):
        raise StructuredOutputError(
            f"{where}.function.name must be 1-64 letters, digits, _ or -", "tools")
    parameters = spec.get("parameters", NO_PARAMETERS)
    if not isinstance(parameters, dict):
        raise StructuredOutputError(f"{where}.function.parameters must be a JSON schema object",
                                    "tools")
    description = spec.get("description") or ""
    if not isinstance(description, str):
        raise StructuredOutputError(f"{where}.function.description must be a string", "tools")
    return Function(spec["name"], description, parameters)


def _named_choice(choice: object) -> str:
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return function["name"]
    raise StructuredOutputError(
        'tool_choice must be "none", "auto", "required" or '
        '{"type": "function", "function": {"name": ...}}', "tool_choice")


def calls_schema(plan: ToolPlan) -> dict:
    """JSON schema of the list inside <tool_call>: each item one function's name and
    arguments; one item when a function is named or parallel calls are off."""
    items = [{"type": "object", "additionalProperties": False, "required": ["name", "arguments"],
              "properties": {"name": {"const": f.name}, "arguments": f.parameters}}
             for f in plan.functions]
    schema: dict[str, Any] = {"type": "array", "minItems": 1,
                              "items": items[0] if len(items) == 1 else {"anyOf": items}}
    if not plan.parallel:
        schema["maxItems"] = 1
    return {**schema, "x-guidance": JSON_FORMAT}


def tool_grammar(compiler: GrammarCompiler, plan: ToolPlan | None) -> Grammar | None:
    """The grammar of the reply: required (or named) is a call and nothing else; auto is either
    a call or text that does not start with "<" (so the first character decides)."""
    if plan is None:
        return None
    call = f'call: "{TOOL_OPEN}" %json {json.dumps(calls_schema(plan))} "{TOOL_CLOSE}"'
    if plan.mode == "required":
        return compiler.lark(f"start: call\n{call}\n", "tools")
    return compiler.lark(f"start: TEXT | call\nTEXT: /[^<](.|\\n)*/\n{call}\n", "tools")


def could_be_tool_call(text: str) -> bool:
    """Whether a streamed reply that starts with `text` may turn out to be a call (so the
    stream holds it back instead of sending it as content)."""
    return text.startswith(TOOL_OPEN) or TOOL_OPEN.startswith(text)


@dataclass(frozen=True)
class ParsedReply:
    """A reply split into its text and its calls (OpenAI's `content` and `tool_calls`)."""

    content: str | None
    tool_calls: list[dict]


def parse_reply(text: str, names: frozenset[str]) -> ParsedReply:
    """`text` parsed into OpenAI tool calls (ids, type "function", arguments as a JSON string).

    Each block is read with a JSON decoder, not a pattern, since an argument may itself hold
    "</tool_call>". A reply whose blocks do not all parse as calls to `names` (a call cut by
    max_tokens, an unknown function) stays text: nothing is dropped silently."""
    calls: list[dict] = []
    rest: list[str] = []
    at = 0
    while (start := text.find(TOOL_OPEN, at)) >= 0:
        rest.append(text[at:start])
        parsed = _block(text, start + len(TOOL_OPEN), names)
        if parsed is None:
            return ParsedReply(text, [])
        block_calls, at = parsed
        calls.extend(block_calls)
    if not calls:
        return ParsedReply(text, [])
    rest.append(text[at:])
    content = "".join(rest).strip()
    return ParsedReply(content or None, calls)


def _block(text: str, at: int, names: frozenset[str]) -> tuple[list[dict], int] | None:
    """The calls of the block whose JSON starts at `at`, and where its closing tag ends."""
    try:
        value, end = _DECODER.raw_decode(text, at)
    except json.JSONDecodeError:
        return None
    close = text.find(TOOL_CLOSE, end)
    if close < 0 or text[end:close].strip():
        return None
    calls = _calls(value, names)
    if calls is None:
        return None
    for call, raw in zip(calls, _raw_arguments(text, at), strict=True):
        if raw is not None:  # the arguments as the model wrote them, as a stream sends them
            call["function"]["arguments"] = raw
    return calls, close + len(TOOL_CLOSE)


def new_call_id() -> str:
    """A tool call's id as OpenAI writes them: `call_` and 24 hex digits."""
    return f"call_{secrets.token_hex(12)}"


def _calls(value: object, names: frozenset[str]) -> list[dict] | None:
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict) or item.get("name") not in names:
            return None
        arguments = item.get("arguments", {})
        if not isinstance(arguments, dict):
            return None
        calls.append({"id": new_call_id(), "type": "function",
                      "function": {"name": item["name"],
                                   "arguments": json.dumps(arguments, ensure_ascii=False)}})
    return calls


def _raw_arguments(text: str, at: int) -> list[str | None]:
    """The text of each call's "arguments" value (None where absent) in the block's JSON at
    `at`, already known to be a list of objects or one object (so a walk with the decoder,
    which gives where each value ends, finds them)."""
    at = _space(text, at)
    if text[at] == "{":
        return [_raw_item_arguments(text, at)[0]]
    out = []
    at = _space(text, at + 1)
    while text[at] != "]":
        raw, at = _raw_item_arguments(text, at)
        out.append(raw)
        at = _space(text, at)
        at = _space(text, at + 1) if text[at] == "," else at
    return out


def _raw_item_arguments(text: str, at: int) -> tuple[str | None, int]:
    raw = None
    at = _space(text, at + 1)
    while text[at] != "}":
        key, at = _DECODER.raw_decode(text, at)
        start = _space(text, _space(text, at) + 1)  # past the colon
        _, at = _DECODER.raw_decode(text, start)
        if key == "arguments":
            raw = text[start:at]  # the last one, as the decoder keeps it
        at = _space(text, at)
        at = _space(text, at + 1) if text[at] == "," else at
    return raw, at + 1


def _space(text: str, at: int) -> int:
    while text[at] in JSON_SPACE:
        at += 1
    return at
