"""The documents API: batch upsert, get, delete, list and search over the knowledge base.

Reads need an API key (when keys are set); writes need an admin key. A write is durable (the
store's commit) and searchable by the next request when its response is sent. The store's own
validation errors become 4xx responses through `service.errors`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from service.auth import require_admin_key, require_api_key
from service.errors import NotReady, error_responses
from service.protocol import (
    DeletedDocument,
    DocumentOut,
    DocumentPage,
    SearchHit,
    SearchRequest,
    SearchResponse,
    UpsertedDocument,
    UpsertRequest,
    UpsertResponse,
)

if TYPE_CHECKING:
    from retrieval.knowledge_base import KnowledgeBase
    from retrieval.store import StoredDocument

MAX_PAGE = 1000
MAX_OFFSET = 2**62  # SQLite integers are 64-bit: a larger OFFSET would overflow, not page


class DocumentService:
    """Protocol types in, knowledge-base calls off the event loop, protocol types out."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

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

    @router.post("/search", dependencies=read, response_model=SearchResponse,
                 responses=error_responses(400, 413))
    async def search(body: SearchRequest, docs: Docs) -> Any:
        return await docs.search(body)

    return router
