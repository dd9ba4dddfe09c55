"""Read files into documents for `cogcore kb add`.

.jsonl files hold one document per line (id, text, metadata). Every other supported file (.txt,
.md, .html, .pdf: `retrieval.formats`) is parsed by its format and stored one section per
document, `<path>#<n>`, each with its location in its metadata, as `POST /v1/files` stores an
upload.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from retrieval.documents import Document
from retrieval.errors import InvalidEncodingError, InvalidSourceError, RetrievalError
from retrieval.formats import SUFFIXES as FILE_SUFFIXES
from retrieval.formats import detect_format, file_documents, parse

SUFFIXES = (*FILE_SUFFIXES, ".jsonl")


def expand(paths: list[Path]) -> list[Path]:
    """The files named, with directories replaced by the supported files under them."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*")
                            if p.suffix.lower() in SUFFIXES and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise InvalidSourceError(f"{path} does not exist")
    return files


def read_documents(path: Path, fmt: str | None = None,
                   max_bytes: int = 1_000_000) -> Iterator[Document]:
    """The documents in one file: by its extension, or as format `fmt` when given."""
    if fmt is None and path.suffix.lower() == ".jsonl":
        yield from _json_lines(path)
        return
    try:
        fmt = detect_format(path.name, override=fmt)
        sections = parse(path.read_bytes(), fmt, max_bytes=max_bytes)
    except RetrievalError as exc:  # the same error, naming the file
        raise type(exc)(f"{path}: {exc}") from exc
    yield from file_documents(str(path), sections, fmt, {"source": "file", "path": str(path)},
                              filename=path.name)


def _json_lines(path: Path) -> Iterator[Document]:
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
