"""Request and response types of the OpenAI-compatible API, and the one error envelope.

Unknown request fields are refused (`extra="forbid"`) so that a parameter this service does not
implement is a 400 naming it, never silently ignored. Request types are strict (`"3"` is not an
integer) and refuse lone UTF-16 surrogates (`"\\ud800"` in JSON), which no tokenizer, embedder
or store can encode.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError


class ErrorBody(BaseModel):
    """OpenAI's error fields."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """The one error envelope: `{"error": {...}}`."""

    error: ErrorBody


class StrictModel(BaseModel):
    """A request body that refuses unknown fields, loose types and unencodable text."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _encodable_text(cls, data: Any) -> Any:
        _check_encodable(data, ())
        return data


def _check_encodable(value: Any, path: tuple[str, ...]) -> None:
    """Raise a validation error naming the first string (key or value) not valid as UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            where = ".".join(path) or "body"
            raise PydanticCustomError(
                "invalid_unicode", "{where} holds a lone surrogate (not valid Unicode)",
                {"where": where}) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_encodable(key, path)
            _check_encodable(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_encodable(item, (*path, str(index)))


class StreamOptions(StrictModel):
    """Streaming options: a final usage chunk on request."""

    include_usage: bool = False


class TextPart(StrictModel):
    """A text content part of a chat message."""

    type: Literal["text"]
    text: str


class ChatMessage(StrictModel):
    """One chat message; content as a string or as text parts."""

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        """The message content as one string."""
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
    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[str, float] | None = None
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
    top_logprobs: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None


class CompletionRequest(SamplingFields):
    """POST /v1/completions."""

    prompt: str | list[str] | list[int]
    max_tokens: int | None = Field(16, ge=1)
    logprobs: int | None = None
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = None


class EmbeddingRequest(StrictModel):
    """POST /v1/embeddings."""

    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None


def new_id(prefix: str) -> str:
    """A fresh OpenAI-style object id."""
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    """Unix seconds, as OpenAI's `created` fields."""
    return int(time.time())


class Usage(BaseModel):
    """Token counts of one request."""

    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


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
    content: str
    annotations: list[Annotation] = Field(default_factory=list)


class ChatChoice(BaseModel):
    """One chat completion choice."""

    index: int = 0
    message: AssistantMessage
    finish_reason: str | None
    logprobs: None = None


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

    @model_serializer(mode="wrap")
    def _without_empty_annotations(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Sent once: the openai client merges a list sent twice by index, which citations
        # lack; every other chunk leaves the key out.
        data = handler(self)
        if isinstance(data, dict) and data.get("annotations") is None:
            data.pop("annotations", None)
        return data


class ChatChunkChoice(BaseModel):
    """One choice of a streamed chat chunk."""

    index: int = 0
    delta: DeltaMessage
    finish_reason: str | None = None
    logprobs: None = None


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
    logprobs: None = None


class CompletionResponse(BaseModel):
    """A text completion, whole or as one streamed chunk."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    cogcore: GroundingInfo | None = None  # when streamed, on the first chunk only


class ModelCard(BaseModel):
    """One entry of GET /v1/models."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "cogcore"


class ModelList(BaseModel):
    """GET /v1/models."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class EmbeddingData(BaseModel):
    """One embedding vector (floats, or base64 of little-endian float32)."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingResponse(BaseModel):
    """POST /v1/embeddings."""

    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: Usage


class DocumentIn(StrictModel):
    """One document to upsert: the same id replaces, the same content is a no-op."""

    id: str
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class UpsertRequest(StrictModel):
    """POST /v1/documents."""

    documents: list[DocumentIn] = Field(min_length=1, max_length=1000)


class UpsertedDocument(BaseModel):
    """One upserted document and the number of chunks it was split into."""

    id: str
    chunks: int


class UpsertResponse(BaseModel):
    """POST /v1/documents: every document is durable and searchable when this is sent."""

    object: Literal["list"] = "list"
    data: list[UpsertedDocument]


class DocumentOut(BaseModel):
    """GET /v1/documents/{id}."""

    object: Literal["document"] = "document"
    id: str
    text: str
    metadata: dict[str, Any]
    chunks: int


class DocumentPage(BaseModel):
    """GET /v1/documents: one page, in id order."""

    object: Literal["list"] = "list"
    data: list[DocumentOut]
    offset: int
    limit: int
    total: int


class DeletedDocument(BaseModel):
    """DELETE /v1/documents/{id}."""

    object: Literal["document.deleted"] = "document.deleted"
    id: str
    deleted: bool = True
    chunks: int


class SearchRequest(StrictModel):
    """POST /v1/search; `filter` maps a metadata key to a value or to a list of values."""

    query: str
    k: int = Field(5, ge=1, le=100)
    mode: Literal["dense", "bm25", "hybrid"] = "hybrid"
    filter: dict[str, Any] | None = None


class SearchHit(BaseModel):
    """One passage found by POST /v1/search."""

    id: int  # the chunk id
    document_id: str
    text: str
    score: float
    metadata: dict[str, Any]


class SearchResponse(BaseModel):
    """POST /v1/search."""

    object: Literal["list"] = "list"
    data: list[SearchHit]


class FileObject(BaseModel):
    """POST /v1/files and GET /v1/files/{id}: OpenAI's file object, parsed into the store.

    Beside OpenAI's fields: the `format` it was read as, and the `sections` (documents
    `<id>#<n>`) and `chunks` it was stored as.
    """

    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["processed"] = "processed"
    status_details: str | None = None
    expires_at: int | None = None
    format: str
    sections: int
    chunks: int | None = None  # known on upload


class FileList(BaseModel):
    """GET /v1/files: the uploaded files, in id order."""

    object: Literal["list"] = "list"
    data: list[FileObject]
    has_more: bool = False


class FileDeleted(BaseModel):
    """DELETE /v1/files/{id}."""

    id: str
    object: Literal["file"] = "file"
    deleted: bool = True
    chunks: int
