"""Domain exceptions of the service, each carrying its HTTP status and OpenAI error fields.

Everything below the routes raises these; `install_error_handlers` maps them (and FastAPI's
own validation and routing errors) to the one envelope in one place.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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

log = logging.getLogger("cogcore.service")


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


def error_response(status: int, body: ErrorBody, headers: dict[str, str] | None = None
                   ) -> JSONResponse:
    """The one envelope as a JSON response."""
    content = ErrorResponse(error=body).model_dump()
    return JSONResponse(content, status_code=status, headers=headers)


def service_error_body(exc: ServiceError) -> ErrorBody:
    """The envelope fields of a domain error."""
    return ErrorBody(message=exc.message, type=exc.type, param=exc.param, code=exc.code)


def _validation_body(exc: RequestValidationError) -> ErrorBody:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":  # loc is a byte offset, not a parameter
        return ErrorBody(message=f"the body is not valid JSON (at byte {param})",
                         type="invalid_request_error", param=None, code="invalid_request")
    if first.get("type") == "invalid_unicode":  # raised before field validation: no loc
        return ErrorBody(message=str(first.get("msg")), type="invalid_request_error",
                         param=first.get("ctx", {}).get("where"), code="invalid_request")
    if first.get("type") == "extra_forbidden":
        return ErrorBody(message=f"unsupported parameter: {param}", type="invalid_request_error",
                         param=param, code="unsupported_parameter")
    message = f"{param}: {first.get('msg')}" if param else str(first.get("msg", "invalid body"))
    return ErrorBody(message=message, type="invalid_request_error", param=param,
                     code="invalid_request")


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


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure to the OpenAI envelope: domain, validation, routing, unexpected."""

    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc.status, service_error_body(exc), exc.headers())

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, _validation_body(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's own 400 is a body it could not parse (bad UTF-8, nesting too deep).
        code = "invalid_request" if exc.status_code == 400 else None
        body = ErrorBody(message=str(exc.detail), type="invalid_request_error", code=code)
        return error_response(exc.status_code, body, dict(exc.headers or {}))

    @app.exception_handler(RetrievalError)
    async def _retrieval(_: Request, exc: RetrievalError) -> JSONResponse:
        status, code = retrieval_status(exc)
        kind = "invalid_request_error" if status < 500 else "server_error"
        return error_response(status, ErrorBody(message=str(exc), type=kind, code=code))

    @app.exception_handler(CogcoreError)
    async def _domain(_: Request, exc: CogcoreError) -> JSONResponse:
        return error_response(500, ErrorBody(message=str(exc), type="server_error"))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, ErrorBody(message="internal error", type="server_error"))
