"""Two writer processes on one database: transactions, not a file lock, keep it consistent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

from retrieval.postgres.knowledge_base import PostgresKnowledgeBase
from tests.retrieval.fakes import HashingEncoder

ROOT = Path(__file__).resolve().parents[2]
COUNT = 40


def test_two_processes_write_the_same_store_and_every_total_stays_exact(pg_url: str) -> None:
    PostgresKnowledgeBase.open(pg_url, embedder=HashingEncoder()).close()  # migrate once
    writers = [subprocess.Popen([sys.executable, "-m", "tests.postgres.writer", pg_url, name,
                                 str(COUNT)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
               for name in ("a", "b")]
    for writer in writers:
        out, _ = writer.communicate(timeout=300)
        assert writer.returncode == 0 and out.strip() == "done"
    with psycopg.connect(pg_url) as conn:
        chunks, terms, generation = conn.execute(
            "SELECT chunks, terms, generation FROM corpus").fetchone()
        assert chunks == conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        assert terms == conn.execute("SELECT sum(n_terms) FROM chunks").fetchone()[0] \
            == conn.execute("SELECT sum(tf) FROM chunk_terms").fetchone()[0]
        assert generation >= 2 * COUNT  # every own document was one committed write
        # Each document has exactly the chunks it says, all from one version of its text.
        torn = conn.execute(
            "SELECT d.id FROM documents d LEFT JOIN chunks c ON c.document_id = d.id "
            "GROUP BY d.id, d.n_chunks, d.text HAVING count(c.id) <> d.n_chunks "
            "OR bool_or(position(left(c.text, 20) IN d.text) = 0)").fetchall()
        assert torn == []
    with PostgresKnowledgeBase.open(pg_url, embedder=HashingEncoder(), readonly=True) as kb:
        ids = {d.id for d in kb.list(0, 1000)}
        assert {f"{w}-{i}" for w in "ab" for i in range(COUNT)} <= ids
        for name in "ab":
            top = kb.search(f"{name}word7x3", k=1, mode="bm25")
            assert top[0].document_id == f"{name}-7"
            text = kb.get(f"{name}-7").text  # one chunk: its own vector is the closest
            assert kb.search(text, k=1, mode="dense")[0].document_id == f"{name}-7"
