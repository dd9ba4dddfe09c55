"""Fixtures for the retrieval tests: a knowledge base on disk with the fast fake encoder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.documents import Document
from retrieval.knowledge_base import KBSettings, KnowledgeBase
from tests.retrieval.fakes import HashingEncoder

DOCS = [
    Document("fr", "The capital of France is Paris. France lies in Europe.",
             {"kind": "country", "region": "Europe"}),
    Document("jp", "The capital of Japan is Tokyo. Japan lies in Asia.",
             {"kind": "country", "region": "Asia"}),
    Document("o", "The chemical symbol of Oxygen is O. Its atomic number is 8.",
             {"kind": "element"}),
    Document("fe", "The chemical symbol of Iron is Fe. Its atomic number is 26.",
             {"kind": "element"}),
]


@pytest.fixture
def encoder() -> HashingEncoder:
    """A fresh fake encoder (it counts what it embeds)."""
    return HashingEncoder()


@pytest.fixture(params=["flat", "hnsw"])
def kb(request: pytest.FixtureRequest, tmp_path: Path,
       encoder: HashingEncoder) -> Iterator[KnowledgeBase]:
    """A writable knowledge base holding DOCS, once per index kind."""
    base = KnowledgeBase.open(tmp_path / "kb", embedder=encoder,
                              settings=KBSettings(index=request.param))
    base.upsert(DOCS)
    yield base
    base.close()
