"""Structured outputs and tool calls on the request path: a chat request's `response_format`
and `tools` turned into a grammar processor, and its replies into OpenAI's message and stream
shapes (`content`, `tool_calls`, finish_reason "tool_calls"). docs/structured.md.

Serving builds one `Structured` per served model (its grammar compiler and mask buffer, made
on the first request that needs them); the grammar itself lives in `service.structured`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from service.errors import InvalidRequest
from service.structured import (
    Grammar,
    GrammarCompiler,
    MaskBatch,
    ToolPlan,
    could_be_tool_call,
    parse_reply,
    plan_tools,
    response_format_grammar,
    tool_grammar,
)
from service.structured.processor import GrammarProcessor

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from service.generation import Delta
    from service.protocol import ChatCompletionRequest


@dataclass(frozen=True)
class Shape:
    """What a chat request asks of its reply: the functions it may call (`plan`) and the
    grammar that holds it (`processor`, one per request)."""

    plan: ToolPlan | None
    processor: GrammarProcessor | None

    def reply(self, text: str, finish_reason: str | None
              ) -> tuple[str | None, list[dict] | None, str | None]:
        """A whole reply as OpenAI's `content`, `tool_calls` and finish_reason."""
        if self.plan is None:
            return text, None, finish_reason
        parsed = parse_reply(text, self.plan.names)
        if not parsed.tool_calls:
            return text, None, finish_reason
        return parsed.content, parsed.tool_calls, "tool_calls"


class Structured:
    """The grammar compiler and mask buffer of one served model, built when first needed
    (the token table takes ~0.3 s)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, eos_ids: frozenset[int],
                 max_rows: int = 32) -> None:
        self.tokenizer, self.eos_ids, self.max_rows = tokenizer, eos_ids, max_rows
        self._built: tuple[GrammarCompiler, MaskBatch] | None = None
        self._lock = threading.Lock()

    def _parts(self) -> tuple[GrammarCompiler, MaskBatch]:
        with self._lock:
            if self._built is None:
                compiler = GrammarCompiler(self.tokenizer, eos_ids=self.eos_ids)
                self._built = compiler, MaskBatch(compiler.vocab_size, self.max_rows)
            return self._built

    def shape(self, req: ChatCompletionRequest) -> Shape | None:
        """The request's plan and grammar; None for a plain reply. Raises
        StructuredOutputError (a 400 naming its parameter) for what cannot be enforced."""
        plan = plan_tools(req.tools, req.tool_choice, req.parallel_tool_calls)
        wants_json = (req.response_format or {}).get("type", "text") != "text"
        if plan is None and not wants_json:
            # Checked all the same: a bad response_format is a 400 even when unused.
            response_format_grammar(self._parts()[0], req.response_format)
            return None
        if plan is not None and wants_json:
            raise InvalidRequest("response_format json_object / json_schema cannot be combined "
                                 "with tools here; send one of them", "response_format")
        if plan is not None and req.retrieval == "always":
            raise InvalidRequest('retrieval "always" cannot be combined with tools (the '
                                 "reader prompt lists no functions)", "retrieval")
        compiler, masks = self._parts()
        grammar: Grammar | None
        if plan is not None:
            grammar, param = tool_grammar(compiler, plan), "tools"
        else:
            grammar, param = response_format_grammar(compiler, req.response_format), \
                "response_format"
        processor = None if grammar is None else GrammarProcessor(compiler, grammar, masks,
                                                                  param)
        return Shape(plan, processor)


def reasoning_only(req: ChatCompletionRequest, shape: Shape | None) -> bool:
    """Whether the request skips retrieval (unless forced): it shapes its reply, offers
    tools (even with tool_choice "none") or carries tool results."""
    return (shape is not None or bool(req.tools)
            or any(m.role == "tool" or m.tool_calls for m in req.messages))


def tool_stream(step: Callable[[Delta], Any], chunk: Callable[..., Any], plan: ToolPlan
                ) -> Callable[[Delta], list]:
    """Wrap a chat stream's `step` (one delta to one chunk) for a request with tools.

    A choice's text is held back while it may still become a call (it starts as
    `<tool_call>` does); once it cannot, it goes out as content. A held reply that ends as
    calls goes out as OpenAI streams them: per call, a chunk with its index, id, type and
    function name (arguments ""), then one with its arguments; then an empty delta with
    finish_reason "tool_calls". `chunk(delta_message, reason, index, logprobs)` builds one."""
    from service.protocol import DeltaMessage

    held: dict[int, str] = {}
    holding: dict[int, bool] = {}

    def wrapped(d: Delta) -> list:
        if not holding.setdefault(d.index, True):
            return [step(d)]
        text = held.get(d.index, "") + d.text
        if not could_be_tool_call(text):
            holding[d.index] = False
            return [step(replace(d, text=text))]
        held[d.index] = text
        if d.finish_reason is None:
            return [step(replace(d, text=""))] if d.logprobs else []
        parsed = parse_reply(text, plan.names)
        if not parsed.tool_calls:
            return [step(replace(d, text=text))]
        out = [chunk(DeltaMessage(content=parsed.content), None, d.index)] \
            if parsed.content else []
        for k, call in enumerate(parsed.tool_calls):
            function = call["function"]
            out.append(chunk(DeltaMessage(tool_calls=[{
                "index": k, "id": call["id"], "type": "function",
                "function": {"name": function["name"], "arguments": ""}}]), None, d.index))
            out.append(chunk(DeltaMessage(tool_calls=[{
                "index": k, "function": {"arguments": function["arguments"]}}]), None,
                d.index))
        out.append(chunk(DeltaMessage(), "tool_calls", d.index))
        return out

    return wrapped
