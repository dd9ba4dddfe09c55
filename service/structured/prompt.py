"""A conversation with tools, rendered into the plain role/content messages a chat template
without tool support takes (SmolLM2's knows only system, user and assistant turns).

- The functions go into the system prompt, after the client's own system text, in the SmolLM2
  family's function-calling layout: a `<tools>` JSON list, then the `<tool_call>[...]` form.
- An assistant message that carried `tool_calls` becomes its text followed by the call block,
  exactly as the model would have written it.
- `role: tool` results become a user turn of `<tool_response>` blocks (consecutive results
  share one turn, as Qwen's and Hermes' templates do), each naming the function it answers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from service.structured.grammar import StructuredOutputError
from service.structured.tools import TOOL_CLOSE, TOOL_OPEN, ToolPlan

TOOLS_PROMPT = """You can call the following functions:
<tools>{tools}</tools>

To call functions, reply with nothing but one list of calls in this form:
{open}[{{"name": "function_name", "arguments": {{"argument": "value"}}}}]{close}
Give every required argument, with the type its schema says."""
AUTO_NOTE = "\nIf none of the functions fits the request, answer in plain text instead."
RESULT_OPEN, RESULT_CLOSE = "<tool_response>", "</tool_response>"


def tools_system_prompt(plan: ToolPlan) -> str:
    """The system prompt's part that lists the functions and the call form."""
    listed = json.dumps([f.describe() for f in plan.functions], ensure_ascii=False)
    text = TOOLS_PROMPT.format(tools=listed, open=TOOL_OPEN, close=TOOL_CLOSE)
    return text + (AUTO_NOTE if plan.mode == "auto" else "")


def render_messages(messages: Sequence[dict], plan: ToolPlan | None) -> list[dict]:
    """OpenAI chat messages (dicts; content a string or text parts) as role/content turns for
    the chat template, with the functions of `plan` (if any) in the system prompt."""
    names: dict[str, str] = {}  # tool_call_id -> function name, from earlier assistant turns
    out: list[dict] = []
    results: list[str] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            results.append(_result(message, names, i))
            continue
        if results:
            out.append({"role": "user", "content": "\n".join(results)})
            results = []
        text = _text(message.get("content"), i)
        if role == "assistant" and message.get("tool_calls"):
            text = _with_calls(text, message["tool_calls"], names, i)
        out.append({"role": "system" if role == "developer" else role, "content": text})
    if results:
        out.append({"role": "user", "content": "\n".join(results)})
    if plan is not None:
        _add_system(out, tools_system_prompt(plan))
    return out


def _add_system(out: list[dict], extra: str) -> None:
    if out and out[0]["role"] == "system":
        joined = "\n\n".join(t for t in (out[0]["content"], extra) if t)
        out[0] = {"role": "system", "content": joined}
    else:
        out.insert(0, {"role": "system", "content": extra})


def _text(content: object, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    raise StructuredOutputError(f"messages[{index}].content must be text", "messages")


def _with_calls(text: str, tool_calls: object, names: dict[str, str], index: int) -> str:
    if not isinstance(tool_calls, list):
        raise StructuredOutputError(f"messages[{index}].tool_calls must be a list", "messages")
    calls = []
    for call in tool_calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise StructuredOutputError(
                f"messages[{index}].tool_calls needs function names", "messages")
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except (TypeError, json.JSONDecodeError) as exc:
            raise StructuredOutputError(
                f"messages[{index}].tool_calls: arguments are not JSON ({exc})",
                "messages") from exc
        if isinstance(call.get("id"), str):
            names[call["id"]] = function["name"]
        calls.append({"name": function["name"], "arguments": arguments})
    block = TOOL_OPEN + json.dumps(calls, ensure_ascii=False) + TOOL_CLOSE
    return f"{text}\n{block}" if text else block


def _result(message: dict, names: dict[str, str], index: int) -> str:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise StructuredOutputError(f"messages[{index}] (role tool) needs a tool_call_id",
                                    "messages")
    name = names.get(call_id) or message.get("name") or ""
    body = json.dumps({"name": name, "content": _text(message.get("content"), index)},
                      ensure_ascii=False)
    return f"{RESULT_OPEN}{body}{RESULT_CLOSE}"
