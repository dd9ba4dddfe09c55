"""The documents and files API: documents (batch upsert, get, delete, list), files (upload of
text, Markdown, HTML or PDF, get, delete, list) and search over the knowledge base.

Reads need an API key (when keys are set); writes need an admin key. A write is durable (the
store's commit) and searchable by the next request when its response is sent. The store's own
validation errors become 4xx responses through `service.errors`.

A file (`POST /v1/files`, multipart, as OpenAI's) is parsed and split by its structure
(`retrieval.formats`) and stored as one document per section, `<file id>#<n>`, each with its
place in the file in its metadata; a citation of one names the file and the place. The
whole file is parsed before anything is written, and its sections are written in one commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from pydantic import ValidationError

from retrieval.errors import DocumentNotFoundError, InvalidMetadataError
from retrieval.formats import (
    FORMATS,
    detect_format,
    drop_sections,
    file_documents,
    parse,
    section_id,
    sections_held,
)
from service.auth import require_admin_key, require_api_key
from service.errors import NotReady, UnsupportedParameter, error_responses
from service.protocol import (
    DeletedDocument,
    DocumentOut,
    DocumentPage,
    FileDeleted,
    FileList,
    FileObject,
    SearchHit,
    SearchRequest,
    SearchResponse,
    UpsertedDocument,
    UpsertRequest,
    UpsertResponse,
    now,
)

if TYPE_CHECKING:
    from retrieval.knowledge_base import KnowledgeBase
    from retrieval.store import StoredDocument

MAX_PAGE = 1000
MAX_OFFSET = 2**62  # SQLite integers are 64-bit: a larger OFFSET would overflow, not page
PURPOSES = ("assistants", "user_data")  # OpenAI's purposes for files a model reads


class DocumentService:
    """Protocol types in, knowledge-base calls off the event loop, protocol types out."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self._files = threading.Lock()  # a file's sections change under one writer at a time

    async def upsert(self, req: UpsertRequest) -> UpsertResponse:
        """Insert or replace documents; all or nothing."""
        from retrieval.documents import Document

        docs = [Document(d.id, d.text, d.metadata) for d in req.documents]
        done = await asyncio.to_thread(self.kb.upsert, docs)
        return UpsertResponse(data=[UpsertedDocument(id=i, chunks=n) for i, n in done])

    async def get(self, doc_id: str) -> DocumentOut:
        """One document by id."""
        return _out(await asyncio.to_thread(self.kb.get, doc_id))

    async def delete(self, doc_id: str) -> DeletedDocument:
        """Delete a document (404 when unknown)."""
        await asyncio.to_thread(self.kb.get, doc_id)  # an unknown id is a 404, not a no-op
        chunks = await asyncio.to_thread(self.kb.delete, doc_id)
        return DeletedDocument(id=doc_id, chunks=chunks)

    async def page(self, offset: int, limit: int) -> DocumentPage:
        """A page of documents in id order, with the total count."""
        docs, total = await asyncio.to_thread(
            lambda: (self.kb.list(offset, limit), self.kb.count()))
        return DocumentPage(data=[_out(d) for d in docs], offset=offset, limit=limit,
                            total=total)

    async def search(self, req: SearchRequest) -> SearchResponse:
        """Passages for a query by dense, BM25 or hybrid ranking, optionally filtered."""
        hits = await asyncio.to_thread(self.kb.search, req.query, req.k, req.mode, req.filter)
        return SearchResponse(data=[
            SearchHit(id=h.chunk_id, document_id=h.document_id, text=h.text, score=h.score,
                      metadata=h.metadata) for h in hits])


    async def upload(self, upload: FileUpload) -> FileObject:
        """Parse a file by its format, store its sections in one commit, drop older extra ones.

        The id is the caller's, else `file-` and a hash of the content: uploading the same
        bytes again replaces the file instead of adding a copy.
        """
        fmt = detect_format(upload.filename, upload.media_type, upload.format)
        metadata = _metadata(upload.metadata)
        file_id = upload.id or "file-" + hashlib.sha256(upload.data).hexdigest()[:24]
        sections = await asyncio.to_thread(parse, upload.data, fmt,
                                           self.kb.settings.max_text_bytes)
        created = now()
        docs = file_documents(file_id, sections, fmt, metadata,
                              filename=upload.filename or file_id,
                              extra={"bytes": len(upload.data), "created_at": created,
                                     "purpose": upload.purpose})

        def write() -> int:
            with self._files:
                held = sections_held(self.kb, file_id)
                done = self.kb.upsert(docs)
                drop_sections(self.kb, file_id, len(docs), held)
            return sum(n for _, n in done)

        chunks = await asyncio.to_thread(write)
        return _file_out(docs[0].metadata, chunks)

    async def get_file(self, file_id: str) -> FileObject:
        """One uploaded file, from its first section's record."""
        doc = await asyncio.to_thread(self.kb.get, section_id(file_id, 0))
        found = _stored_file(doc.metadata) if doc.metadata.get("file_id") == file_id else None
        if found is None:
            raise DocumentNotFoundError(f"no file with id {file_id!r}")
        return found

    async def delete_file(self, file_id: str) -> FileDeleted:
        """Delete every section of a file (404 when unknown)."""
        await self.get_file(file_id)

        def drop() -> int:
            with self._files:
                return drop_sections(self.kb, file_id, 0, sections_held(self.kb, file_id))

        return FileDeleted(id=file_id, chunks=await asyncio.to_thread(drop))

    async def files(self) -> FileList:
        """Every uploaded file; a scan of the documents (files are few beside them)."""
        def scan() -> list[FileObject]:
            found, offset = [], 0
            while page := self.kb.list(offset, MAX_PAGE):
                found += [f for d in page
                          if d.id == section_id(str(d.metadata.get("file_id")), 0)
                          and "purpose" in d.metadata
                          and (f := _stored_file(d.metadata)) is not None]
                offset += len(page)
            return found

        return FileList(data=await asyncio.to_thread(scan))


