"""/ready's knowledge-base check on a real PostgreSQL: ready while the database answers, not
ready (naming it) once it is gone, within the check's short timeout."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from retrieval.postgres.knowledge_base import PostgresKnowledgeBase
from service.errors import NotReady
from service.readiness import Readiness


def test_ready_follows_the_database(kb: PostgresKnowledgeBase, pg_admin_url: str,
                                    pg_url: str) -> None:
    readiness = Readiness(kb, ttl_s=0.0, timeout_s=1.0)
    assert asyncio.run(readiness.check())["knowledge_base"] == "ok"
    name = conninfo_to_dict(pg_url)["dbname"]
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:  # gone, connections cut
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    start = time.monotonic()
    with pytest.raises(NotReady, match="knowledge-base database is unreachable"):
        asyncio.run(readiness.check())
    assert time.monotonic() - start < 3
