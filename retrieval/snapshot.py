"""Backups of a knowledge base: `snapshot` to a directory, `restore` into an empty store.

    manifest = snapshot(location, Path("backup-1"))   # a directory or a postgresql:// URL
    restore(Path("backup-1"), other_location)          # refuses a non-empty store unless force

A snapshot is a directory: `manifest.json` (format, source backend, schema version, embedder,
counts), `store.sqlite3` (documents, metadata, chunks with their vectors, in the embedded
store's schema, whichever backend it came from) and, from an embedded store, its dense index
file and the other files beside it (the router). So either backend's snapshot restores into
either backend.

The embedded store is copied with SQLite's online backup API, in one step: one consistent state
while its writer goes on. The index file is read after it (it is only ever replaced whole, so
it is some whole saved state); opening the restored store reconciles it with the store's chunk
ids from the stored vectors, as after a crash, so it holds exactly the snapshot's chunks.
A PostgreSQL database is read in one REPEATABLE READ transaction (`postgres/snapshot.py`).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from retrieval.backends import is_database_url
from retrieval.errors import KnowledgeBaseNotFoundError, RetrievalError
from retrieval.index_file import read_checked
from retrieval.knowledge_base import INDEX_FILE, LOCK_FILE, STORE_FILE
from retrieval.store import SCHEMA
from retrieval.writer_lock import WriterLock

FORMAT = 1  # of the snapshot directory; a newer one is refused
EMBEDDED_SCHEMA = 1  # the embedded store's schema (store.py), recorded like PostgreSQL's
MANIFEST = "manifest.json"
# Not copied from beside an embedded store: the lock, SQLite's own files, temporary files.
SKIPPED = {LOCK_FILE, STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm", INDEX_FILE}


class SnapshotError(RetrievalError):
    """A snapshot cannot be written or restored (exists, not empty, unreadable, foreign)."""


def snapshot(location: str | Path, out: Path) -> dict[str, Any]:
    """Write a consistent snapshot of the knowledge base at `location` to directory `out`."""
    out = Path(out)
    if out.exists():
        raise SnapshotError(f"{out} already exists: a snapshot goes to a new path")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if is_database_url(location):
            from retrieval.postgres.snapshot import export_database

            manifest = export_database(str(location), tmp / STORE_FILE)
        else:
            manifest = _export_embedded(Path(location), tmp)
        manifest = {"format": FORMAT, "created_at": time.time(), **manifest}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        _sync(tmp)
        os.replace(tmp, out)
        _sync(out.parent, files=False)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    """A snapshot's manifest, checked: SnapshotError when it is not a snapshot this code reads."""
    try:
        manifest = json.loads((Path(path) / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"{path} is not a knowledge-base snapshot ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
            or not (Path(path) / STORE_FILE).is_file():
        raise SnapshotError(f"{path} is not a format-{FORMAT} knowledge-base snapshot")
    return manifest


def restore(path: Path, location: str | Path, force: bool = False) -> dict[str, Any]:
    """Restore snapshot `path` into the (empty, unless `force`) knowledge base at `location`;
    the snapshot's manifest."""
    manifest = read_manifest(path)
    if is_database_url(location):
        from retrieval.postgres.snapshot import import_database

        import_database(Path(path) / STORE_FILE, str(location), manifest, force)
    else:
        _import_embedded(Path(path), Path(location), manifest, force)
    return manifest


def contents(db: sqlite3.Connection) -> dict[str, Any]:
    """What a snapshot's manifest records of a store in the embedded schema."""
    def state(key: str) -> str | None:
        row = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    return {
        "documents": db.execute("SELECT count(*) FROM documents").fetchone()[0],
        "chunks": db.execute("SELECT count(*) FROM chunks").fetchone()[0],
        "generation": int(state("generation") or 0), "embedder": state("embedder"),
        "index": json.loads(state("index") or "null"),
    }


def _export_embedded(source: Path, tmp: Path) -> dict[str, Any]:
    if not (source / STORE_FILE).is_file():
        raise KnowledgeBaseNotFoundError(f"no knowledge base at {source}")
    src = sqlite3.connect(f"file:{source / STORE_FILE}?mode=ro", uri=True)
    dst = sqlite3.connect(tmp / STORE_FILE)
    try:
        src.backup(dst)  # pages=-1: the whole database in one step, so one consistent state
        dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        manifest = {"backend": "embedded", "schema_version": EMBEDDED_SCHEMA, **contents(dst)}
    finally:
        dst.close()
        src.close()
    files = []
    for item in sorted(source.iterdir()):
        if item.name in SKIPPED or item.name.startswith(".") or not item.is_file():
            continue
        shutil.copy2(item, tmp / item.name)
        files.append(item.name)
    if (source / INDEX_FILE).is_file():  # replaced whole by rename; checked anyway
        shutil.copy2(source / INDEX_FILE, tmp / INDEX_FILE)
        try:
            read_checked(tmp / INDEX_FILE)
            files.append(INDEX_FILE)
        except RetrievalError:  # left out: opening the restored store rebuilds it
            (tmp / INDEX_FILE).unlink()
    return {**manifest, "files": files}


def _import_embedded(path: Path, target: Path, manifest: dict[str, Any], force: bool) -> None:
    if manifest.get("backend") == "embedded" and manifest.get("schema_version") != EMBEDDED_SCHEMA:
        raise SnapshotError(f"{path} holds embedded schema {manifest.get('schema_version')}, "
                            f"this code reads {EMBEDDED_SCHEMA}")
    target.mkdir(parents=True, exist_ok=True)
    lock = WriterLock(target / LOCK_FILE)  # no writer may run meanwhile
    try:
        dst = sqlite3.connect(target / STORE_FILE, isolation_level=None)
        dst.executescript(SCHEMA)  # a new store: empty tables, so the count below is 0
        src = sqlite3.connect(f"file:{path / STORE_FILE}?mode=ro", uri=True)
        try:
            held = dst.execute("SELECT count(*) FROM documents").fetchone()[0]
            if held and not force:
                raise SnapshotError(f"{target} holds {held} documents: restore goes into an "
                                    "empty knowledge base (--force replaces them)")
            before = int((dst.execute("SELECT value FROM state WHERE key = 'generation'")
                          .fetchone() or [0])[0])
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = WAL")
            # Past the old generation: a reader that had the old store notices the change.
            dst.execute("INSERT OR REPLACE INTO state VALUES ('generation', ?)",
                        (str(max(before, manifest["generation"]) + 1),))
            if manifest["backend"] != "embedded":  # its index is pgvector's: the default here
                dst.execute("DELETE FROM state WHERE key = 'index'")
        finally:
            src.close()
            dst.close()
        (target / INDEX_FILE).unlink(missing_ok=True)
        for name in manifest.get("files", []):
            shutil.copy2(path / name, target / name)
        _sync(target)
    finally:
        lock.release()


def _sync(path: Path, files: bool = True) -> None:
    """fsync the files in directory `path` (if `files`) and the directory itself."""
    for item in path.iterdir() if files else []:
        if item.is_file():
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
