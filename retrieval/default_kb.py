"""The default knowledge base: one document per entity of `cogcore.facts`, nothing else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cogcore.facts import load_entities
from retrieval.backends import open_knowledge_base
from retrieval.documents import Document
from retrieval.embedder import TextEncoder
from retrieval.knowledge_base import KBSettings, KnowledgeBase

SOURCES = ("default",)
BATCH = 64


def default_documents() -> list[Document]:
    """Every entity (country, element, US state) as a document of full sentences."""
    return [
        Document(e.id, e.document(),
                 {"source": e.source, "entity": e.id, "kind": e.kind, "name": e.name,
                  **({"aliases": list(e.aliases)} if e.aliases else {})})
        for e in load_entities()
    ]


def build_default(path: Path | str, embedder: TextEncoder | None = None,
                  settings: KBSettings | None = None,
                  progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Bring the KB at `path` (a directory or a database URL) to exactly the default
    documents; its stats afterwards."""
    documents = default_documents()
    with open_knowledge_base(path, embedder=embedder, settings=settings) as kb:
        wanted = {d.id for d in documents}
        stale = [d.id for page in _pages(kb) for d in page if d.id not in wanted]
        for doc_id in stale:
            kb.delete(doc_id)
        for start in range(0, len(documents), BATCH):
            kb.upsert(documents[start : start + BATCH])
            if progress:
                progress(len(documents[start : start + BATCH]))
        kb.flush()
        return kb.stats()


def _pages(kb: KnowledgeBase, size: int = 500):
    offset = 0
    while page := kb.list(offset, size):
        yield page
        offset += size
