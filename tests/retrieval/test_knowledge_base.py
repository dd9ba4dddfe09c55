"""The facade: upsert semantics, get/list/delete, the three search modes, filters, readers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from retrieval.documents import Document
from retrieval.errors import EmbedderMismatchError, ReadOnlyError, WriterLockedError
from retrieval.knowledge_base import KBSettings, KnowledgeBase
from tests.retrieval.conftest import DOCS
from tests.retrieval.fakes import HashingEncoder


def test_upsert_reports_chunks_and_get_list_count(kb: KnowledgeBase) -> None:
    assert kb.count() == 4
    assert kb.get("fr").metadata == {"kind": "country", "region": "Europe"}
    assert [d.id for d in kb.list(0, 2)] + [d.id for d in kb.list(2, 2)] == ["fe", "fr", "jp", "o"]
    long = Document("long", " ".join(f"Sentence {i} is about topic {i}." for i in range(80)))
    ((doc_id, n_chunks),) = kb.upsert([long])
    assert doc_id == "long" and n_chunks > 1 == kb.get("fr").n_chunks
    assert kb.stats()["chunks"] == kb.stats()["index_count"] == 4 + n_chunks


def test_same_content_is_a_no_op_and_metadata_changes_skip_the_embedder(
    kb: KnowledgeBase, encoder: HashingEncoder
) -> None:
    generation, embedded = kb.stats()["generation"], encoder.encoded
    assert kb.upsert([DOCS[0]]) == [("fr", 1)]
    assert (kb.stats()["generation"], encoder.encoded) == (generation, embedded)
    kb.upsert([Document("fr", DOCS[0].text, {"kind": "country", "region": "EU"})])
    assert encoder.encoded == embedded
    assert kb.search("Paris", k=1, filters={"region": "EU"})[0].document_id == "fr"


def test_same_id_replaces_text_and_old_chunks_leave_the_index(kb: KnowledgeBase) -> None:
    kb.upsert([Document("fr", "Lyon is a large city on the Rhone.", {"kind": "country"})])
    assert kb.get("fr").text.startswith("Lyon")
    assert all(h.document_id != "fr" for h in kb.search("Paris France", k=4, mode="bm25"))
    assert kb.search("Lyon Rhone", k=1, mode="dense")[0].document_id == "fr"
    assert kb.stats()["index_count"] == kb.stats()["chunks"] == 4


def test_delete_removes_the_document_from_every_mode(kb: KnowledgeBase) -> None:
    assert kb.delete("jp") == 1
    for mode in ("dense", "bm25", "hybrid"):
        assert "jp" not in {h.document_id for h in kb.search("capital of Japan Tokyo", 4, mode)}
    assert kb.count() == 3 == kb.stats()["index_count"]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_each_mode_finds_the_document_and_filters_restrict_it(kb: KnowledgeBase,
                                                              mode: str) -> None:
    top = kb.search("What is the capital of Japan?", k=2, mode=mode)
    assert top[0].document_id == "jp" and top[0].metadata["region"] == "Asia"
    assert top[0].score >= top[-1].score
    only_elements = kb.search("chemical symbol capital", k=4, mode=mode,
                              filters={"kind": "element"})
    assert {h.document_id for h in only_elements} <= {"o", "fe"} and only_elements
    either = kb.search("capital", k=4, mode=mode, filters={"region": ["Asia", "Europe"]})
    assert {h.document_id for h in either} <= {"fr", "jp"}
    assert kb.search("capital", k=4, mode=mode, filters={"region": "Mars"}) == []


def test_readers_see_a_writers_later_commits(kb: KnowledgeBase, encoder: HashingEncoder) -> None:
    kb.flush()
    with KnowledgeBase.open(kb.path, embedder=encoder, readonly=True) as reader:
        assert reader.count() == 4
        kb.upsert([Document("de", "The capital of Germany is Berlin.")])
        kb.delete("fr")
        hits = reader.search("capital of Germany Berlin", k=5, mode="hybrid")
        assert hits[0].document_id == "de" and "fr" not in {h.document_id for h in hits}
        with pytest.raises(ReadOnlyError):
            reader.upsert(DOCS)


def test_one_writer_at_a_time_and_a_matching_embedder(kb: KnowledgeBase) -> None:
    with pytest.raises(WriterLockedError):
        KnowledgeBase.open(kb.path, embedder=HashingEncoder())
    with pytest.raises(EmbedderMismatchError):
        KnowledgeBase.open(kb.path, embedder=HashingEncoder(dim=64), readonly=True)


def test_the_lock_is_free_again_after_close(tmp_path: Path) -> None:
    KnowledgeBase.open(tmp_path, embedder=HashingEncoder()).close()
    KnowledgeBase.open(tmp_path, embedder=HashingEncoder()).close()


def test_threads_may_search_while_another_writes(tmp_path: Path) -> None:
    base = KnowledgeBase.open(tmp_path, embedder=HashingEncoder(),
                              settings=KBSettings(save_every_chunks=50))
    base.upsert(DOCS)
    errors: list[BaseException] = []

    def write() -> None:
        for i in range(60):
            base.upsert([Document(f"t{i}", f"Thread document {i} mentions token{i}.")])

    def read() -> None:
        try:
            for _ in range(60):
                assert base.search("capital of France", k=3)[0].document_id == "fr"
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=write), *(threading.Thread(target=read) for _ in range(2))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert base.count() == 64 == base.stats()["index_count"]
    base.close()
