"""The edge: every failure mapped to the one OpenAI error envelope, as a JSON response.

Domain errors (`service.errors`), knowledge-base errors, FastAPI's validation and routing
errors and anything unexpected each get one handler here; nothing below the routes imports
FastAPI to report an error.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cogcore.errors import CogcoreError
from retrieval.errors import RetrievalError
from service.errors import ServiceError, retrieval_status, service_error_body
from service.protocol import ErrorBody, ErrorResponse
from service.structured import StructuredOutputError

log = logging.getLogger("cogcore.service")


def error_response(status: int, body: ErrorBody, headers: dict[str, str] | None = None
                   ) -> JSONResponse:
    """The one envelope as a JSON response."""
    content = ErrorResponse(error=body).model_dump()
    return JSONResponse(content, status_code=status, headers=headers)


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

    @app.exception_handler(StructuredOutputError)
    async def _structured(_: Request, exc: StructuredOutputError) -> JSONResponse:
        return error_response(400, ErrorBody(message=str(exc), type="invalid_request_error",
                                             param=exc.param, code="invalid_request"))

    @app.exception_handler(CogcoreError)
    async def _domain(_: Request, exc: CogcoreError) -> JSONResponse:
        return error_response(500, ErrorBody(message=str(exc), type="server_error"))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, ErrorBody(message="internal error", type="server_error"))
