"""One real PostgreSQL (pgvector) server per test session; a fresh database for each test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.knowledge_base import KBSettings
from retrieval.postgres.knowledge_base import PostgresKnowledgeBase
from retrieval.postgres.local_server import create_database, local_server
from tests.retrieval.conftest import DOCS
from tests.retrieval.fakes import HashingEncoder

_names = itertools.count()


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The admin URL of a PostgreSQL server started for this session (Unix socket only)."""
    with local_server(Path(tmp_path_factory.mktemp("pg"))) as url:
        yield url


@pytest.fixture
def pg_url(pg_admin_url: str) -> str:
    """The URL of a new, empty database."""
    return create_database(pg_admin_url, f"kb_{next(_names)}")


@pytest.fixture
def encoder() -> HashingEncoder:
    """A fresh fake encoder (it counts what it embeds)."""
    return HashingEncoder()


@pytest.fixture
def kb(pg_url: str, encoder: HashingEncoder) -> Iterator[PostgresKnowledgeBase]:
    """A PostgreSQL knowledge base holding DOCS: what tests/retrieval's `kb` is for SQLite."""
    base = PostgresKnowledgeBase.open(pg_url, embedder=encoder, settings=KBSettings())
    base.upsert(DOCS)
    yield base
    base.close()
