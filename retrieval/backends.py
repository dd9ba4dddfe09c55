"""Which knowledge-base backend a location names: a `postgresql://` URL or a directory.

    kb = open_knowledge_base(settings.kb_url or settings.kb_dir, embedder=..., readonly=...)

A directory opens the embedded store (SQLite + FAISS + BM25, one writer process); a URL opens
the PostgreSQL + pgvector one, which any number of processes read and write at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.embedder import TextEncoder
from retrieval.knowledge_base import KBSettings, KnowledgeBase

if TYPE_CHECKING:
    from retrieval.postgres.knowledge_base import PostgresKnowledgeBase

URL_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(location: str | Path | None) -> bool:
    """Whether `location` is a PostgreSQL URL rather than a directory."""
    return isinstance(location, str) and location.startswith(URL_SCHEMES)


def open_knowledge_base(location: str | Path, embedder: TextEncoder | None = None,
                        settings: KBSettings | None = None, readonly: bool = False
                        ) -> KnowledgeBase | PostgresKnowledgeBase:
    """The knowledge base at `location`: a PostgreSQL URL, else a directory."""
    if is_database_url(location):
        from retrieval.postgres.knowledge_base import PostgresKnowledgeBase

        return PostgresKnowledgeBase.open(str(location), embedder, settings, readonly)
    return KnowledgeBase.open(location, embedder, settings, readonly)
