"""Crash-safe index files: written to a temporary file, fsynced, renamed, directory fsynced.

Layout: magic, header length, JSON header (with the payload's length and SHA-256), payload.
A reader checks all of it, so a torn, truncated or foreign file is refused, never half-loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

from retrieval.errors import IndexFileError

MAGIC = b"COGKBIX1"


def write_atomic(path: Path, header: dict[str, Any], payload: bytes) -> None:
    """Replace `path` with header + payload so that a crash leaves the old file or the new one."""
    full = {**header, "payload_bytes": len(payload),
            "payload_sha256": hashlib.sha256(payload).hexdigest()}
    encoded = json.dumps(full, sort_keys=True).encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(MAGIC + struct.pack("<Q", len(encoded)) + encoded)
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    # The rename itself lives in the directory: sync it too, or a crash may undo it.
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_checked(path: Path) -> tuple[dict[str, Any], bytes]:
    """The header and payload of an index file, or IndexFileError if it is not whole."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IndexFileError(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) < len(MAGIC) + 8 or not data.startswith(MAGIC):
        raise IndexFileError(f"{path} is not an index file")
    (size,) = struct.unpack("<Q", data[len(MAGIC) : len(MAGIC) + 8])
    start = len(MAGIC) + 8 + size
    try:
        header = json.loads(data[len(MAGIC) + 8 : start])
    except ValueError as exc:
        raise IndexFileError(f"{path} has a torn header") from exc
    payload = data[start:]
    if len(payload) != header.get("payload_bytes"):
        raise IndexFileError(f"{path} is truncated ({len(payload)} payload bytes)")
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        raise IndexFileError(f"{path} fails its checksum")
    return header, payload
