"""Every failure the retrieval layer reports, one type each, under `RetrievalError`.

The service maps these to HTTP in one place: the `client_error` ones are the caller's fault (4xx),
the others are the server's state (5xx or 409/503). Raising one never changes anything stored.
"""

from __future__ import annotations

from cogcore.errors import CogcoreError


class RetrievalError(CogcoreError):
    """Base of every retrieval failure."""

    client_error: bool = False


class EmptyTextError(RetrievalError):
    """A document or query text is empty or only whitespace."""

    client_error = True


class TextTooLargeError(RetrievalError):
    """A document or query text exceeds the configured size limit."""

    client_error = True


class InvalidEncodingError(RetrievalError):
    """A text is not valid UTF-8 (undecodable bytes or lone surrogates)."""

    client_error = True


class InvalidMetadataError(RetrievalError):
    """Metadata is not a JSON object with string keys and JSON values."""

    client_error = True


class InvalidDocumentIdError(RetrievalError):
    """A document id is empty, too long or not a string."""

    client_error = True


class DocumentNotFoundError(RetrievalError):
    """No document has the given id."""

    client_error = True


class UnknownFilterKeyError(RetrievalError):
    """A search filter names a metadata key that no stored document has."""

    client_error = True


class InvalidSearchError(RetrievalError):
    """A search request is malformed: unknown mode, k out of range, bad filter value."""

    client_error = True


class InvalidSourceError(RetrievalError):
    """An input file cannot be read as documents (unknown type, malformed JSON lines)."""

    client_error = True


class WriterLockedError(RetrievalError):
    """Another process holds the knowledge base's writer lock."""


class ReadOnlyError(RetrievalError):
    """A write was attempted on a knowledge base opened read-only."""


class KnowledgeBaseNotFoundError(RetrievalError):
    """The knowledge base directory does not exist (and was opened read-only)."""


class EmbedderMismatchError(RetrievalError):
    """The knowledge base was built with another embedder than the one given."""


class IndexFileError(RetrievalError):
    """An index file is missing, torn or of another format: it is rebuilt from the store."""


class UnknownIndexKindError(RetrievalError):
    """An index kind that no registered backend implements."""

    client_error = True


class KnowledgeBaseUnavailableError(RetrievalError):
    """The knowledge base's database cannot be reached or refuses the connection."""


class SchemaVersionError(RetrievalError):
    """The database's schema is newer than this code, or not migrated and may not be here."""
