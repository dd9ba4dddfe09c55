"""Schema versions and migrations, and the errors a bad or unreachable database gives."""

from __future__ import annotations

import time

import psycopg
import pytest

from retrieval.backends import open_knowledge_base
from retrieval.errors import (
    EmbedderMismatchError,
    KnowledgeBaseNotFoundError,
    KnowledgeBaseUnavailableError,
    ReadOnlyError,
    SchemaVersionError,
)
from retrieval.postgres import schema
from retrieval.postgres.knowledge_base import PostgresKnowledgeBase, migrate_database
from tests.retrieval.conftest import DOCS
from tests.retrieval.fakes import HashingEncoder


def versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]


def test_open_migrates_once_and_records_the_version(pg_url: str) -> None:
    with pytest.raises(KnowledgeBaseNotFoundError, match="cogcore kb migrate"):
        PostgresKnowledgeBase.open(pg_url, embedder=HashingEncoder(), readonly=True)
    assert migrate_database(pg_url, dim=384) == (0, [schema.LATEST])
    assert migrate_database(pg_url, dim=384) == (schema.LATEST, [])  # nothing left to do
    with PostgresKnowledgeBase.open(pg_url, embedder=HashingEncoder()) as kb:
        assert kb.stats()["schema_version"] == schema.LATEST
    assert versions(pg_url) == [m.version for m in schema.MIGRATIONS]


def test_a_later_migration_applies_alone_and_a_newer_schema_is_refused(pg_url: str) -> None:
    PostgresKnowledgeBase.open(pg_url, embedder=HashingEncoder()).close()
    extra = schema.Migration(schema.LATEST + 1, "test: a column",
                             "ALTER TABLE documents ADD COLUMN note text;")
    with psycopg.connect(pg_url) as conn:
        assert schema.migrate(conn, schema.IndexKnobs(384),
                              (*schema.MIGRATIONS, extra)) == [extra.version]
    # This code knows only up to LATEST: it must not write a schema it does not understand.
    with pytest.raises(SchemaVersionError, match="newer than this code"):
        PostgresKnowledgeBase.open(pg_url, embedder=HashingEncoder())


def test_readers_refuse_writes_and_a_foreign_embedder_is_refused(pg_url: str) -> None:
    PostgresKnowledgeBase.open(pg_url, embedder=HashingEncoder()).close()
    with open_knowledge_base(pg_url, HashingEncoder(), readonly=True) as reader:
        assert isinstance(reader, PostgresKnowledgeBase)
        with pytest.raises(ReadOnlyError):
            reader.upsert(DOCS)
    with pytest.raises(EmbedderMismatchError):
        PostgresKnowledgeBase.open(pg_url, embedder=HashingEncoder(dim=64))


@pytest.mark.parametrize("url, reason", [
    ("postgresql://cogcore@127.0.0.1:1/kb", "127.0.0.1:1"),  # nothing listens there
    ("postgresql://cogcore@/kb?host=/nonexistent-socket-dir", "nonexistent-socket-dir"),
    ("postgresql://cogcore@127.0.0.1:notaport/kb", "cannot connect"),  # malformed
])
def test_an_unreachable_or_bad_url_fails_at_once_and_says_where(url: str, reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(KnowledgeBaseUnavailableError, match=reason) as caught:
        PostgresKnowledgeBase.open(url, embedder=HashingEncoder())
    assert "knowledge-base database" in str(caught.value)
    assert time.monotonic() - started < 10


def test_a_wrong_database_name_is_a_clear_error(pg_admin_url: str) -> None:
    url = pg_admin_url.replace("/postgres?", "/no_such_database?")
    with pytest.raises(KnowledgeBaseUnavailableError, match="no_such_database"):
        PostgresKnowledgeBase.open(url, embedder=HashingEncoder())
