"""Chat and text completions: requests, whole responses, streamed chunks, citations and
the `cogcore` grounding extension."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from service.protocol.base import StrictModel, Usage


class StreamOptions(StrictModel):
    """Streaming options: a final usage chunk on request."""

    include_usage: bool = False


class TextPart(StrictModel):
    """A text content part of a chat message."""

    type: Literal["text"]
    text: str


class ChatMessage(StrictModel):
    """One chat message; content as a string or as text parts."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None  # None: an assistant turn of tool calls
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None  # assistant: the calls it made
    tool_call_id: str | None = None  # tool: the call this message answers

    def text(self) -> str:
        """The message content as one string."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class SamplingFields(StrictModel):
    """Fields shared by chat and text completions; the ones only accepted at their default
    (n, logprobs, penalties...) are checked by the serving layer, which names them."""

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), lt=2**63)  # int64, as OpenAI's
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1)  # at most the service's max_n (the serving layer checks it)
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None  # token id (as a string) -> -100..100
    user: str | None = None
    # Extension: route to the knowledge base ("always"), to the core alone ("never"), or let
    # the router decide ("auto"). The official client sends it through `extra_body`.
    retrieval: Literal["auto", "always", "never"] = "auto"

    def stop_list(self) -> list[str]:
        """Stop strings as a list (empty strings dropped)."""
        stops = [self.stop] if isinstance(self.stop, str) else (self.stop or [])
        return [s for s in stops if s]


class ChatCompletionRequest(SamplingFields):
    """POST /v1/chat/completions."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None


class CompletionRequest(SamplingFields):
    """POST /v1/completions."""

    prompt: str | list[str] | list[int]
    max_tokens: int | None = Field(16, ge=1)
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = None

class URLCitation(BaseModel):
    """OpenAI's `url_citation`: the source, and the span of the reply it supports.

    `url` is this service's address of the cited document (relative: GET it with the same
    key); `title` names the document and the place in it. Beside OpenAI's four fields, the
    cited chunk: `document_id`, `chunk_id`, `file_id` (when it came from an uploaded file)
    and `location` (`page`, `heading_path`, `char_start`, `char_end`, as far as known).
    """

    start_index: int
    end_index: int
    title: str
    url: str
    document_id: str
    chunk_id: int
    file_id: str | None = None
    location: dict[str, Any] = Field(default_factory=dict)


class Annotation(BaseModel):
    """One annotation of an assistant message: a citation, as OpenAI's chat completions."""

    type: Literal["url_citation"] = "url_citation"
    url_citation: URLCitation


class AssistantMessage(BaseModel):
    """The generated message of a chat completion, with a citation per source it read."""

    role: Literal["assistant"] = "assistant"
    content: str | None
    annotations: list[Annotation] = Field(default_factory=list)
    tool_calls: list[dict[str, Any]] | None = None  # id, type "function", name, arguments


class ChatChoice(BaseModel):
    """One chat completion choice."""

    index: int = 0
    message: AssistantMessage
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None  # {"content": [token, logprob, bytes, top_logprobs]}


class Source(BaseModel):
    """One passage of evidence an answer was read from."""

    id: str  # the document id: what a citation points to
    chunk_id: int
    text: str
    score: float
    metadata: dict[str, Any]


class GroundingInfo(BaseModel):
    """Extension field `cogcore` of a completion: how it was answered, and from what."""

    route: Literal["facts", "reasoning"]
    sources: list[Source]
    abstained: bool = False
    query: str | None = None  # the question searched: a follow-up rewritten to stand alone


class ChatCompletionResponse(BaseModel):
    """A non-streamed chat completion."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    cogcore: GroundingInfo | None = None


class DeltaMessage(BaseModel):
    """The increment of one streamed chat chunk; the annotations come once, with the last."""

    role: Literal["assistant"] | None = None
    content: str | None = None
    annotations: list[Annotation] | None = None
    tool_calls: list[dict[str, Any]] | None = None  # OpenAI's streamed call pieces, by index

    @model_serializer(mode="wrap")
    def _without_empty_annotations(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Sent once: the openai client merges a list sent twice by index, which citations
        # lack; every other chunk leaves the key out (tool_calls too, when there are none).
        data = handler(self)
        for key in ("annotations", "tool_calls"):
            if isinstance(data, dict) and data.get(key) is None:
                data.pop(key, None)
        return data


class ChatChunkChoice(BaseModel):
    """One choice of a streamed chat chunk."""

    index: int = 0
    delta: DeltaMessage
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed chat completion."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
    cogcore: GroundingInfo | None = None  # on the first chunk only


class CompletionChoice(BaseModel):
    """One text completion choice (also the streamed increment)."""

    index: int = 0
    text: str
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None  # tokens, token_logprobs, top_logprobs, text_offset


class CompletionResponse(BaseModel):
    """A text completion, whole or as one streamed chunk."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    cogcore: GroundingInfo | None = None  # when streamed, on the first chunk only
