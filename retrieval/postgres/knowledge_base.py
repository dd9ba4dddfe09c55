"""The knowledge base on PostgreSQL + pgvector: the same methods and answers as the embedded one.

    kb = PostgresKnowledgeBase.open("postgresql://user@db/cogcore", embedder=Embedder())

Documents, chunks with their vectors, BM25 terms and metadata live in tables (`schema.py`);
every method is one transaction on a pooled connection, so any number of processes read and
write one database at once and see each other's commits at once: there is no index in memory to
rebuild or reconcile. Writers of the same document ids queue on advisory locks for the moment
of their transaction; the chunking and embedding happen before it, outside any lock.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from retrieval.chunker import ChunkSettings
from retrieval.documents import Document, check_id, check_text, validate
from retrieval.embedder import TextEncoder
from retrieval.errors import (
    KnowledgeBaseNotFoundError,
    KnowledgeBaseUnavailableError,
    ReadOnlyError,
    SchemaVersionError,
)
from retrieval.kb_rules import SearchOne, check_embedder, fuse, plan_writes, prepare_search
from retrieval.knowledge_base import Hit, KBSettings
from retrieval.postgres import schema, store
from retrieval.sparse import _tokenize as tokenize
from retrieval.store import Filters, StoredDocument

log = logging.getLogger("cogcore.retrieval")
POOL_SIZE = 8  # connections per process: the service's worker threads share them
CONNECT_TIMEOUT_S = 10


def describe(url: str) -> str:
    """The database a URL names, without its password: for messages and stats."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an unreadable URL"
    user, name = parts.get("user", ""), parts.get("dbname", "")
    host = parts.get("host") or "localhost"
    if host.startswith("/"):  # a Unix socket directory
        return f"postgresql://{user}@/{name}?host={host}"
    return f"postgresql://{user}@{host}:{parts.get('port', 5432)}/{name}"


def connect(url: str) -> psycopg.Connection:
    """A connection to the knowledge base's database, or a KnowledgeBaseUnavailableError
    that says which database and why."""
    try:
        return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = "; ".join(lines) or type(exc).__name__
        raise KnowledgeBaseUnavailableError(
            f"cannot connect to the knowledge-base database {describe(url)}: {reason}") from exc


