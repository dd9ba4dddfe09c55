"""The SQL of the PostgreSQL knowledge base: writes as transactions, dense, BM25 and filters.

Every function takes a connection and does its work in the caller's transaction. Lexical search
is BM25 computed in the database from a term table (chunk, term, frequency) with the very
tokenizer and formula (Lucene's, k1 1.5, b 0.75) that `bm25s` uses for the embedded backend, so
both backends rank alike; nothing is rebuilt after a write. Dense search is pgvector's inner
product, through its HNSW index.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import psycopg

from retrieval.documents import filter_value_json
from retrieval.errors import DocumentNotFoundError, InvalidSearchError, UnknownFilterKeyError
from retrieval.sparse import _tokenize as tokenize
from retrieval.store import ChunkRow, Filters, StoredDocument, WritePlan

K1, B = 1.5, 0.75  # bm25s's defaults, which the embedded backend uses
DOC_COLUMNS = "id, text, metadata, n_chunks, text_hash"

# Each query term's weight (query count x idf) is computed once, beside the SQL; the database
# then reads each posting once: the cost grows with the postings of the query's terms.
BM25_SQL = """
SELECT t.chunk_id, sum(q.weight * t.tf / (t.tf + %(flat)s + %(slope)s * t.dl)) AS score
FROM chunk_terms t JOIN unnest(%(terms)s::text[], %(weights)s::float8[]) AS q(term, weight)
     USING (term)
