"""Acknowledged writes survive SIGKILL; a torn index file is rebuilt from the store on open."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from retrieval.knowledge_base import INDEX_FILE, KBSettings, KnowledgeBase
from tests.conftest import REPO
from tests.retrieval.conftest import DOCS
from tests.retrieval.fakes import HashingEncoder
from tests.retrieval.ingest_writer import record

TOTAL, KILL_AFTER = 8000, 2000


def test_sigkill_mid_ingestion_keeps_every_acknowledged_document(tmp_path: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.retrieval.ingest_writer", str(tmp_path), str(TOTAL)],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    assert writer.stdout is not None
    acknowledged = []
    for line in writer.stdout:
        acknowledged.append(line.strip())
        if len(acknowledged) >= KILL_AFTER:
            os.kill(writer.pid, signal.SIGKILL)
            break
    writer.wait(timeout=60)
    assert writer.returncode == -signal.SIGKILL, "the writer finished before it was killed"

    # Opening for writing also proves the dead writer's lock was released by the kernel.
    with KnowledgeBase.open(tmp_path, embedder=HashingEncoder()) as kb:
        stats = kb.stats()
        assert stats["index_count"] == stats["chunks"] == stats["documents"] >= KILL_AFTER
        assert stats["documents"] < TOTAL
        numbers = [int(doc_id.removeprefix("rec-")) for doc_id in acknowledged]
        assert all(kb.get(f"rec-{i}").text == record(i).text for i in numbers)
        by_marker = kb.search_batch([f"zq{i}x" for i in numbers], k=1, mode="bm25")
        assert [hits[0].document_id for hits in by_marker] == acknowledged
        # The fake encoder's hashed words can collide, so two records may share a vector: each
        # acknowledged one must be among the exact (score 1) matches of its own text.
        by_text = kb.search_batch([record(i).text for i in numbers], k=5, mode="dense")
        exact = [{h.document_id for h in hits if h.score > 0.9999} for hits in by_text]
        assert all(doc_id in found for doc_id, found in zip(acknowledged, exact, strict=True))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "remove"])
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_a_damaged_index_file_is_rebuilt_on_open(tmp_path: Path, damage: str, kind: str) -> None:
    settings = KBSettings(index=kind)
    with KnowledgeBase.open(tmp_path, embedder=HashingEncoder(), settings=settings) as kb:
        kb.upsert(DOCS)
        kb.delete("o")
    index_file = tmp_path / INDEX_FILE
    if damage == "truncate":
        os.truncate(index_file, index_file.stat().st_size // 2)
    elif damage == "garbage":
        index_file.write_bytes(os.urandom(4096))
    else:
        index_file.unlink()

    with KnowledgeBase.open(tmp_path, embedder=HashingEncoder(), settings=settings) as kb:
        repair = kb.stats()["repair_on_open"]
        assert repair["loaded"] is False and repair["added"] == 3
        assert kb.stats()["index_count"] == 3
        assert kb.search("capital of Japan Tokyo", k=1, mode="dense")[0].document_id == "jp"
    with KnowledgeBase.open(tmp_path, embedder=HashingEncoder(), settings=settings) as kb:
        assert kb.stats()["repair_on_open"] == {"loaded": True, "added": 0, "removed": 0}


def test_a_stale_index_file_is_reconciled_with_the_store(tmp_path: Path) -> None:
    with KnowledgeBase.open(tmp_path, embedder=HashingEncoder()) as kb:
        kb.upsert(DOCS)
    saved = (tmp_path / INDEX_FILE).read_bytes()
    with KnowledgeBase.open(tmp_path, embedder=HashingEncoder()) as kb:
        kb.delete("fr")
        kb.upsert([record(1)])
    (tmp_path / INDEX_FILE).write_bytes(saved)  # as if the process died before saving
    with KnowledgeBase.open(tmp_path, embedder=HashingEncoder(), readonly=True) as kb:
        assert kb.stats()["repair_on_open"] == {"loaded": True, "added": 1, "removed": 1}
        assert kb.search("zq1x", k=1)[0].document_id == "rec-1"
