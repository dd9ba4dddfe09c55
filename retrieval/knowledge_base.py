"""The knowledge base: the one facade the service and the command line use.

    kb = KnowledgeBase.open(path, embedder=Embedder(), settings=KBSettings(index="hnsw"))
    kb.upsert([Document("doc-1", "text...", {"source": "wiki"})])  # -> [("doc-1", n_chunks)]
    kb.search("question", k=5, mode="hybrid", filters={"source": ["wiki", "news"]})  # -> [Hit]
    kb.get("doc-1"); kb.list(offset=0, limit=50); kb.count(); kb.delete("doc-1"); kb.close()

Writes: validated completely first (a bad document raises its own `RetrievalError` subclass and
nothing is stored), chunked and embedded, then committed to SQLite in one transaction; that
commit is the acknowledgement. The FAISS index is updated in memory after the commit and saved
crash-safely every `save_every_chunks` changed chunks and on close; on open (and whenever a reader
sees another process's commit) it is reconciled with the store's chunk ids from the stored
embeddings, so a crash at any moment costs at most a re-add of the unsaved tail.
The index kind and its build knobs are recorded in the store when the knowledge base is made, or
its index rebuilt because a writer's settings named another, and every later open uses them.
One writer process holds the lock; `readonly=True` opens any number of readers. Within a process
every method is thread-safe.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from retrieval.chunker import ChunkSettings
from retrieval.dense import DenseIndex
from retrieval.documents import Document, check_id, check_text, validate
from retrieval.embedder import TextEncoder
from retrieval.errors import IndexFileError, KnowledgeBaseNotFoundError, ReadOnlyError
from retrieval.index_registry import DEFAULT_KIND, index_spec, load_index, new_index
from retrieval.kb_rules import MODES, SearchOne, check_embedder, fuse, plan_writes, prepare_search
from retrieval.sparse import BM25Index
from retrieval.store import DocumentStore, Filters, StoredDocument
from retrieval.writer_lock import WriterLock

__all__ = ["MODES", "Hit", "KBSettings", "KnowledgeBase"]  # MODES: its home is kb_rules
log = logging.getLogger("cogcore.retrieval")
STORE_FILE, INDEX_FILE, LOCK_FILE = "store.sqlite3", "dense.index", "writer.lock"


@dataclass(frozen=True)
class KBSettings:
    """Everything tunable about a knowledge base; the defaults suit the default KB."""

    # Index kind and build knobs: None means as the knowledge base was built (for a new one,
    # flat, and the backend's defaults); a writer that names others rebuilds the index so.
    index: str | None = None
    hnsw_m: int | None = None
    ef_construction: int | None = None
    ef_search: int = 128
    chunk_tokens: int = 128
    chunk_overlap_tokens: int = 32
    max_text_bytes: int = 1_000_000
    max_query_bytes: int = 4096
    max_k: int = 1000
    # Hybrid search: "relative" (min-max scaled scores, weighted) keeps a strong lexical
    # match that rank fusion ("rrf") drops; the share was chosen on inverse questions
    # (benchmarks/fusion_eval.py, docs/retrieval.md).
    fusion: Literal["relative", "rrf"] = "relative"
    sparse_share: float = 0.6
    rrf_k: int = 60
    fusion_depth: int = 50
    save_every_chunks: int = 10_000
    lock_timeout_s: float = 0.0


@dataclass(frozen=True)
class Hit:
    """One search result: a chunk, the document it belongs to, its score and metadata."""

    chunk_id: int
    document_id: str
    text: str
    score: float
    metadata: dict[str, Any]


class KnowledgeBase(SearchOne):
    """Documents in SQLite, chunks in FAISS and BM25; see the module docstring."""

    def __init__(self, path: Path, store: DocumentStore, embedder: TextEncoder,
                 settings: KBSettings, lock: WriterLock | None) -> None:
        self.path, self.settings, self.embedder = path, settings, embedder
        self._store, self._writer = store, lock
        self._chunking = ChunkSettings(settings.chunk_tokens, settings.chunk_overlap_tokens)
        self._lock = threading.RLock()  # guards store, index and caches
        self._write_lock = threading.Lock()  # one write at a time, embedding outside _lock
        self._generation = -1
        self._bm25: BM25Index | None = None
        self._unsaved = 0
        self.repair: dict[str, Any] = {}
        self._index = self._load_index()
        added, removed = self._sync()
        self.repair.update(added=added, removed=removed)
        # A rebuilt index is saved at once, even empty: else an empty store that changed kind
        # would keep the old file and rebuild on every open.
        if added or removed or not self.repair["loaded"]:
            self.flush()

    @classmethod
    def open(cls, path: Path | str, embedder: TextEncoder | None = None,
             settings: KBSettings | None = None, readonly: bool = False) -> KnowledgeBase:
        """Open (creating unless `readonly`) the knowledge base in directory `path`."""
        path, settings = Path(path), settings or KBSettings()
        if readonly and not (path / STORE_FILE).is_file():
            raise KnowledgeBaseNotFoundError(f"no knowledge base at {path}")
        lock = store = None
        if not readonly:
            path.mkdir(parents=True, exist_ok=True)
            lock = WriterLock(path / LOCK_FILE, settings.lock_timeout_s)
        try:
            if embedder is None:
                from retrieval.embedder import Embedder

                embedder = Embedder()
            store = DocumentStore(path / STORE_FILE, readonly=readonly)
            check_embedder(store, embedder, readonly)
            return cls(path, store, embedder, settings, lock)
        except BaseException:
            if store is not None:
                store.close()
            if lock:
                lock.release()
            raise

    def _load_index(self) -> DenseIndex:
        """The saved index if it is the one this KB should have, else an empty one to fill."""
        dim = self.embedder.dim
        knobs = {k: v for k, v in asdict(self.settings).items() if v is not None}
        try:
            loaded: DenseIndex | None = load_index(self.path / INDEX_FILE, dim, knobs)
        except IndexFileError as exc:
            loaded, self.repair["reason"] = None, str(exc)
        wanted = self._index_spec(loaded.spec() if loaded else None, knobs)
        self.repair["loaded"] = loaded is not None and loaded.spec() == wanted
        if loaded is not None and self.repair["loaded"]:
            return loaded
        if loaded is not None:
            self.repair["reason"] = f"the index file holds {loaded.spec()}, not {wanted}"
        return new_index(wanted, dim, knobs)

    def _index_spec(self, found: dict[str, Any] | None, knobs: dict[str, Any]) -> dict[str, Any]:
        """The index to use: as recorded in the store, unless the settings name another."""
        raw = self._store.get_state("index")
        stored = json.loads(raw) if raw else None
        # A knowledge base from before the index was recorded: its index file tells.
        recorded = stored or found or {}
        wanted = index_spec(self.settings.index or recorded.get("kind", DEFAULT_KIND),
                            {**recorded, **knobs})
        if self._writer is None and recorded and wanted != recorded:
            # Asked for explicitly (benchmarks compare kinds on one store), so honoured, but a
            # reader cannot record it: the rebuild is redone on every open, which must be heard.
            log.warning("%s holds a %s index; this read-only open builds %s in memory, again on "
                        "every open (open it writable to record it)", self.path, recorded, wanted)
        if self._writer is not None and wanted != stored:
            self._store.set_state("index", json.dumps(wanted))
        return wanted

    def _sync(self) -> tuple[int, int]:
        """Make the index hold exactly the store's chunk ids; (added, removed) counts."""
        with self._lock, self._store.snapshot() as store:
            generation = store.generation()
            if generation == self._generation:
                return 0, 0
            wanted, held = store.chunk_ids(), self._index.ids()
            missing, extra = np.setdiff1d(wanted, held), np.setdiff1d(held, wanted)
            self._index.delete(extra)
            self._index.add(missing, store.embeddings(missing, self.embedder.dim))
            self._generation, self._bm25 = generation, None
            self._unsaved += len(missing) + len(extra)
            return len(missing), len(extra)

    def _writable(self) -> None:
        if self._writer is None:
            raise ReadOnlyError(f"{self.path} is open read-only")

    def upsert(self, documents: list[Document]) -> list[tuple[str, int]]:
        """Add or replace documents; same id and content is a no-op. (id, chunk count) each."""
        self._writable()
        valid = [validate(d, self.settings.max_text_bytes) for d in documents]
        # Within one call the last version of an id wins, as if upserted one by one.
        latest = list({doc.id: doc for doc in valid}.values())
        with self._write_lock:
            with self._lock:
                existing = self._store.existing([d.id for d in latest])
            plans, counts = plan_writes(latest, existing, self.embedder, self._chunking)
            if not plans:
                return [(d.id, counts[d.id]) for d in valid]
            with self._lock:
                added, vectors, removed = self._store.write(plans)
                self._index.delete(np.array(removed, np.int64))
                self._index.add(np.array(added, np.int64), vectors)
                self._generation, self._bm25 = self._store.generation(), None
                self._unsaved += len(added) + len(removed)
                if self._unsaved >= self.settings.save_every_chunks:
                    self.flush()
        return [(d.id, counts[d.id]) for d in valid]

    def delete(self, doc_id: str) -> int:
        """Delete a document and its chunks; the number of chunks removed."""
        self._writable()
        check_id(doc_id)
        with self._write_lock, self._lock:
            removed = self._store.delete(doc_id)
            self._index.delete(np.array(removed, np.int64))
            self._generation, self._bm25 = self._store.generation(), None
            self._unsaved += len(removed)
        return len(removed)

    def get(self, doc_id: str) -> StoredDocument:
        """One document by id, or DocumentNotFoundError."""
        check_id(doc_id)
        with self._lock:
            return self._store.get(doc_id)

    def list(self, offset: int = 0, limit: int = 100) -> list[StoredDocument]:
        """A page of documents in id order."""
        with self._lock:
            return self._store.list(offset, limit)

    def count(self) -> int:
        """Number of documents."""
        with self._lock:
            return self._store.count()

    def search_batch(self, queries: list[str], k: int = 5, mode: str = "hybrid",
                     filters: Filters | None = None) -> list[list[Hit]]:
        """`search` for many queries at once (one embedder call)."""
        s = self.settings
        texts, vectors, depth = prepare_search(s, self.embedder, queries, k, mode, filters)
        with self._lock:
            self._sync()
            allowed = self._store.matching_chunk_ids(filters) if filters else None
            dense = self._index.search(vectors, depth, allowed) if vectors is not None else None
            sparse = self._sparse().search(texts, depth, allowed) if mode != "dense" else None
            if dense is not None and sparse is not None:
                ranked = [fuse(d, b, k, s) for d, b in zip(dense, sparse, strict=True)]
            else:
                ranked = [r[:k] for r in (dense if dense is not None else sparse or [])]
            rows = self._store.chunk_rows(sorted({i for r in ranked for i, _ in r}))
        return [[Hit(i, rows[i].document_id, rows[i].text, score, rows[i].metadata)
                 for i, score in result if i in rows] for result in ranked]

    def unknown_terms(self, text: str) -> list[str]:
        """Terms of `text` that no stored chunk contains: a sign the store cannot answer it."""
        check_text(text, self.settings.max_query_bytes, what="query")
        with self._lock:
            self._sync()
            return self._sparse().unknown_terms(text)

    def knows(self, text: str) -> bool:
        """Whether the store holds every search term of `text` (a name, a code), and it has one."""
        check_text(text, self.settings.max_query_bytes, what="query")
        with self._lock:
            self._sync()
            return self._sparse().knows(text)

    def _sparse(self) -> BM25Index:
        if self._bm25 is None:
            self._bm25 = BM25Index(*self._store.chunk_texts())
        return self._bm25

    def stats(self) -> dict[str, Any]:
        """Counts, settings, sizes on disk and what the last open had to repair."""
        with self._lock:
            self._sync()
            files = [self.path / STORE_FILE, self.path / f"{STORE_FILE}-wal",
                     self.path / INDEX_FILE]
            return {
                "path": str(self.path), "documents": self._store.count(),
                "chunks": self._store.chunk_count(), "index_count": self._index.count(),
                "generation": self._generation, "embedder": self.embedder.name,
                "dim": self.embedder.dim, "index": self._index.spec(),
                "readonly": self._writer is None,
                "bytes_on_disk": sum(f.stat().st_size for f in files if f.exists()),
                "repair_on_open": dict(self.repair), "settings": asdict(self.settings),
            }

    def flush(self) -> None:
        """Save the index crash-safely now (writers only; readers keep theirs in memory)."""
        if self._writer is None:
            return
        with self._lock:
            self._index.save(self.path / INDEX_FILE, {"generation": self._generation})
            self._unsaved = 0

    def close(self) -> None:
        """Save the index if it changed, close the store and release the writer lock."""
        with self._lock:
            if self._writer is not None:
                if self._unsaved or not (self.path / INDEX_FILE).exists():
                    self.flush()
                self._writer.release()
                self._writer = None
            self._store.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
