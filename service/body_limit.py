"""ASGI middleware: a request body over the configured size is a 413 in the error envelope."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.responses import JSONResponse

from service.errors import PayloadTooLarge, service_error_body
from service.http_errors import error_response


class BodyLimit:
    """ASGI middleware: a body over `max_bytes` is a 413, declared or streamed."""

    def __init__(self, app: Callable, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        """Check the declared length, then count the bytes as they arrive."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_bytes:
                return await self._refuse(scope, receive, send)
            return await self.app(scope, receive, send)
        # No declared length (chunked): read up to the limit first, then replay the body.
        body, more = b"", True
        while more and len(body) <= self.max_bytes:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if len(body) > self.max_bytes:
            return await self._refuse(scope, receive, send)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: dict, receive: Callable, send: Callable) -> None:
        exc = PayloadTooLarge(f"request body over {self.max_bytes} bytes")
        response: JSONResponse = error_response(exc.status, service_error_body(exc))
        await response(scope, receive, send)
