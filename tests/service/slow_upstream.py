"""A tiny OpenAI-compatible upstream on loopback whose first token comes late: a real HTTP
server (stdlib `ThreadingHTTPServer`) streaming `/v1/completions` as SSE, for the upstream
engine's admission and the keep-alive tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def slow_upstream(first_token_s: float, between_s: float = 0.01,
                  pieces: tuple[str, ...] = (" one", " two", " three"),
                  port: int = 0) -> Iterator[str]:
    """Serve streamed completions of `pieces`, the first after `first_token_s` seconds, on
    `port` (0: a free one); yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            prompt_tokens = len(request["prompt"])
            try:
                for i, piece in enumerate(pieces):
                    time.sleep(first_token_s if i == 0 else between_s)
                    last = i == len(pieces) - 1
                    self._send({"choices": [{"index": 0, "text": piece,
                                             "finish_reason": "length" if last else None}]})
                self._send({"choices": [], "usage": {
                    "prompt_tokens": prompt_tokens, "completion_tokens": len(pieces),
                    "total_tokens": prompt_tokens + len(pieces)}})
                self.wfile.write(b"data: [DONE]\n\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client went away: as a real upstream, stop writing

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            """GET /v1/models, which the front's /ready asks."""
            body = json.dumps({"object": "list", "data": [{"id": "slow", "object": "model"}]})
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def _send(self, event: dict) -> None:
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()

        def log_message(self, *args: object) -> None:
            """Quiet: the test output is not the place for access logs."""

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
