"""A writer process for the concurrency test: upserts and deletes on one PostgreSQL database.

    python -m tests.postgres.writer URL NAME COUNT
Writes COUNT documents of its own (NAME-i) and, between them, its own version of the shared
documents shared-0..9, deleting some of them again; prints "done" when every call returned.
"""

from __future__ import annotations

import sys

from retrieval.documents import Document
from retrieval.errors import DocumentNotFoundError
from retrieval.postgres.knowledge_base import PostgresKnowledgeBase
from tests.retrieval.fakes import HashingEncoder

SHARED = 10


def main(url: str, name: str, count: int) -> None:
    """Write, replace and delete, interleaving with the other writer."""
    with PostgresKnowledgeBase.open(url, embedder=HashingEncoder()) as kb:
        for i in range(count):
            words = " ".join(f"{name}word{i}x{j}" for j in range(40 + i % 50))
            kb.upsert([Document(f"{name}-{i}", f"Document {i} of {name}. {words}",
                                {"writer": name})])
            shared = f"shared-{i % SHARED}"
            kb.upsert([Document(shared, f"{name} wrote {shared} at step {i}. " * (1 + i % 7),
                                {"writer": name})])
            if i % 5 == 4:
                try:
                    kb.delete(f"shared-{(i + 3) % SHARED}")
                except DocumentNotFoundError:
                    pass  # the other writer deleted it first
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
