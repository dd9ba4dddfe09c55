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
                  pieces: tuple[str, ...] = (" one", " two", " three")) -> Iterator[str]:
    """Serve streamed completions of `pieces`, the first after `first_token_s` seconds;
    yields the base URL."""

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

        def _send(self, event: dict) -> None:
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()

        def log_message(self, *args: object) -> None:
            """Quiet: the test output is not the place for access logs."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
