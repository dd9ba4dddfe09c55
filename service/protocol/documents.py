"""The knowledge base's own endpoints: documents, search and uploaded files."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from service.protocol.base import StrictModel


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