class _State:
    """The `kb_state` table as `check_embedder` reads and writes it."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn

    def get_state(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM kb_state WHERE key = %s", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str) -> None:
        self._conn.execute("INSERT INTO kb_state VALUES (%s, %s) ON CONFLICT DO NOTHING",
                           (key, value))


class PostgresKnowledgeBase(SearchOne):
    """`KnowledgeBase`'s interface on a PostgreSQL database; see the module docstring."""

    path = None  # no directory: the router and other files do not live beside it

    def __init__(self, url: str, pool: ConnectionPool, embedder: TextEncoder,
                 settings: KBSettings, readonly: bool) -> None:
        self.url, self.settings, self.embedder = describe(url), settings, embedder
        self.readonly, self.repair = readonly, {}
        self._pool = pool
        self._chunking = ChunkSettings(settings.chunk_tokens, settings.chunk_overlap_tokens)

    @classmethod
    def open(cls, url: str, embedder: TextEncoder | None = None,
             settings: KBSettings | None = None, readonly: bool = False,
             migrate: bool = True) -> PostgresKnowledgeBase:
        """Connect, bring the schema up to date (unless `readonly` or not `migrate`), check
        the embedder; KnowledgeBaseUnavailableError when the database cannot be reached."""
        settings = settings or KBSettings()
        if embedder is None:
            from retrieval.embedder import Embedder

            embedder = Embedder()
        with connect(url) as conn:
            version = schema.current_version(conn)
            schema.check_version(version)
            if version < schema.LATEST and (readonly or not migrate):
                missing = KnowledgeBaseNotFoundError if version == 0 else SchemaVersionError
                raise missing(f"{describe(url)} has knowledge-base schema version {version}, "
                              f"this code needs {schema.LATEST}: run `cogcore kb migrate`")
            if version < schema.LATEST:
                _migrate(conn, embedder.dim, settings)
            check_embedder(_State(conn), embedder, readonly)
        pool = ConnectionPool(url, min_size=1, max_size=POOL_SIZE, open=False,
                              name="cogcore-kb", timeout=CONNECT_TIMEOUT_S,
                              configure=lambda c: _configure(c, settings.ef_search),
                              check=ConnectionPool.check_connection)
        pool.open()
        return cls(url, pool, embedder, settings, readonly)

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection]:
        """One transaction on a pooled connection (committed when the block ends cleanly)."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise KnowledgeBaseUnavailableError(
                f"the knowledge-base database {self.url} is unavailable: {exc}") from exc

    def _writable(self) -> None:
        if self.readonly:
            raise ReadOnlyError(f"{self.url} is open read-only")

    def upsert(self, documents: list[Document]) -> list[tuple[str, int]]:
        """Add or replace documents; same id and content is a no-op. (id, chunk count) each."""
        self._writable()
        valid = [validate(d, self.settings.max_text_bytes) for d in documents]
        latest = list({doc.id: doc for doc in valid}.values())  # the last version of an id wins
        ids = [d.id for d in latest]
        with self._conn() as conn:
            seen = store.existing(conn, ids)
        plans, counts = plan_writes(latest, seen, self.embedder, self._chunking)
        if plans:
            with self._conn() as conn:
                store.lock_ids(conn, ids)
                now = store.existing(conn, ids)
                if now != seen:  # another writer changed one of them meanwhile: plan again
                    plans, counts = plan_writes(latest, now, self.embedder, self._chunking)
                store.write(conn, plans)
        return [(d.id, counts[d.id]) for d in valid]

    def delete(self, doc_id: str) -> int:
        """Delete a document and its chunks; the number of chunks removed."""
        self._writable()
        check_id(doc_id)
        with self._conn() as conn:
            store.lock_ids(conn, [doc_id])
            return store.delete(conn, doc_id)

    def get(self, doc_id: str) -> StoredDocument:
        """One document by id, or DocumentNotFoundError."""
        check_id(doc_id)
        with self._conn() as conn:
            return store.get(conn, doc_id)

    def list(self, offset: int = 0, limit: int = 100) -> list[StoredDocument]:
        """A page of documents in id order."""
        with self._conn() as conn:
            return store.page(conn, offset, limit)

    def count(self) -> int:
        """Number of documents."""
        with self._conn() as conn:
            return store.counts(conn)["documents"]

    def search_batch(self, queries: list[str], k: int = 5, mode: str = "hybrid",
                     filters: Filters | None = None) -> list[list[Hit]]:
        """`search` for many queries at once (one embedder call, one transaction)."""
        s = self.settings
        texts, vectors, depth = prepare_search(s, self.embedder, queries, k, mode, filters)
        ranked: list[list[tuple[int, float]]] = []
        with self._conn() as conn:
            where, params = store.filter_clause(conn, filters)
            for n, text in enumerate(texts):
                dense = store.dense(conn, vectors[n], depth, where, params) \
                    if vectors is not None else None
                sparse = store.bm25(conn, text, depth, where, params) if mode != "dense" else None
                if dense is not None and sparse is not None:
                    ranked.append(fuse(dense, sparse, k, s))
                else:
                    ranked.append((dense if dense is not None else sparse or [])[:k])
            rows = store.chunk_rows(conn, sorted({i for r in ranked for i, _ in r}))
        return [[Hit(i, rows[i].document_id, rows[i].text, score, rows[i].metadata)
                 for i, score in result if i in rows] for result in ranked]

    def unknown_terms(self, text: str) -> list[str]:
        """Terms of `text` that no stored chunk contains: a sign the store cannot answer it."""
        check_text(text, self.settings.max_query_bytes, what="query")
        with self._conn() as conn:
            return store.unknown_terms(conn, text)

    def knows(self, text: str) -> bool:
        """Whether the store holds every search term of `text` (a name, a code), and it has one."""
        check_text(text, self.settings.max_query_bytes, what="query")
        return bool(tokenize([text])[0]) and not self.unknown_terms(text)

    def stats(self) -> dict[str, Any]:
        """Counts, settings, the index and schema version, and the tables' size."""
        with self._conn() as conn:
            counts = store.counts(conn)
            index = _State(conn).get_state("index")
            version = schema.current_version(conn)
            size = conn.execute(
                "SELECT sum(pg_total_relation_size(c)) FROM unnest(ARRAY['documents', "
                "'chunks', 'chunk_terms', 'metadata']::regclass[]) AS c").fetchone()[0]
        return {
            "url": self.url, "backend": "postgresql", **counts,
            "index_count": counts["chunks"], "embedder": self.embedder.name,
            "dim": self.embedder.dim, "index": index and json.loads(index),
            "schema_version": version, "readonly": self.readonly,
            "bytes_on_disk": int(size or 0), "settings": asdict(self.settings),
        }

    def ping(self, timeout_s: float) -> None:
        """One trivial query within `timeout_s`, for readiness; an exception if it fails."""
        with self._pool.connection(timeout=timeout_s) as conn:
            conn.execute(f"SET LOCAL statement_timeout = {max(1, int(timeout_s * 1000))}")
            conn.execute("SELECT 1")

    def flush(self) -> None:
        """Nothing to save: every write is committed to the database when it returns."""

    def close(self) -> None:
        """Close the pool's connections."""
        self._pool.close()

    def __enter__(self) -> PostgresKnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _configure(conn: psycopg.Connection, ef_search: int) -> None:
    """Each pooled connection: the vector type, and HNSW search knobs. Iterative scans keep
    a filtered search from coming back short when the filter drops most of the neighbours.
    psycopg prepares a statement on its fifth use; a generic plan then skips re-planning
    the BM25 query, which costs more than running it on a small store."""
    register_vector(conn)
    conn.execute(f"SET hnsw.ef_search = {int(ef_search)}")
    conn.execute("SET hnsw.iterative_scan = strict_order")
    conn.execute("SET plan_cache_mode = force_generic_plan")
    conn.commit()


def migrate_database(url: str, dim: int, settings: KBSettings | None = None
                     ) -> tuple[int, list[int]]:
    """Bring the database's schema up to date: (version before, versions applied)."""
    with connect(url) as conn:
        return schema.current_version(conn), _migrate(conn, dim, settings or KBSettings())


def _migrate(conn: psycopg.Connection, dim: int, settings: KBSettings) -> list[int]:
    knobs = schema.IndexKnobs(dim, settings.hnsw_m or 16, settings.ef_construction or 64)
    return schema.migrate(conn, knobs)
