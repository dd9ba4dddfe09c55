"""`snapshot` of a PostgreSQL knowledge base while a writer process adds documents, `restore`
into an empty database: the same search results; and snapshots across the two backends."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from retrieval.backends import open_knowledge_base
from retrieval.errors import EmbedderMismatchError, SchemaVersionError
from retrieval.knowledge_base import STORE_FILE
from retrieval.postgres.local_server import create_database
from retrieval.postgres.schema import LATEST
from retrieval.snapshot import MANIFEST, SnapshotError, restore, snapshot
from tests.conftest import run_cogcore
from tests.postgres.test_same_answers import ahead
from tests.retrieval.fakes import HashingEncoder
from tests.retrieval.test_snapshot import assert_same, results, roll_back, snapshot_during_writes

_names = itertools.count()


def fresh(pg_admin_url: str) -> str:
    """A new, empty database's URL."""
    return create_database(pg_admin_url, f"restored_{next(_names)}")


def test_snapshot_during_writes_restores_the_same_search_results(
        pg_url: str, pg_admin_url: str, tmp_path: Path) -> None:
    out, copy = tmp_path / "snap", fresh(pg_admin_url)
    manifest = snapshot_during_writes(pg_url, out)
    assert (manifest["backend"], manifest["schema_version"]) == ("postgresql", LATEST)
    restore(out, copy)
    roll_back(pg_url, manifest["documents"])
    # BM25 sums its postings in the database, in whatever order the plan reads them.
    assert_same(results(copy), results(pg_url), rel=1e-12)
    with pytest.raises(SnapshotError, match=f"holds {manifest['documents']} documents"):
        restore(out, copy)
    restore(out, copy, force=True)  # replaces them: the same again
    assert_same(results(copy), results(pg_url), rel=1e-12)

    # Across backends: into an embedded store, and back.
    embedded = tmp_path / "embedded"
    restore(out, embedded)
    for a, b in zip(results(embedded), results(pg_url), strict=True):
        assert [h[2] for h in a] == pytest.approx([h[2] for h in b], rel=1e-4)
        assert ahead_of(a) == ahead_of(b)
    snapshot(embedded, tmp_path / "back")
    other = fresh(pg_admin_url)
    restore(tmp_path / "back", other)
    assert_same(results(other), results(pg_url), rel=1e-12)


def create(url: str) -> None:
    """An empty knowledge base (the schema, the embedder recorded)."""
    open_knowledge_base(url, HashingEncoder()).close()


def ahead_of(hits: list[tuple[int, str, float]]) -> list[tuple[int, float]]:
    """`ahead` (ties at the cut may fall either way) on result tuples."""
    return ahead([_Hit(chunk_id, score) for chunk_id, _, score in hits])


class _Hit:
    def __init__(self, chunk_id: int, score: float) -> None:
        self.chunk_id, self.score = chunk_id, score


def test_a_newer_schema_or_another_embedder_is_refused(pg_url: str, pg_admin_url: str,
                                                   tmp_path: Path) -> None:
    create(pg_url)
    out = tmp_path / "snap"
    snapshot(pg_url, out)
    manifest = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(json.dumps({**manifest, "schema_version": LATEST + 1}))
    with pytest.raises(SchemaVersionError, match=f"version {LATEST + 1}"):
        restore(out, fresh(pg_admin_url))
    (out / MANIFEST).write_text(json.dumps({**manifest, "embedder": "other-encoder/384"}))
    with pytest.raises(EmbedderMismatchError, match="other-encoder/384"):
        restore(out, pg_url)  # it records the hashing encoder
    assert (out / STORE_FILE).is_file()


def test_snapshot_and_restore_through_the_command_line(pg_url: str, pg_admin_url: str,
                                                       tmp_path: Path) -> None:
    create(pg_url)
    out, copy = tmp_path / "snap", fresh(pg_admin_url)
    taken = run_cogcore("kb", "snapshot", "--out", str(out), "--kb-url", pg_url)
    assert taken.returncode == 0, taken.stderr
    assert "0 documents, 0 chunks (postgresql" in taken.stderr
    put = run_cogcore("kb", "restore", str(out), env={"COGCORE_KB_URL": copy})
    assert put.returncode == 0, put.stderr
    again = run_cogcore("kb", "snapshot", "--out", str(out), "--kb-url", pg_url)
    assert again.returncode == 1
    # The console wraps a long path's line wherever the temporary directory's length puts it.
    said = " ".join(again.stderr.split())
    assert "already exists" in said and "Traceback" not in said
