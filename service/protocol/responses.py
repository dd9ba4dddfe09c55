"""POST /v1/responses: OpenAI's Responses API, stateless (no `store`, no
`previous_response_id`), text in and text out, with the `cogcore` retrieval extension and
citations as `url_citation` annotations on the output text."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from service.protocol.base import StrictModel
from service.protocol.generation import GroundingInfo


class InputText(StrictModel):
    """A text part of an input message (`output_text`: an earlier reply sent back)."""

    type: Literal["input_text", "output_text"]
    text: str
    annotations: list[dict[str, Any]] | None = None  # an earlier reply's, ignored


class InputMessage(StrictModel):
    """One input item: a message (the easy form, or an earlier output message)."""

    type: Literal["message"] | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[InputText]
    id: str | None = None  # an earlier output message's, ignored
    status: str | None = None

    def text(self) -> str:
        """The message's text."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ResponsesRequest(StrictModel):
    """POST /v1/responses (the fields a stateless text service can honour)."""

    model: str
    input: str | list[InputMessage]
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stream: bool = False
    store: bool | None = None  # only false: nothing is stored here
    previous_response_id: str | None = None  # refused: nothing is stored here
    metadata: dict[str, str] | None = None
    user: str | None = None
    # Extension, as on chat: "always" (knowledge base), "never" (core alone), "auto".
    retrieval: Literal["auto", "always", "never"] = "auto"


class OutputText(BaseModel):
    """The reply's text, with a citation per source it read."""

    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[dict[str, Any]] = Field(default_factory=list)
    logprobs: list[Any] = Field(default_factory=list)


class OutputMessage(BaseModel):
    """The one output item: the assistant's message."""

    type: Literal["message"] = "message"
    id: str
    role: Literal["assistant"] = "assistant"
    status: Literal["in_progress", "completed", "incomplete"]
    content: list[OutputText]


class ResponsesUsage(BaseModel):
    """Token counts, as the Responses API names them."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: dict[str, int] = Field(default_factory=lambda: {"cached_tokens": 0})
    output_tokens_details: dict[str, int] = Field(
        default_factory=lambda: {"reasoning_tokens": 0})


class ResponseObject(BaseModel):
    """A response, whole (or as the events carry it)."""

    id: str
    object: Literal["response"] = "response"
    created_at: int
    model: str
    status: Literal["in_progress", "completed", "incomplete"]
    output: list[OutputMessage]
    usage: ResponsesUsage | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    temperature: float
    top_p: float
    incomplete_details: dict[str, str] | None = None
    error: None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    parallel_tool_calls: bool = False
    tool_choice: Literal["none"] = "none"
    tools: list[Any] = Field(default_factory=list)
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}})
    store: bool = False
    cogcore: GroundingInfo | None = None


class ResponseEvent(BaseModel):
    """One streamed event: its `type`, its place in the stream and its own fields."""

    type: str
    sequence_number: int
    response: ResponseObject | None = None
    output_index: int | None = None
    content_index: int | None = None
    item_id: str | None = None
    item: OutputMessage | None = None
    part: OutputText | None = None
    delta: str | None = None
    text: str | None = None
    logprobs: list[Any] | None = None

    @model_serializer(mode="wrap")
    def _own_fields_only(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Each event type has its own fields: the ones it does not carry are left out.
        data = handler(self)
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) \
            else data
