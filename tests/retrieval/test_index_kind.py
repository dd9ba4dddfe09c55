"""The index kind is the knowledge base's own state: recorded when made, honoured on every open."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.kb import app as kb_cli
from retrieval.errors import UnknownIndexKindError
from retrieval.index_registry import KINDS, backend, index_spec, load_index, new_index
from retrieval.knowledge_base import INDEX_FILE, STORE_FILE, KBSettings, KnowledgeBase
from tests.retrieval.conftest import DOCS
from tests.retrieval.fakes import HashingEncoder

HNSW = {"kind": "hnsw", "hnsw_m": 32, "ef_construction": 80}


def build(path: Path, settings: KBSettings) -> None:
    """A knowledge base holding DOCS, made with `settings`."""
    with KnowledgeBase.open(path, embedder=HashingEncoder(), settings=settings) as kb:
        kb.upsert(DOCS)


def reopen(path: Path, settings: KBSettings | None = None,
           readonly: bool = False) -> dict[str, object]:
    """The stats of `path` opened again (default settings unless given)."""
    with KnowledgeBase.open(path, embedder=HashingEncoder(), settings=settings,
                            readonly=readonly) as kb:
        assert kb.search("capital of Japan Tokyo", k=1, mode="dense")[0].document_id == "jp"
        return kb.stats()


def test_every_registered_kind_names_its_backend_and_files_load_by_their_kind(
        tmp_path: Path) -> None:
    assert KINDS == ("flat", "hnsw")
    vectors = HashingEncoder(dim=16).encode(["a b", "c d", "e f"])
    for kind in KINDS:
        assert backend(kind).kind == kind
        index = new_index(index_spec(kind, {}), 16, {})
        index.add(np.arange(3), vectors)
        index.save(tmp_path / kind, {})
        loaded = load_index(tmp_path / kind, 16, {})
        assert type(loaded) is backend(kind) and loaded.spec() == index.spec()
        assert loaded.search(vectors[1:2], 1)[0][0][0] == 1
    with pytest.raises(UnknownIndexKindError, match="ivf"):
        backend("ivf")


@pytest.mark.parametrize("readonly", [False, True])
def test_a_kb_built_as_hnsw_reopens_as_hnsw_with_default_settings(tmp_path: Path,
                                                                 readonly: bool) -> None:
    build(tmp_path, KBSettings(index="hnsw", hnsw_m=16))
    stats = reopen(tmp_path, readonly=readonly)
    assert stats["index"] == {**HNSW, "hnsw_m": 16}
    assert stats["repair_on_open"] == {"loaded": True, "added": 0, "removed": 0}


@pytest.mark.parametrize("damage", ["remove", "truncate"])
def test_the_kind_survives_a_lost_index_file(tmp_path: Path, damage: str) -> None:
    build(tmp_path, KBSettings(index="hnsw"))
    index_file = tmp_path / INDEX_FILE
    if damage == "remove":
        index_file.unlink()
    else:
        os.truncate(index_file, index_file.stat().st_size // 2)
    stats = reopen(tmp_path, readonly=True)
    assert stats["index"] == HNSW and stats["repair_on_open"]["added"] == len(DOCS)
    stats = reopen(tmp_path)
    assert stats["index"] == HNSW and stats["repair_on_open"]["loaded"] is False
    assert reopen(tmp_path)["repair_on_open"]["loaded"] is True, "the writer saved it as hnsw"


def test_a_writer_that_names_another_kind_rebuilds_and_records_it(tmp_path: Path) -> None:
    build(tmp_path, KBSettings())
    assert reopen(tmp_path)["index"] == {"kind": "flat"}
    stats = reopen(tmp_path, KBSettings(index="hnsw"))
    assert stats["index"] == HNSW and stats["repair_on_open"]["loaded"] is False
    assert stats["repair_on_open"]["added"] == len(DOCS)
    stats = reopen(tmp_path, readonly=True)
    assert stats["index"] == HNSW and stats["repair_on_open"]["loaded"] is True
    assert reopen(tmp_path, KBSettings(hnsw_m=8))["index"] == {**HNSW, "hnsw_m": 8}
    assert reopen(tmp_path, KBSettings(index="flat"))["index"] == {"kind": "flat"}


def test_a_reader_that_names_another_kind_gets_it_in_memory_and_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    # The service's log setup stops "cogcore" logs at its own handler; let caplog see them.
    monkeypatch.setattr(logging.getLogger("cogcore"), "propagate", True)
    build(tmp_path, KBSettings(index="hnsw"))
    with caplog.at_level(logging.WARNING, logger="cogcore.retrieval"):
        stats = reopen(tmp_path, KBSettings(index="flat"), readonly=True)
    assert stats["index"] == {"kind": "flat"} and stats["repair_on_open"]["loaded"] is False
    assert "again on every open" in caplog.text
    caplog.clear()
    assert reopen(tmp_path, KBSettings(index="hnsw"), readonly=True)["index"] == HNSW
    assert not caplog.text, "asking for the recorded kind is no warning"
    assert reopen(tmp_path)["repair_on_open"]["loaded"] is True, "the reader recorded nothing"


def test_an_unknown_kind_is_refused_and_releases_the_lock(tmp_path: Path) -> None:
    with pytest.raises(UnknownIndexKindError, match="choose one of"):
        build(tmp_path, KBSettings(index="ivf"))
    build(tmp_path, KBSettings())


def test_a_kb_from_before_the_kind_was_recorded_keeps_its_index_files_kind(
        tmp_path: Path) -> None:
    build(tmp_path, KBSettings(index="hnsw"))
    with sqlite3.connect(tmp_path / STORE_FILE) as db:
        db.execute("DELETE FROM state WHERE key = 'index'")
    stats = reopen(tmp_path)
    assert stats["index"] == HNSW and stats["repair_on_open"]["loaded"] is True


def test_the_command_line_offers_the_registered_kinds(tmp_path: Path) -> None:
    result = CliRunner().invoke(kb_cli, ["add", str(tmp_path), "--index", "ivf"])
    assert result.exit_code == 2 and "flat, hnsw" in result.output


def test_an_empty_kb_that_changes_kind_saves_the_new_index(tmp_path: Path) -> None:
    KnowledgeBase.open(tmp_path, embedder=HashingEncoder()).close()
    KnowledgeBase.open(tmp_path, embedder=HashingEncoder(),
                       settings=KBSettings(index="hnsw")).close()
    with KnowledgeBase.open(tmp_path, embedder=HashingEncoder()) as kb:
        assert kb.stats()["index"] == HNSW and kb.repair["loaded"] is True
