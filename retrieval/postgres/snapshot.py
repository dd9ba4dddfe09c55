"""Snapshots of the PostgreSQL knowledge base, at the SQL level (no `pg_dump` needed).

Export reads documents, metadata and chunks with their vectors in one REPEATABLE READ, READ
ONLY transaction (one consistent state while writers go on) into a SQLite file in the embedded
store's schema (`retrieval/snapshot.py` describes the directory around it). Import writes them
back with their chunk ids in one transaction that locks out writers, recomputing each chunk's
BM25 terms with the tokenizer the writers use, and the corpus statistics from them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector

from retrieval.errors import EmbedderMismatchError, KnowledgeBaseNotFoundError
from retrieval.postgres import schema, store
from retrieval.postgres.knowledge_base import _State, connect, describe
from retrieval.snapshot import SnapshotError, contents
from retrieval.store import SCHEMA

BATCH = 2000  # rows per fetch from the server and per insert into SQLite


def export_database(url: str, out: Path) -> dict[str, Any]:
    """Copy the database's knowledge base into SQLite file `out`; the manifest's fields."""
    lite = sqlite3.connect(out, isolation_level=None)
    lite.executescript(SCHEMA)
    with connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        register_vector(conn)
        with conn.transaction():
            version = schema.current_version(conn)
            if version == 0:
                raise KnowledgeBaseNotFoundError(f"{describe(url)} holds no knowledge base")
            schema.check_version(version)
            lite.execute("BEGIN")
            for table, sql in (
                ("documents", "SELECT id, text, metadata, text_hash, n_chunks, "
                              "extract(epoch FROM updated_at)::float8 FROM documents"),
                ("metadata", "SELECT document_id, key, value FROM metadata"),
                ("chunks", "SELECT id, document_id, position, text, embedding FROM chunks "
                           "ORDER BY id"),
                ("state", "SELECT key, value FROM kb_state"),
            ):
                _copy_out(conn, sql, lite, table)
            generation = conn.execute("SELECT generation FROM corpus").fetchone()[0]
            lite.execute("INSERT OR REPLACE INTO state VALUES ('generation', ?)",
                         (str(generation),))
            lite.execute("COMMIT")
    try:
        return {"backend": "postgresql", "schema_version": version, **contents(lite)}
    finally:
        lite.close()


def _copy_out(conn: psycopg.Connection, sql: str, lite: sqlite3.Connection, table: str) -> None:
    with conn.cursor(name=f"snapshot_{table}") as cur:  # server-side: streamed, not held
        cur.execute(sql)
        while rows := cur.fetchmany(BATCH):
            if table == "chunks":
                rows = [(*r[:4], _vector(r[4]).tobytes()) for r in rows]
            marks = ",".join("?" * len(rows[0]))
            lite.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


def _vector(value: Any) -> np.ndarray:
    """A stored vector as float32 (pgvector loads the binary form as its `Vector`)."""
    return np.asarray(value.to_numpy() if isinstance(value, Vector) else value, np.float32)


def import_database(snapshot: Path, url: str, manifest: dict[str, Any], force: bool) -> None:
    """Write the snapshot's documents into the database (migrated first if it is new)."""
    version = int(manifest.get("schema_version", 0))
    if manifest.get("backend") == "postgresql":
        schema.check_version(version)  # a snapshot from newer code: its meaning is unknown
    dim = int(str(manifest.get("embedder") or "/0").rpartition("/")[2])
    lite = sqlite3.connect(f"file:{snapshot}?mode=ro", uri=True)
    with connect(url) as conn:
        if schema.current_version(conn) < schema.LATEST:
            schema.migrate(conn, schema.IndexKnobs(dim))
        state = _State(conn)
        recorded = state.get_state("embedder")
        if manifest.get("embedder") and recorded not in (None, manifest["embedder"]):
            raise EmbedderMismatchError(f"{describe(url)} holds vectors of {recorded}, the "
                                        f"snapshot of {manifest['embedder']}")
        register_vector(conn)
        with conn.transaction():
            conn.execute("LOCK TABLE documents, chunks, chunk_terms, metadata, corpus "
                         "IN SHARE ROW EXCLUSIVE MODE")  # writers wait; readers go on
            held = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
            if held and not force:
                raise SnapshotError(f"{describe(url)} holds {held} documents: restore goes "
                                    "into an empty knowledge base (--force replaces them)")
            if held:
                conn.execute("TRUNCATE chunk_terms, metadata, chunks, documents")
            if manifest.get("embedder") and recorded is None:
                state.set_state("embedder", manifest["embedder"])
            chunks, terms = _copy_in(conn, lite)
            conn.execute("SELECT setval('chunks_id_seq', greatest(%s, "
                         "(SELECT last_value FROM chunks_id_seq)))", (max(1, _max_id(lite)),))
            conn.execute("UPDATE corpus SET chunks = %s, terms = %s, "
                         "generation = greatest(generation, %s) + 1",
                         (chunks, terms, manifest.get("generation", 0)))
    lite.close()


def _max_id(lite: sqlite3.Connection) -> int:
    return int(lite.execute("SELECT coalesce(max(id), 0) FROM chunks").fetchone()[0])


def _copy_in(conn: psycopg.Connection, lite: sqlite3.Connection) -> tuple[int, int]:
    """COPY documents, metadata, chunks and their terms; (chunks, terms) written."""
    n_chunks = n_terms = 0
    with conn.cursor() as cur:
        with cur.copy("COPY documents (id, text, metadata, text_hash, n_chunks) FROM STDIN") as c:
            for row in lite.execute("SELECT id, text, metadata, text_hash, n_chunks "
                                    "FROM documents"):
                c.write_row(row)
        with cur.copy("COPY metadata (document_id, key, value) FROM STDIN") as c:
            for row in lite.execute("SELECT document_id, key, value FROM metadata"):
                c.write_row(row)
        rows = lite.execute("SELECT id, document_id, position, text, embedding FROM chunks "
                            "ORDER BY id")
        while batch := rows.fetchmany(BATCH):
            tokens = store.tokenize([r[3] for r in batch])
            with cur.copy("COPY chunks (id, document_id, position, text, n_terms, embedding) "
                          "FROM STDIN") as c:
                for (cid, doc, position, text, blob), toks in zip(batch, tokens, strict=True):
                    c.write_row((cid, doc, position, text, len(toks),
                                 np.frombuffer(blob, np.float32)))
            with cur.copy("COPY chunk_terms (term, chunk_id, tf, dl) FROM STDIN") as c:
                for row in store.term_rows([r[0] for r in batch], tokens):
                    c.write_row(row)
            n_chunks += len(batch)
            n_terms += sum(len(t) for t in tokens)
    return n_chunks, n_terms
