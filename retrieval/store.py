"""The document store: SQLite in WAL mode, the single source of truth.

It holds documents, their chunks, metadata (whole, as canonical JSON, and one row per key for
filtering), text hashes and every chunk's embedding, so any index can be rebuilt without the
embedder. A write is one transaction; its COMMIT (synchronous=FULL) is the acknowledgement.
Chunk ids come from AUTOINCREMENT and are never reused, so an index and the store agree exactly
when they hold the same set of chunk ids.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.documents import ValidDocument, filter_value_json
from retrieval.errors import DocumentNotFoundError, InvalidSearchError, UnknownFilterKeyError

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY, text TEXT NOT NULL, metadata TEXT NOT NULL,
    text_hash TEXT NOT NULL, n_chunks INTEGER NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, document_id TEXT NOT NULL,
    position INTEGER NOT NULL, text TEXT NOT NULL, embedding BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks(document_id);
CREATE TABLE IF NOT EXISTS metadata (
    document_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (document_id, key));
CREATE INDEX IF NOT EXISTS metadata_by_value ON metadata(key, value);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

Filters = dict[str, Any]


@dataclass(frozen=True)
class StoredDocument:
    """A document as stored: text, metadata, its chunk count and content hash."""

    id: str
    text: str
    metadata: dict[str, Any]
    n_chunks: int
    text_hash: str


@dataclass(frozen=True)
class ChunkRow:
    """One chunk's text with the document it belongs to and that document's metadata."""

    id: int
    document_id: str
    text: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class WritePlan:
    """What to write for one document: its chunks and their embeddings (None: metadata only)."""

    document: ValidDocument
    chunks: list[str] | None
    vectors: np.ndarray | None


class DocumentStore:
    """SQLite-backed documents, chunks, metadata and embeddings; one writer, many readers."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        uri = f"file:{path}?mode={'ro' if readonly else 'rwc'}"
        # Autocommit mode: every transaction below is explicit, so the COMMIT is visible in code.
        self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 10000")
        if not readonly:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the connection; committed data is already on disk."""
        self._db.close()

    @contextmanager
    def _transaction(self, kind: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        self._db.execute(f"BEGIN {kind}")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[DocumentStore]:
        """Run several reads against one consistent state of the database."""
        with self._transaction("DEFERRED"):
            yield self

    def get_state(self, key: str) -> str | None:
        """A value from the key-value state table."""
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str) -> None:
        """Set a value in the key-value state table (its own transaction)."""
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, value))

    def generation(self) -> int:
        """A counter bumped by every committed write, so readers notice others' writes."""
        return int(self.get_state("generation") or 0)

    def existing(self, ids: Sequence[str]) -> dict[str, tuple[str, str, int]]:
        """(text hash, metadata JSON, chunk count) of those of `ids` that are stored."""
        found: dict[str, tuple[str, str, int]] = {}
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT id, text_hash, metadata, n_chunks FROM documents WHERE id IN ({marks})",
                part,
            )
            found.update({row[0]: (row[1], row[2], row[3]) for row in rows})
        return found

    def write(self, plans: Sequence[WritePlan]) -> tuple[list[int], np.ndarray, list[int]]:
        """Apply every plan in one transaction: (new chunk ids, their vectors, removed ids)."""
        added: list[int] = []
        vectors: list[np.ndarray] = []
        removed: list[int] = []
        with self._transaction() as db:
            for plan in plans:
                doc = plan.document
                if plan.chunks is None or plan.vectors is None:
                    db.execute("UPDATE documents SET metadata = ?, updated_at = ? WHERE id = ?",
                               (doc.metadata_json, time.time(), doc.id))
                    self._write_metadata(doc)
                    continue
                removed.extend(self._delete_rows(doc.id))
                db.execute("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)",
                           (doc.id, doc.text, doc.metadata_json, doc.text_hash,
                            len(plan.chunks), time.time()))
                self._write_metadata(doc)
                for position, (text, vector) in enumerate(zip(plan.chunks, plan.vectors,
                                                              strict=True)):
                    cursor = db.execute(
                        "INSERT INTO chunks (document_id, position, text, embedding) "
                        "VALUES (?, ?, ?, ?)",
                        (doc.id, position, text, np.asarray(vector, np.float32).tobytes()),
                    )
                    added.append(int(cursor.lastrowid or 0))
                vectors.append(plan.vectors)
            self._bump(db)
        stacked = np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32)
        return added, stacked, removed

    def delete(self, doc_id: str) -> list[int]:
        """Delete a document with its chunks and metadata; the removed chunk ids."""
        with self._transaction() as db:
            if not db.execute("SELECT 1 FROM documents WHERE id = ?", (doc_id,)).fetchone():
                raise DocumentNotFoundError(f"no document with id {doc_id!r}")
            removed = self._delete_rows(doc_id)
            self._bump(db)
        return removed

    def _delete_rows(self, doc_id: str) -> list[int]:
        ids = [r[0] for r in self._db.execute(
            "SELECT id FROM chunks WHERE document_id = ?", (doc_id,))]
        self._db.execute("DELETE FROM chunks WHERE document_id = ?", (doc_id,))
        self._db.execute("DELETE FROM metadata WHERE document_id = ?", (doc_id,))
        self._db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        return ids

    def _write_metadata(self, doc: ValidDocument) -> None:
        self._db.execute("DELETE FROM metadata WHERE document_id = ?", (doc.id,))
        self._db.executemany(
            "INSERT INTO metadata VALUES (?, ?, ?)",
            [(doc.id, key, filter_value_json(value)) for key, value in doc.metadata.items()],
        )

    def _bump(self, db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO state VALUES ('generation', '1') ON CONFLICT(key) DO UPDATE "
                   "SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)")

    def get(self, doc_id: str) -> StoredDocument:
        """One stored document, or DocumentNotFoundError."""
        row = self._db.execute(
            "SELECT id, text, metadata, n_chunks, text_hash FROM documents WHERE id = ?", (doc_id,)
        ).fetchone()
        if row is None:
            raise DocumentNotFoundError(f"no document with id {doc_id!r}")
        return StoredDocument(row[0], row[1], json.loads(row[2]), row[3], row[4])

    def list(self, offset: int = 0, limit: int = 100) -> list[StoredDocument]:
        """Documents in id order, a page at a time."""
        rows = self._db.execute(
            "SELECT id, text, metadata, n_chunks, text_hash FROM documents ORDER BY id "
            "LIMIT ? OFFSET ?", (max(0, limit), max(0, offset)),
        )
        return [StoredDocument(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]

    def count(self) -> int:
        """Number of stored documents."""
        return int(self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def chunk_count(self) -> int:
        """Number of stored chunks."""
        return int(self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def chunk_ids(self) -> np.ndarray:
        """Every chunk id, sorted, as int64."""
        rows = self._db.execute("SELECT id FROM chunks ORDER BY id").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def embeddings(self, ids: np.ndarray, dim: int) -> np.ndarray:
        """The stored vectors of `ids`, in that order."""
        out = np.zeros((len(ids), dim), np.float32)
        position = {int(i): n for n, i in enumerate(ids)}
        for start in range(0, len(ids), 500):
            part = [int(i) for i in ids[start : start + 500]]
            marks = ",".join("?" * len(part))
            for cid, blob in self._db.execute(
                f"SELECT id, embedding FROM chunks WHERE id IN ({marks})", part
            ):
                out[position[cid]] = np.frombuffer(blob, np.float32)
        return out

    def chunk_texts(self) -> tuple[np.ndarray, list[str]]:
        """Every chunk id with its text, in id order (for the BM25 index)."""
        rows = self._db.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()
        return np.array([r[0] for r in rows], np.int64), [r[1] for r in rows]

    def chunk_rows(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        """Chunks by id with their document's id and metadata."""
        found: dict[int, ChunkRow] = {}
        for start in range(0, len(ids), 500):
            part = [int(i) for i in ids[start : start + 500]]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                "SELECT c.id, c.document_id, c.text, d.metadata FROM chunks c "
                f"JOIN documents d ON d.id = c.document_id WHERE c.id IN ({marks})", part,
            )
            found.update({r[0]: ChunkRow(r[0], r[1], r[2], json.loads(r[3])) for r in rows})
        return found

    def matching_chunk_ids(self, filters: Filters) -> np.ndarray:
        """Chunk ids whose document matches every filter (a list value means "any of")."""
        sql = "SELECT id FROM chunks WHERE 1"
        params: list[str] = []
        for key, wanted in filters.items():
            if not self._db.execute("SELECT 1 FROM metadata WHERE key = ? LIMIT 1",
                                    (key,)).fetchone():
                raise UnknownFilterKeyError(f"no stored document has metadata key {key!r}")
            values = wanted if isinstance(wanted, list) else [wanted]
            if not values:
                raise InvalidSearchError(f"filter {key!r} lists no values")
            marks = ",".join("?" * len(values))
            sql += (" AND document_id IN (SELECT document_id FROM metadata "
                    f"WHERE key = ? AND value IN ({marks}))")
            params += [key, *(filter_value_json(v) for v in values)]
        rows = self._db.execute(sql, params).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
