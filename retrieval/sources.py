"""Read files into documents for `cogcore kb add`: .txt and .md whole, .jsonl one per line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from retrieval.documents import Document
from retrieval.errors import InvalidEncodingError, InvalidSourceError

SUFFIXES = (".txt", ".md", ".jsonl")


def expand(paths: list[Path]) -> list[Path]:
    """The files named, with directories replaced by their .txt/.md/.jsonl files."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise InvalidSourceError(f"{path} does not exist")
    return files


def read_documents(path: Path) -> Iterator[Document]:
    """The documents in one file; text stays bytes so the store checks its encoding."""
    if path.suffix in (".txt", ".md"):
        yield Document(str(path), path.read_bytes(), {"source": "file", "path": str(path)})
        return
    if path.suffix != ".jsonl":
        raise InvalidSourceError(f"{path}: only {', '.join(SUFFIXES)} files can be added")
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                decoded = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidEncodingError(f"{path}:{number}: not valid UTF-8") from exc
            try:
                record = json.loads(decoded)
            except ValueError as exc:
                raise InvalidSourceError(f"{path}:{number}: not JSON ({exc})") from exc
            if not isinstance(record, dict) or "id" not in record or "text" not in record:
                raise InvalidSourceError(f"{path}:{number}: need an object with id and text")
            yield Document(record["id"], record["text"], record.get("metadata", {}))
