"""POST /v1/responses over the chat path: a Responses request becomes a chat request
(`instructions` as the system message, `input` as the messages), is grounded and generated
as chat is, and comes back as a Response object or as the Responses API's event stream:
response.created, response.in_progress, response.output_item.added,
response.content_part.added, response.output_text.delta..., response.output_text.done,
response.content_part.done, response.output_item.done, response.completed (also when the
reply was cut at `max_output_tokens`: the response's status then says "incomplete").

Stateless: `store: true` and `previous_response_id` are 400s naming them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from service.choices import collect
from service.citations import annotations
from service.errors import InvalidRequest, UnsupportedParameter
from service.generation import Delta
from service.grounding import Grounded
from service.protocol import ChatCompletionRequest, GroundingInfo, new_id, now
from service.protocol import responses as shapes
from service.sse import sse

Prepare = Callable[[ChatCompletionRequest], Awaitable[tuple[Grounded, AsyncIterator[Delta]]]]


def chat_request(req: shapes.ResponsesRequest) -> ChatCompletionRequest:
    """The chat request that a Responses request asks for (400s naming what is refused)."""
    if req.store:
        raise UnsupportedParameter("store: true is not supported: this service keeps no "
                                   "responses (stateless); send store: false", "store")
    if req.previous_response_id is not None:
        raise UnsupportedParameter("previous_response_id is not supported: this service keeps "
                                   "no responses (stateless); send the conversation as input",
                                   "previous_response_id")
    messages = [{"role": "system", "content": req.instructions}] if req.instructions else []
    if isinstance(req.input, str):
        messages.append({"role": "user", "content": req.input})
    else:
        messages += [{"role": m.role, "content": m.text()} for m in req.input]
    if not messages:
        raise InvalidRequest("input is empty", "input")
    fields: dict[str, Any] = {"model": req.model, "messages": messages,
                              "temperature": req.temperature, "top_p": req.top_p,
                              "retrieval": req.retrieval}
    if req.max_output_tokens is not None:
        fields["max_completion_tokens"] = req.max_output_tokens
    try:
        return ChatCompletionRequest.model_validate(fields)
    except ValidationError as exc:
        raise InvalidRequest(f"input: {exc.errors()[0]['msg']}", "input") from exc


@dataclass
class Responder:
    """One Responses request's output: its ids, and its text as it grows."""

    req: shapes.ResponsesRequest
    model: str
    grounded: Grounded
    info: GroundingInfo
    rid: str = ""
    item_id: str = ""
    text: str = ""
    sequence: int = 0

    def __post_init__(self) -> None:
        self.rid, self.item_id, self.created_at = new_id("resp"), new_id("msg"), now()

    def part(self) -> shapes.OutputText:
        """The output text so far, with its citations."""
        cited = annotations(self.text, self.grounded.sources) if self.text else []
        return shapes.OutputText(text=self.text, annotations=[
            {"type": "url_citation", **a.url_citation.model_dump()} for a in cited])

    def message(self, status: str) -> shapes.OutputMessage:
        """The output message item, in `status`."""
        content = [self.part()] if status != "in_progress" else []
        return shapes.OutputMessage(id=self.item_id, status=status, content=content)

    def response(self, last: Delta | None) -> shapes.ResponseObject:
        """The response: in progress (no `last` yet), or finished by `last`."""
        status, incomplete = "in_progress", None
        if last is not None:
            status = "incomplete" if last.finish_reason == "length" else "completed"
            incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
        usage = None if last is None else shapes.ResponsesUsage(
            input_tokens=last.prompt_tokens, output_tokens=last.completion_tokens,
            total_tokens=last.prompt_tokens + last.completion_tokens)
        return shapes.ResponseObject(
            id=self.rid, created_at=self.created_at, model=self.model, status=status,
            output=[] if last is None else [self.message(status)], usage=usage,
            instructions=self.req.instructions, max_output_tokens=self.req.max_output_tokens,
            temperature=self.req.temperature, top_p=self.req.top_p,
            incomplete_details=incomplete, metadata=self.req.metadata or {},
            cogcore=self.info)

    def event(self, type_: str, **fields: Any) -> shapes.ResponseEvent:
        """The next event of the stream."""
        self.sequence += 1
        return shapes.ResponseEvent(type=type_, sequence_number=self.sequence - 1, **fields)

    def created(self) -> shapes.ResponseEvent:
        """The first event, sent at once (keep-alive comments follow while the model waits)."""
        return self.event("response.created", response=self.response(None))

    def opening(self) -> list[shapes.ResponseEvent]:
        """The events before the first text: in progress, its message, its text part."""
        return [self.event("response.in_progress", response=self.response(None)),
                self.event("response.output_item.added", output_index=0,
                           item=self.message("in_progress")),
                self.event("response.content_part.added", output_index=0, content_index=0,
                           item_id=self.item_id, part=shapes.OutputText(text=""))]

    def delta(self, d: Delta) -> list[shapes.ResponseEvent]:
        """One piece of text (none for an empty piece), after the opening events."""
        events = self.opening() if self.sequence == 1 else []
        self.text += d.text
        if d.text:
            events.append(self.event("response.output_text.delta", output_index=0,
                                     content_index=0, item_id=self.item_id, delta=d.text,
                                     logprobs=[]))
        return events

    def closing(self, last: Delta) -> list[shapes.ResponseEvent]:
        """The events after the last text."""
        status = self.response(last).status
        where = {"output_index": 0, "content_index": 0, "item_id": self.item_id}
        opened = self.opening() if self.sequence == 1 else []
        return [*opened,
                self.event("response.output_text.done", text=self.text, logprobs=[], **where),
                self.event("response.content_part.done", part=self.part(), **where),
                self.event("response.output_item.done", output_index=0,
                           item=self.message(status)),
                # response.completed even when cut at max_output_tokens (its status says
                # "incomplete"), as vLLM: the openai client's stream helpers wait for it.
                self.event("response.completed", response=self.response(last))]


async def respond(prepare: Prepare, req: shapes.ResponsesRequest, model: str,
                  info: Callable[[Grounded], GroundingInfo]) -> shapes.ResponseObject:
    """A whole response."""
    grounded, deltas = await prepare(chat_request(req))
    choice = (await collect(deltas))[0]
    out = Responder(req, model, grounded, info(grounded))
    out.text = choice.text
    return out.response(Delta("", choice.completion_tokens, choice.prompt_tokens,
                              choice.finish_reason))


async def respond_stream(prepare: Prepare, req: shapes.ResponsesRequest, model: str,
                         info: Callable[[Grounded], GroundingInfo], keep_alive_s: float | None
                         ) -> AsyncIterator[str]:
    """The response's events (a full queue fails here, before the stream starts)."""
    grounded, deltas = await prepare(chat_request(req))
    out = Responder(req, model, grounded, info(grounded))
    return sse(deltas, out.created(), out.delta, out.closing, keep_alive_s)
