"""The web console: static pages (chat, knowledge base, status) served by the app itself.

Plain HTML, CSS and JavaScript in `static/`, with no build step and nothing fetched from
another origin: the pages call the same public API with the user's key (kept in the
browser's sessionStorage), so they need no key of their own and grant nothing.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

STATIC = Path(__file__).with_name("static")
PREFIX = "/console"
# Everything the pages load comes from this server; inline scripts and other origins are
# refused, so a passage or document rendered by mistake as HTML could not run a script.
POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
          "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class ConsoleFiles(StaticFiles):
    """The console's files with a content security policy and no caching by proxies."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a file, adding the policy headers to its response."""

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"content-security-policy", POLICY.encode()),
                                      (b"x-content-type-options", b"nosniff"),
                                      (b"cache-control", b"no-cache")]
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def mount_console(app: FastAPI) -> None:
    """Serve the console under /console/ and send / there (after the API's own routes)."""

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    app.mount(PREFIX, ConsoleFiles(directory=STATIC, html=True), name="console")
