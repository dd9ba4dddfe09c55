"""Structured outputs and tool calls on the request path: a chat request's `response_format`
and `tools` turned into a grammar processor, and its replies into OpenAI's message and stream
shapes (`content`, `tool_calls`, finish_reason "tool_calls"). docs/structured.md.

Serving builds one `Structured` per served model (its grammar compiler and mask buffer, made
on the first request that needs them); the grammar itself lives in `service.structured`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from service.errors import InvalidRequest
from service.structured import (
    TOOL_OPEN,
    CallDelta,
    CallStream,
    Grammar,
    GrammarCompiler,
    MaskBatch,
    ToolPlan,
    could_be_tool_call,
    new_call_id,
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


@dataclass
class _StreamedChoice:
    """One choice of a streamed reply with tools: its text while it may be a call, and the
    calls sent so far (their ids, names and the pieces of arguments text)."""

    reader: CallStream
    pieces: list[str] = field(default_factory=list)
    holding: bool = True  # the text may still be (or is) a call: not sent as content
    started: bool = False  # the text began with <tool_call>
    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    sent: list[list[str]] = field(default_factory=list)

    def agrees(self, calls: list[dict]) -> bool:
        """Whether the whole reply's calls continue what was sent."""
        return len(calls) >= len(self.ids) and all(
            call["function"]["name"] == name
            and call["function"]["arguments"].startswith("".join(sent))
            for call, name, sent in zip(calls, self.names, self.sent, strict=False))


def tool_stream(step: Callable[[Delta], Any], chunk: Callable[..., Any], plan: ToolPlan
                ) -> Callable[[Delta], list]:
    """Wrap a chat stream's `step` (one delta to one chunk) for a request with tools.

    A choice's text is held back while it may still become a call (it starts as
    `<tool_call>` does); once it cannot, it goes out as content. A call goes out as OpenAI
    streams it, read as it is generated (`CallStream`): a chunk with its index, id, type and
    function name (arguments "") once the name is written, then one per new piece of its
    arguments' text; at the end an empty delta with finish_reason "tool_calls". What the
    reader could not follow is sent from the whole reply at its end. A call that does not end
    whole (cut by max_tokens or a stop string) ends with the choice's own finish_reason, its
    pieces sent as they are; a reply that never became a call goes out as content.
    `chunk(delta_message, reason, index, logprobs)` builds one chunk."""
    from service.protocol import DeltaMessage

    choices: dict[int, _StreamedChoice] = {}

    def name(c: _StreamedChoice, index: int, call_id: str, function: str) -> Any:
        c.ids.append(call_id)
        c.names.append(function)
        c.sent.append([])
        return chunk(DeltaMessage(tool_calls=[{
            "index": len(c.ids) - 1, "id": call_id, "type": "function",
            "function": {"name": function, "arguments": ""}}]), None, index)

    def arguments(c: _StreamedChoice, index: int, k: int, text: str) -> Any:
        c.sent[k].append(text)
        return chunk(DeltaMessage(tool_calls=[{"index": k, "function": {"arguments": text}}]),
                     None, index)

    def send(c: _StreamedChoice, index: int, delta: CallDelta) -> Any:
        if delta.name is not None:
            return name(c, index, new_call_id(), delta.name)
        return arguments(c, index, delta.index, delta.arguments)

    def end(c: _StreamedChoice, d: Delta) -> list:
        text = "".join(c.pieces)
        parsed = parse_reply(text, plan.names)
        scores = [step(replace(d, text="", finish_reason=None))] if d.logprobs else []
        if parsed.tool_calls and c.agrees(parsed.tool_calls):
            out = [chunk(DeltaMessage(content=parsed.content), None, d.index)] \
                if parsed.content else []
            for k, call in enumerate(parsed.tool_calls):
                if k == len(c.ids):
                    out.append(name(c, d.index, call["id"], call["function"]["name"]))
                rest = call["function"]["arguments"][len("".join(c.sent[k])):]
                if rest:
                    out.append(arguments(c, d.index, k, rest))
            return [*out, *scores, chunk(DeltaMessage(), "tool_calls", d.index)]
        # Not a call: all of it as content; or a call begun and cut: it ends as it is.
        return [step(replace(d, text="" if c.ids else text))]

    def wrapped(d: Delta) -> list:
        c = choices.setdefault(d.index, _StreamedChoice(CallStream(plan.names)))
        if not c.holding:
            return [step(d)]
        c.pieces.append(d.text)
        if not c.started:
            text = "".join(c.pieces)
            if not could_be_tool_call(text):
                c.holding = False
                return [step(replace(d, text=text))]
            c.started = text.startswith(TOOL_OPEN)
        out = [send(c, d.index, delta) for delta in c.reader.feed(d.text)]
        if d.finish_reason is not None:
            return out + end(c, d)
        return [*out, step(replace(d, text=""))] if d.logprobs else out

    return wrapped
