"""Documents as callers give them, and the validation every write passes before it touches disk."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from retrieval.errors import (
    EmptyTextError,
    InvalidDocumentIdError,
    InvalidEncodingError,
    InvalidMetadataError,
    InvalidSearchError,
    TextTooLargeError,
)

MAX_ID_CHARS = 512


@dataclass(frozen=True)
class Document:
    """One document: a caller-chosen id, its text, and a JSON object of metadata."""

    id: str
    text: str | bytes
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ValidDocument:
    """A document that passed validation: decoded text, canonical metadata and hashes."""

    id: str
    text: str
    metadata: dict[str, Any]
    metadata_json: str
    text_hash: str


def check_text(text: object, max_bytes: int, what: str = "text") -> str:
    """The text as a valid, non-blank str within `max_bytes` of UTF-8, or a precise error."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEncodingError(f"{what} is not valid UTF-8: {exc.reason}") from exc
    if not isinstance(text, str):
        raise EmptyTextError(f"{what} must be a string, got {type(text).__name__}")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:  # lone surrogates survive in a str but not on disk
        raise InvalidEncodingError(f"{what} is not valid UTF-8: {exc.reason}") from exc
    if not text.strip():
        raise EmptyTextError(f"{what} is empty or only whitespace")
    if size > max_bytes:
        raise TextTooLargeError(f"{what} is {size} bytes, over the limit of {max_bytes}")
    return text


def check_id(doc_id: object) -> str:
    """The id itself when it is a usable document id."""
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise InvalidDocumentIdError(f"document id must be a non-empty string, got {doc_id!r}")
    if len(doc_id) > MAX_ID_CHARS:
        raise InvalidDocumentIdError(f"document id is over {MAX_ID_CHARS} characters")
    try:
        doc_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidEncodingError(f"document id is not valid UTF-8: {exc.reason}") from exc
    return doc_id


def canonical_metadata(metadata: object) -> str:
    """Metadata as canonical JSON (sorted keys), refusing anything but a plain JSON object."""
    if not isinstance(metadata, dict):
        raise InvalidMetadataError(f"metadata must be a JSON object, got {type(metadata).__name__}")
    if not all(isinstance(key, str) and key for key in metadata):
        raise InvalidMetadataError("metadata keys must be non-empty strings")
    try:
        encoded = json.dumps(metadata, sort_keys=True, ensure_ascii=False, allow_nan=False)
        encoded.encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidMetadataError(f"metadata is not valid JSON: {exc}") from exc
    return encoded


def validate(document: Document, max_bytes: int) -> ValidDocument:
    """Check one document completely; raises the matching `RetrievalError` subclass."""
    doc_id = check_id(document.id)
    text = check_text(document.text, max_bytes, what=f"text of document {doc_id!r}")
    metadata_json = canonical_metadata(document.metadata)
    text_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return ValidDocument(doc_id, text, json.loads(metadata_json), metadata_json, text_hash)


def filter_value_json(value: object) -> str:
    """A filter value in the same canonical JSON the store keeps metadata values in."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidSearchError("filter values must be finite")
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    except TypeError as exc:
        raise InvalidSearchError(f"filter value is not JSON: {exc}") from exc