@dataclass(frozen=True)
class FileUpload:
    """One multipart upload, as the route received it."""

    data: bytes
    filename: str | None
    media_type: str | None
    purpose: str
    id: str | None = None
    format: str | None = None
    metadata: str | None = None


def _metadata(raw: str | None) -> dict[str, Any]:
    """The upload's `metadata` field: a JSON object, or nothing."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidMetadataError(f"metadata is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidMetadataError("metadata must be a JSON object")
    return value


def _file_out(meta: dict[str, Any], chunks: int | None = None) -> FileObject:
    return FileObject(id=meta["file_id"], bytes=meta.get("bytes", 0),
                      created_at=meta.get("created_at", 0),
                      filename=meta.get("filename", meta["file_id"]),
                      purpose=meta.get("purpose", "assistants"), format=meta["format"],
                      sections=meta["sections"], chunks=chunks)


def _stored_file(meta: dict[str, Any]) -> FileObject | None:
    """The file a first section's metadata records; None when it records no file (a document
    added as `<id>#0` with a `file_id` but no `format` or `sections`, or with a field of the
    wrong type): such a document is not a file to get, delete or list."""
    fmt, sections = meta.get("format"), meta.get("sections")
    if (not isinstance(meta.get("file_id"), str) or fmt not in FORMATS
            or type(sections) is not int or sections < 1):
        return None
    try:
        return _file_out(meta)
    except ValidationError:
        return None


def _out(doc: StoredDocument) -> DocumentOut:
    return DocumentOut(id=doc.id, text=doc.text, metadata=doc.metadata, chunks=doc.n_chunks)


def get_documents(request: Request) -> DocumentService:
    """The documents service, or 503 while loading (or when no knowledge base is loaded)."""
    documents: DocumentService | None = request.app.state.documents
    if documents is None:
        loading = request.app.state.serving is None
        raise NotReady("the service is still loading" if loading else
                       "no knowledge base is loaded (COGCORE_LOAD_KB=false)")
    return documents


Docs = Annotated[DocumentService, Depends(get_documents)]


def documents_router() -> APIRouter:
    """Routes of the documents API; thin: each calls one `DocumentService` method."""
    router = APIRouter(prefix="/v1", responses=error_responses(401, 503))
    read = [Depends(require_api_key)]
    write = [Depends(require_admin_key)]

    @router.post("/documents", dependencies=write, response_model=UpsertResponse,
                 responses=error_responses(400, 403, 409, 413))
    async def upsert(body: UpsertRequest, docs: Docs) -> Any:
        return await docs.upsert(body)

    @router.get("/documents", dependencies=read, response_model=DocumentPage,
                responses=error_responses(400))
    async def page(docs: Docs, offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
                   limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100) -> Any:
        return await docs.page(offset, limit)

    @router.get("/documents/{doc_id:path}", dependencies=read, response_model=DocumentOut,
                responses=error_responses(400, 404))
    async def get(doc_id: str, docs: Docs) -> Any:
        return await docs.get(doc_id)

    @router.delete("/documents/{doc_id:path}", dependencies=write,
                   response_model=DeletedDocument, responses=error_responses(400, 403, 404, 409))
    async def delete(doc_id: str, docs: Docs) -> Any:
        return await docs.delete(doc_id)

    @router.post("/files", dependencies=write, response_model=FileObject,
                 responses=error_responses(400, 403, 409, 413))
    async def upload(
        docs: Docs,
        file: Annotated[UploadFile, File(description="text, Markdown, HTML or PDF")],
        purpose: Annotated[str, Form()] = "assistants",
        id: Annotated[str | None, Form(description="the file's id; the same id replaces "
                                       "[default: file- and a hash of the content]")] = None,
        format: Annotated[str | None, Form(description="text, markdown, html or pdf "
                                           "[default: by media type, else extension]")] = None,
        metadata: Annotated[str | None, Form(description="a JSON object, given to every "
                                             "section")] = None,
    ) -> Any:
        if purpose not in PURPOSES:
            raise UnsupportedParameter(f"purpose must be one of {', '.join(PURPOSES)}: files "
                                       "here are read by the model", "purpose")
        upload = FileUpload(await file.read(), file.filename, file.content_type, purpose,
                            id, format, metadata)
        return await docs.upload(upload)

    @router.get("/files", dependencies=read, response_model=FileList)
    async def files(docs: Docs) -> Any:
        return await docs.files()

    @router.get("/files/{file_id:path}", dependencies=read, response_model=FileObject,
                responses=error_responses(400, 404))
    async def get_file(file_id: str, docs: Docs) -> Any:
        return await docs.get_file(file_id)

    @router.delete("/files/{file_id:path}", dependencies=write, response_model=FileDeleted,
                   responses=error_responses(400, 403, 404, 409))
    async def delete_file(file_id: str, docs: Docs) -> Any:
        return await docs.delete_file(file_id)

    @router.post("/search", dependencies=read, response_model=SearchResponse,
                 responses=error_responses(400, 413))
    async def search(body: SearchRequest, docs: Docs) -> Any:
        return await docs.search(body)

    return router