WHERE {where}
GROUP BY t.chunk_id ORDER BY score DESC, t.chunk_id LIMIT %(k)s
"""
DENSE_SQL = """
SELECT ch.id, -(ch.embedding <#> %(vector)s) AS score FROM chunks ch
WHERE {where}
ORDER BY ch.embedding <#> %(vector)s LIMIT %(k)s
"""


def _stored(row: Sequence[Any]) -> StoredDocument:
    return StoredDocument(row[0], row[1], json.loads(row[2]), row[3], row[4])


def lock_ids(conn: psycopg.Connection, ids: Sequence[str]) -> None:
    """Serialize writers of the same document ids until this transaction ends.

    Keys are taken in one order, so two writers of overlapping sets cannot deadlock.
    """
    keys = sorted({int.from_bytes(hashlib.sha256(i.encode()).digest()[:8], "big", signed=True)
                   for i in ids})
    # unnest yields the keys in array order, so they are taken in that order.
    conn.execute("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k",
                 (keys,))


def existing(conn: psycopg.Connection, ids: Sequence[str]) -> dict[str, tuple[str, str, int]]:
    """(text hash, metadata JSON, chunk count) of those of `ids` that are stored."""
    rows = conn.execute("SELECT id, text_hash, metadata, n_chunks FROM documents "
                        "WHERE id = ANY(%s)", (list(ids),))
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def write(conn: psycopg.Connection, plans: Sequence[WritePlan]) -> None:
    """Apply every plan in a few set-wise statements (the caller holds the ids' locks)."""
    whole = [p for p in plans if p.chunks is not None and p.vectors is not None]
    replaced = [p.document.id for p in whole]
    metadata_only = [p.document for p in plans if p.chunks is None or p.vectors is None]
    with conn.cursor() as cur:
        cur.executemany("UPDATE documents SET metadata = %s, updated_at = now() WHERE id = %s",
                        [(d.metadata_json, d.id) for d in metadata_only])
    removed = _delete_rows(conn, replaced)
    conn.execute("DELETE FROM metadata WHERE document_id = ANY(%s)",
                 ([d.id for d in metadata_only],))
    texts = [c for p in whole for c in p.chunks or []]
    tokens = tokenize(texts) if texts else []
    ids = [r[0] for r in conn.execute(
        "SELECT nextval('chunks_id_seq') FROM generate_series(1, %s)", (len(texts),))]
    with conn.cursor() as cur:
        with cur.copy("COPY documents (id, text, metadata, text_hash, n_chunks) FROM STDIN") as c:
            for p in whole:
                d = p.document
                c.write_row((d.id, d.text, d.metadata_json, d.text_hash, len(p.chunks or [])))
        with cur.copy("COPY metadata (document_id, key, value) FROM STDIN") as c:
            for d in [p.document for p in whole] + metadata_only:
                for key, value in d.metadata.items():
                    c.write_row((d.id, key, filter_value_json(value)))
        rows = iter(zip(ids, texts, tokens, strict=True))
        with cur.copy("COPY chunks (id, document_id, position, text, n_terms, embedding) "
                      "FROM STDIN") as c:
            for p in whole:
                for position, vector in enumerate(p.vectors if p.vectors is not None else []):
                    cid, text, toks = next(rows)
                    c.write_row((cid, p.document.id, position, text, len(toks),
                                 np.asarray(vector, np.float32)))
        with cur.copy("COPY chunk_terms (term, chunk_id, tf, dl) FROM STDIN") as c:
            for row in term_rows(ids, tokens):
                c.write_row(row)
    _bump(conn, len(texts) - len(removed), sum(len(t) for t in tokens) - sum(removed))


def term_rows(ids: Sequence[int], tokens: Sequence[list[str]]
              ) -> Iterator[tuple[str, int, int, int]]:
    """The chunk_terms rows (term, chunk id, term frequency, chunk length) of tokenized chunks."""
    for cid, toks in zip(ids, tokens, strict=True):
        for term, tf in Counter(toks).items():
            yield term, cid, tf, len(toks)


def delete(conn: psycopg.Connection, doc_id: str) -> int:
    """Delete a document with its chunks, terms and metadata; the chunks removed."""
    if conn.execute("SELECT 1 FROM documents WHERE id = %s", (doc_id,)).fetchone() is None:
        raise DocumentNotFoundError(f"no document with id {doc_id!r}")
    removed = _delete_rows(conn, [doc_id])
    _bump(conn, -len(removed), -sum(removed))
    return len(removed)


def _delete_rows(conn: psycopg.Connection, doc_ids: list[str]) -> list[int]:
    """Drop documents with their chunks, terms and metadata; the chunks' term counts."""
    removed = [r[0] for r in conn.execute(
        "DELETE FROM chunks WHERE document_id = ANY(%s) RETURNING n_terms", (doc_ids,))]
    conn.execute("DELETE FROM documents WHERE id = ANY(%s)", (doc_ids,))  # metadata cascades
    return removed


def _bump(conn: psycopg.Connection, chunks: int, terms: int) -> None:
    # Last in the transaction: writers queue on this one row only for the moment to commit.
    conn.execute("UPDATE corpus SET chunks = chunks + %s, terms = terms + %s, "
                 "generation = generation + 1", (chunks, terms))


def get(conn: psycopg.Connection, doc_id: str) -> StoredDocument:
    """One stored document, or DocumentNotFoundError."""
    row = conn.execute(f"SELECT {DOC_COLUMNS} FROM documents WHERE id = %s",
                       (doc_id,)).fetchone()
    if row is None:
        raise DocumentNotFoundError(f"no document with id {doc_id!r}")
    return _stored(row)


def page(conn: psycopg.Connection, offset: int, limit: int) -> list[StoredDocument]:
    """Documents in id order (byte order, as SQLite sorts), a page at a time."""
    rows = conn.execute(f"SELECT {DOC_COLUMNS} FROM documents ORDER BY id COLLATE \"C\" "
                        "LIMIT %s OFFSET %s", (max(0, limit), max(0, offset)))
    return [_stored(r) for r in rows]


def counts(conn: psycopg.Connection) -> dict[str, int]:
    """Documents, chunks, and the write generation."""
    docs = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    chunks, generation = conn.execute("SELECT chunks, generation FROM corpus").fetchone()
    return {"documents": int(docs), "chunks": int(chunks), "generation": int(generation)}


def filter_clause(conn: psycopg.Connection, filters: Filters | None
                  ) -> tuple[str, dict[str, Any]]:
    """SQL that holds for a `{doc}` id matching every filter, with its parameters."""
    if not filters:
        return "true", {}
    parts, params = [], {}
    for n, (key, wanted) in enumerate(filters.items()):
        if conn.execute("SELECT 1 FROM metadata WHERE key = %s LIMIT 1", (key,)).fetchone() \
                is None:
            raise UnknownFilterKeyError(f"no stored document has metadata key {key!r}")
        values = wanted if isinstance(wanted, list) else [wanted]
        if not values:
            raise InvalidSearchError(f"filter {key!r} lists no values")
        parts.append(f"{{doc}} IN (SELECT document_id FROM metadata "
                     f"WHERE key = %(key{n})s AND value = ANY(%(values{n})s))")
        params |= {f"key{n}": key, f"values{n}": [filter_value_json(v) for v in values]}
    return " AND ".join(parts), params


def dense(conn: psycopg.Connection, vector: np.ndarray, k: int, where: str,
          params: dict[str, Any]) -> list[tuple[int, float]]:
    """Up to k (chunk id, inner product) pairs, best first."""
    rows = conn.execute(DENSE_SQL.format(where=where.format(doc="ch.document_id")),
                        {**params, "vector": np.asarray(vector, np.float32), "k": k})
    return [(int(i), float(s)) for i, s in rows]


def bm25(conn: psycopg.Connection, text: str, k: int, where: str,
         params: dict[str, Any]) -> list[tuple[int, float]]:
    """Up to k (chunk id, BM25 score) pairs with a positive score, best first."""
    counts = Counter(tokenize([text])[0])
    n, total = conn.execute("SELECT chunks, terms FROM corpus").fetchone()
    df = dict(conn.execute("SELECT term, count(*) FROM chunk_terms WHERE term = ANY(%s) "
                           "GROUP BY term", (list(counts),)).fetchall()) if counts else {}
    terms = [t for t in counts if t in df]
    if not terms:
        return []
    weights = [counts[t] * math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in terms]
    if where != "true":  # after the statistics above, which are the whole store's
        where = f"t.chunk_id IN (SELECT id FROM chunks WHERE {where.format(doc='document_id')})"
    rows = conn.execute(BM25_SQL.format(where=where), {
        **params, "terms": terms, "weights": weights, "k": k,
        "flat": K1 * (1 - B), "slope": K1 * B / max(total / max(n, 1), 1e-9)})
    return [(int(i), float(s)) for i, s in rows if s > 0]


def unknown_terms(conn: psycopg.Connection, text: str) -> list[str]:
    """Search terms of `text` (stopwords dropped) that no chunk contains, in order."""
    terms = list(dict.fromkeys(tokenize([text])[0]))
    known = {r[0] for r in conn.execute(
        "SELECT DISTINCT term FROM chunk_terms WHERE term = ANY(%s)", (terms,))}
    return [t for t in terms if t not in known]


def chunk_rows(conn: psycopg.Connection, ids: Sequence[int]) -> dict[int, ChunkRow]:
    """Chunks by id with their document's id and metadata."""
    rows = conn.execute(
        "SELECT ch.id, ch.document_id, ch.text, d.metadata FROM chunks ch "
        "JOIN documents d ON d.id = ch.document_id WHERE ch.id = ANY(%s)",
        ([int(i) for i in ids],))
    return {r[0]: ChunkRow(r[0], r[1], r[2], json.loads(r[3])) for r in rows}
