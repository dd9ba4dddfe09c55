"""The PostgreSQL knowledge base's schema, as numbered migrations recorded in `schema_version`.

Applied in one transaction under an advisory lock, so replicas that start together migrate once
and the others wait, then find nothing left to do. A migration is never edited once released: a
change is a new entry at the end of MIGRATIONS. A database whose version is newer than this code
knows is refused rather than written with old assumptions.

The vector column has the embedder's dimension and the HNSW index its build knobs, both fixed
when the knowledge base is created; they are filled into the first migration's SQL as integers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from retrieval.errors import SchemaVersionError

log = logging.getLogger("cogcore.retrieval")
# pg_advisory_xact_lock key for migrations: any constant that other users of the database
# are unlikely to pick ("cogcore" in ASCII).
MIGRATION_LOCK = 0x636F67636F7265


@dataclass(frozen=True)
class Migration:
    """One schema step: its version, what it does (recorded), and its SQL."""

    version: int
    description: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "documents, chunks with vectors (HNSW), BM25 term table, metadata, state", """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE kb_state (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE documents (
    id text PRIMARY KEY, text text NOT NULL, metadata text NOT NULL,
    text_hash text NOT NULL, n_chunks integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE chunks (
    id bigserial PRIMARY KEY,
    document_id text NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    position integer NOT NULL, text text NOT NULL,
    n_terms integer NOT NULL,  -- BM25 document length: search terms after stopwords
    embedding vector({dim}) NOT NULL);
CREATE INDEX chunks_by_document ON chunks (document_id);
CREATE INDEX chunks_embedding ON chunks USING hnsw (embedding vector_ip_ops)
    WITH (m = {m}, ef_construction = {ef_construction});
CREATE TABLE chunk_terms (
    term text NOT NULL, chunk_id bigint NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
    tf integer NOT NULL,
    dl integer NOT NULL,  -- the chunk's n_terms again: BM25 reads one table
    PRIMARY KEY (term, chunk_id));
CREATE INDEX chunk_terms_by_chunk ON chunk_terms (chunk_id);
CREATE TABLE metadata (
    document_id text NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    key text NOT NULL, value text NOT NULL, PRIMARY KEY (document_id, key));
CREATE INDEX metadata_by_value ON metadata (key, value);
-- BM25's corpus statistics and the write counter, kept by every write's own transaction.
CREATE TABLE corpus (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    chunks bigint NOT NULL, terms bigint NOT NULL, generation bigint NOT NULL);
INSERT INTO corpus VALUES (true, 0, 0, 0);
"""),
)
LATEST = MIGRATIONS[-1].version
VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY, description text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())"""


@dataclass(frozen=True)
class IndexKnobs:
    """What the first migration fills in: vector dimension and HNSW build knobs."""

    dim: int
    m: int = 16  # pgvector's defaults
    ef_construction: int = 64


def current_version(conn: psycopg.Connection) -> int:
    """The highest applied migration, 0 for a database without the knowledge-base schema."""
    if conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
        return 0
    return int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_version")
               .fetchone()[0])


def check_version(version: int, migrations: tuple[Migration, ...] = MIGRATIONS) -> None:
    """Refuse a schema newer than the code: its meaning is unknown here."""
    if version > migrations[-1].version:
        raise SchemaVersionError(
            f"the database's knowledge-base schema is version {version}, newer than this "
            f"code's {migrations[-1].version}: upgrade cogcore before serving it")


def migrate(conn: psycopg.Connection, knobs: IndexKnobs,
            migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply every pending migration in one transaction; the versions applied (maybe none)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(VERSION_TABLE)
        version = current_version(conn)
        check_version(version, migrations)
        applied = []
        for step in migrations:
            if step.version <= version:
                continue
            sql = step.sql.format(dim=int(knobs.dim), m=int(knobs.m),
                                  ef_construction=int(knobs.ef_construction))
            conn.execute(sql.encode())  # bytes: several statements, no parameters
            conn.execute("INSERT INTO schema_version (version, description) VALUES (%s, %s)",
                         (step.version, step.description))
            if step.version == 1:
                conn.execute("INSERT INTO kb_state VALUES ('index', %s)",
                             (f'{{"kind": "pgvector-hnsw", "m": {int(knobs.m)}, '
                              f'"ef_construction": {int(knobs.ef_construction)}}}',))
            applied.append(step.version)
            log.info("knowledge-base schema: applied migration %d (%s)", step.version,
                     step.description)
    return applied
