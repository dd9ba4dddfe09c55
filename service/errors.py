"""Domain exceptions of the service, each carrying its HTTP status and OpenAI error fields.

Everything below the routes raises these; they know nothing of HTTP frameworks (the engine
imports them). `service.http_errors.install_error_handlers` maps them (and FastAPI's own
validation and routing errors) to the one envelope, in one place: the app's edge.
"""

from __future__ import annotations

from typing import Any

from cogcore.errors import CogcoreError
from retrieval.errors import (
    DocumentNotFoundError,
    InvalidSearchError,
    ReadOnlyError,
    RetrievalError,
    TextTooLargeError,
    UnknownFilterKeyError,
    WriterLockedError,
)
from service.protocol import ErrorBody, ErrorResponse


class ServiceError(CogcoreError):
    """A request that failed for a reason the client can be told."""

    status = 500
    type = "server_error"
    code: str | None = None

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def headers(self) -> dict[str, str]:
        """Extra response headers this error needs (e.g. Retry-After)."""
        return {}


class InvalidRequest(ServiceError):
    """The request is malformed or asks for something impossible."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class UnsupportedParameter(InvalidRequest):
    """A parameter of the OpenAI API that this service does not implement."""

    code = "unsupported_parameter"


class ContextLengthExceeded(InvalidRequest):
    """Prompt plus max_tokens does not fit the model's context: refused, never truncated."""

    code = "context_length_exceeded"


class ModelNotFound(ServiceError):
    """The request names a model that this service does not serve."""

    status = 404
    code = "model_not_found"
    type = "invalid_request_error"


class AuthenticationFailed(ServiceError):
    """Missing or unknown API key."""

    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(ServiceError):
    """A valid key without the right to do this (a read key on a write route)."""

    status = 403
    type = "permission_error"
    code = "permission_denied"


class PayloadTooLarge(ServiceError):
    """The request body is over the configured limit."""

    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class QueueFull(ServiceError):
    """The waiting queue is full: the client should retry later."""

    status = 429
    type = "rate_limit_error"
    code = "queue_full"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        """Tell the client when to come back."""
        return {"Retry-After": str(self.retry_after_s)}


class RequestTimeout(ServiceError):
    """The request ran past the per-request timeout and was dropped."""

    status = 408
    type = "timeout_error"
    code = "request_timeout"


class NotReady(ServiceError):
    """The model is still loading, or the service is shutting down."""

    status = 503
    type = "service_unavailable"
    code = "not_ready"


ERROR_STATUSES: dict[int, str] = {
    400: "invalid request: validation, bad JSON, unsupported parameter, context length",
    401: "missing or unknown API key",
    403: "a read key on a write route",
    404: "unknown model or document",
    408: "the request ran past the per-request timeout",
    409: "the knowledge base is read-only or locked by another writer",
    413: "request body or document over its size limit",
    429: "waiting queue full: retry after `Retry-After` seconds",
    503: "still loading, shutting down, or no knowledge base loaded",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for `statuses`, each in the one error envelope."""
    return {status: {"model": ErrorResponse, "description": ERROR_STATUSES[status]}
            for status in statuses}


def service_error_body(exc: ServiceError) -> ErrorBody:
    """The envelope fields of a domain error."""
    return ErrorBody(message=exc.message, type=exc.type, param=exc.param, code=exc.code)


def retrieval_status(exc: RetrievalError) -> tuple[int, str]:
    """The HTTP status and error code of a knowledge-base failure."""
    if isinstance(exc, DocumentNotFoundError):
        return 404, "document_not_found"
    if isinstance(exc, TextTooLargeError):
        return 413, "document_too_large"
    if exc.client_error:
        search = isinstance(exc, InvalidSearchError | UnknownFilterKeyError)
        return 400, "invalid_search" if search else "invalid_document"
    if isinstance(exc, ReadOnlyError | WriterLockedError):
        return 409, "knowledge_base_read_only"
    return 503, "knowledge_base_unavailable"
