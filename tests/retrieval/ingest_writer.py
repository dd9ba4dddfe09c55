"""A writer process for the crash test: ingests numbered documents, printing each acknowledged id.

Run as `python -m tests.retrieval.ingest_writer KB_DIR N`; a line is printed (and flushed) only
after `upsert` returned, i.e. after the SQLite commit.
"""

from __future__ import annotations

import sys
from pathlib import Path

from retrieval.documents import Document
from retrieval.knowledge_base import KBSettings, KnowledgeBase
from tests.retrieval.fakes import HashingEncoder

BATCH = 20


def record(i: int) -> Document:
    """Document number i, with a marker word no other document has."""
    return Document(f"rec-{i}", f"Record {i} carries the unique marker zq{i}x and some filler "
                    f"words about topic {i % 17}.", {"batch": i // BATCH})


def main() -> None:
    """Ingest N documents in batches, acknowledging each batch on stdout."""
    path, total = Path(sys.argv[1]), int(sys.argv[2])
    # Small saves so that the kill can land in the middle of writing the index file too.
    kb = KnowledgeBase.open(path, embedder=HashingEncoder(),
                            settings=KBSettings(save_every_chunks=300))
    for start in range(0, total, BATCH):
        done = kb.upsert([record(i) for i in range(start, min(total, start + BATCH))])
        sys.stdout.write("".join(f"{doc_id}\n" for doc_id, _ in done))
        sys.stdout.flush()
    kb.close()


if __name__ == "__main__":
    main()
