"""`snapshot` while a writer process adds documents, `restore` into an empty store: the same
search results as the source had at the snapshot's moment (embedded store; tests/postgres has
the PostgreSQL side, with these helpers)."""

from __future__ import annotations

import multiprocessing
import queue
import random
import sqlite3
import time
from pathlib import Path

import pytest

from retrieval.backends import open_knowledge_base
from retrieval.documents import Document
from retrieval.errors import WriterLockedError
from retrieval.knowledge_base import INDEX_FILE, STORE_FILE, KBSettings, KnowledgeBase
from retrieval.snapshot import SnapshotError, read_manifest, restore, snapshot
from tests.retrieval.fakes import HashingEncoder

WORDS = ("river harbour granite copper violin orchard lantern falcon glacier meadow cedar "
         "saffron comet ember quartz tundra lagoon marble thistle beacon canyon willow "
         "cobalt prairie").split()
TOTAL = 240  # documents the writer adds, one upsert each
QUERIES = [" ".join(random.Random(n).sample(WORDS, 3)) for n in range(100)]


def document(i: int) -> Document:
    """Document i: 40-300 words (1-3 chunks) drawn from WORDS, with its number in it."""
    rng = random.Random(i)
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 300)))
    return Document(f"doc-{i:04d}", f"Note {i}. {words}", {"parity": i % 2})


def write(location: str, acks: multiprocessing.Queue) -> None:
    """The writer process: add documents one by one, reporting each acknowledged number."""
    settings = KBSettings(save_every_chunks=40)  # the index file is replaced as it goes
    with open_knowledge_base(location, HashingEncoder(), settings) as kb:
        for i in range(TOTAL):
            kb.upsert([document(i)])
            acks.put(i)
            time.sleep(0.01)


def snapshot_during_writes(location: str | Path, out: Path) -> dict:
    """Start the writer, snapshot once it has written a while, check the snapshot holds
    exactly its first N documents for an N between the acks before and after; N."""
    ctx = multiprocessing.get_context("spawn")
    acks = ctx.Queue()
    writer = ctx.Process(target=write, args=(str(location), acks), daemon=True)
    writer.start()
    acked = [acks.get(timeout=120) for _ in range(40)]
    manifest = snapshot(location, out)
    while True:
        try:
            acked.append(acks.get_nowait())
        except queue.Empty:
            break
    assert len(acked) < TOTAL, "the writer finished before the snapshot did"
    writer.join(timeout=300)
    assert writer.exitcode == 0
    with sqlite3.connect(out / STORE_FILE) as db:
        ids = [r[0] for r in db.execute("SELECT id FROM documents ORDER BY id")]
        chunks = dict(db.execute("SELECT document_id, count(*) FROM chunks GROUP BY 1"))
        whole = dict(db.execute("SELECT id, n_chunks FROM documents"))
    held = len(ids)
    assert 40 <= held <= len(acked) + 1  # every ack before it; at most one write in flight
    assert ids == [document(i).id for i in range(held)]
    assert chunks == whole  # no document without all its chunks
    assert (manifest["documents"], manifest["chunks"]) == (held, sum(whole.values()))
    return manifest


def roll_back(location: str | Path, held: int) -> None:
    """Make the source hold what the snapshot holds: delete what the writer added after."""
    with open_knowledge_base(location, HashingEncoder()) as kb:
        for i in range(held, TOTAL):
            kb.delete(document(i).id)


def results(location: str | Path) -> list[list[tuple[int, str, float]]]:
    """The 100 queries' top 10 in every mode: (chunk id, document id, score). An HNSW
    search looks at every vector of these small stores, so it is exact: what is compared is
    the data, not how two graphs built in different orders approximate."""
    settings = KBSettings(ef_search=1000)
    with open_knowledge_base(location, HashingEncoder(), settings, readonly=True) as kb:
        return [[(h.chunk_id, h.document_id, h.score) for h in kb.search(q, k=10, mode=mode)]
                for mode in ("dense", "bm25", "hybrid") for q in QUERIES]


def assert_same(got: list, want: list, rel: float = 0.0) -> None:
    """The same hits with the same scores (within `rel`, for sums the database may add in
    another order), in the same order but for equal scores, whose order neither backend fixes
    (a tie at the cut may also keep either hit)."""
    assert sum(len(r) for r in want) > 2000  # not a comparison of empty lists
    assert [len(r) for r in got] == [len(r) for r in want]
    for a, b in zip(got, want, strict=True):
        assert [h[2] for h in a] == pytest.approx([h[2] for h in b], rel=rel, abs=0)
        assert canonical(a) == canonical(b)


def canonical(hits: list[tuple[int, str, float]]) -> list[tuple[float, int, str]]:
    """Hits by score, then id, leaving out those tied with the last."""
    cut = round(hits[-1][2], 9) if hits else None
    return sorted((-round(s, 9), cid, doc) for cid, doc, s in hits if round(s, 9) != cut)


def test_snapshot_during_writes_restores_the_same_search_results(tmp_path: Path) -> None:
    source, out, copy = tmp_path / "source", tmp_path / "snap", tmp_path / "copy"
    manifest = snapshot_during_writes(source, out)
    assert read_manifest(out)["backend"] == "embedded"
    assert INDEX_FILE in manifest["files"]
    restore(out, copy)
    with KnowledgeBase.open(copy, HashingEncoder()) as kb:
        stats = kb.stats()
        assert stats["index_count"] == stats["chunks"] == manifest["chunks"]
    roll_back(source, manifest["documents"])
    assert_same(results(copy), results(source))


def test_restore_refuses_a_store_with_documents_unless_forced(tmp_path: Path) -> None:
    source, out = tmp_path / "source", tmp_path / "snap"
    with KnowledgeBase.open(source, HashingEncoder()) as kb:
        kb.upsert([document(i) for i in range(5)])
    snapshot(source, out)
    with pytest.raises(SnapshotError, match="already exists"):
        snapshot(source, out)
    with pytest.raises(SnapshotError, match="holds 5 documents"):
        restore(out, source)
    other = tmp_path / "other"
    with KnowledgeBase.open(other, HashingEncoder()) as kb:
        kb.upsert([document(i) for i in range(100, 103)])
    restore(out, other, force=True)
    with KnowledgeBase.open(other, HashingEncoder(), readonly=True) as kb:
        assert [d.id for d in kb.list()] == [document(i).id for i in range(5)]
        assert kb.stats()["index_count"] == kb.stats()["chunks"]
    with KnowledgeBase.open(other, HashingEncoder()):  # a writer holds it: no restore then
        with pytest.raises(WriterLockedError):
            restore(out, other, force=True)
    with pytest.raises(SnapshotError, match="not a knowledge-base snapshot"):
        restore(tmp_path, tmp_path / "third")
