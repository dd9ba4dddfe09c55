"""Every bad input gets its own exception type and leaves the store on disk unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.documents import Document
from retrieval.errors import (
    DocumentNotFoundError,
    EmptyTextError,
    InvalidDocumentIdError,
    InvalidEncodingError,
    InvalidMetadataError,
    InvalidSearchError,
    RetrievalError,
    TextTooLargeError,
    UnknownFilterKeyError,
)
from retrieval.knowledge_base import KBSettings, KnowledgeBase
from tests.retrieval.conftest import DOCS
from tests.retrieval.fakes import HashingEncoder


def snapshot(path: Path) -> tuple:
    """Everything a reader of the directory on disk can observe."""
    with KnowledgeBase.open(path, embedder=HashingEncoder(), readonly=True) as kb:
        stats = kb.stats()
        return (kb.list(0, 100), stats["chunks"], stats["generation"], stats["index_count"])


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    """A knowledge base directory holding DOCS, closed."""
    path = tmp_path / "kb"
    with KnowledgeBase.open(path, embedder=HashingEncoder(),
                            settings=KBSettings(max_text_bytes=1000)) as kb:
        kb.upsert(DOCS)
    return path


BAD_DOCUMENTS = [
    (Document("new", ""), EmptyTextError),
    (Document("new", " \n\t "), EmptyTextError),
    (Document("new", "x" * 1001), TextTooLargeError),
    (Document("new", b"caf\xe9 au lait"), InvalidEncodingError),
    (Document("new", "lone \ud800 surrogate"), InvalidEncodingError),
    (Document("new", "fine", ["not", "an", "object"]), InvalidMetadataError),  # type: ignore[arg-type]
    (Document("new", "fine", {"x": float("nan")}), InvalidMetadataError),
    (Document("new", "fine", {"x": object()}), InvalidMetadataError),
    (Document("", "fine"), InvalidDocumentIdError),
    (Document("fr", ""), EmptyTextError),  # a bad replacement must not touch the original
]


@pytest.mark.parametrize(("document", "error"), BAD_DOCUMENTS)
def test_bad_documents_raise_their_own_error_and_store_nothing(
    stored: Path, document: Document, error: type[RetrievalError]
) -> None:
    before = snapshot(stored)
    with KnowledgeBase.open(stored, embedder=HashingEncoder(),
                            settings=KBSettings(max_text_bytes=1000)) as kb:
        good = Document("good", "A perfectly good document in the same batch.")
        with pytest.raises(error):
            kb.upsert([good, document])
    assert snapshot(stored) == before


@pytest.mark.parametrize("call", ["get", "delete"])
def test_unknown_id_on_get_or_delete(stored: Path, call: str) -> None:
    before = snapshot(stored)
    with KnowledgeBase.open(stored, embedder=HashingEncoder()) as kb:
        with pytest.raises(DocumentNotFoundError, match="nope"):
            getattr(kb, call)("nope")
    assert snapshot(stored) == before


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"filters": {"colour": "red"}}, UnknownFilterKeyError),
        ({"filters": {"kind": {"nested": 1}}}, InvalidSearchError),
        ({"filters": {"kind": []}}, InvalidSearchError),
        ({"mode": "semantic"}, InvalidSearchError),
        ({"k": 0}, InvalidSearchError),
        ({"query": "   "}, EmptyTextError),
        ({"query": "q" * 5000}, TextTooLargeError),
    ],
)
def test_bad_searches(stored: Path, kwargs: dict, error: type[RetrievalError]) -> None:
    before = snapshot(stored)
    with KnowledgeBase.open(stored, embedder=HashingEncoder(), readonly=True) as kb:
        with pytest.raises(error):
            kb.search(**{"query": "capital", **kwargs})
    assert snapshot(stored) == before


def test_every_error_is_a_client_error_or_says_it_is_not() -> None:
    client = [e for _, e in BAD_DOCUMENTS] + [DocumentNotFoundError, UnknownFilterKeyError]
    assert all(issubclass(e, RetrievalError) and e.client_error for e in client)
