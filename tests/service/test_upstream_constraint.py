"""An upstream that keeps the grounding: with COGCORE_UPSTREAM_CONSTRAINT=vllm the service
sends each grounded request's constraint in `vllm_xargs`, and /ready says, from a probe,
whether the upstream applied it.

The upstream is a tiny loopback stand-in for vLLM: greedy decoding of the same tiny checkpoint,
each request one row of a batch that the plugin's `ConstraintRows` keeps through the
BatchUpdates vLLM would send; started with or without the plugin "loaded". The service in front
has the real embedder and a small real knowledge base.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from transformers import AutoModelForCausalLM, AutoTokenizer

from service.readiness import CARRIED, IGNORED, NOT_CARRIED, UNCHECKED, Readiness
from service.settings import Settings
from service.vllm_plugin.rows import ConstraintRows
from service.vllm_plugin.wire import XARG, constraint_from_xargs
from tests.service.slow_upstream import slow_upstream
from tests.service.test_api import ready_client
from tests.service.test_facts_api import kb_dir  # noqa: F401 - the fixture
from tests.service.test_vllm_plugin import Params, Update

QUESTION = "What is the capital of Peru?"


@contextmanager
def mini_vllm(model_dir: Path, plugin: bool) -> Iterator[tuple[str, list[dict]]]:
    """A loopback `/v1/completions` (streamed or not) and `/v1/models`; yields its URL and the
    request bodies it received. With `plugin`, `vllm_xargs` reach the logits as vLLM hands
    them to a loaded processor; without, they are ignored, as vLLM ignores unknown ones."""
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    bodies: list[dict] = []
    one_at_a_time = threading.Lock()

    def generate(body: dict) -> tuple[list[int], str]:
        out: list[int] = []
        rows = ConstraintRows()
        extra = body.get("vllm_xargs") if plugin else None
        rows.update(Update(1, added=[(0, Params(extra), body["prompt"], out)]))
        for _ in range(body["max_tokens"]):
            with torch.no_grad():
                logits = model(torch.tensor([body["prompt"] + out])).logits[:, -1, :]
            token = int(rows.apply(logits)[0].argmax())
            if token == tokenizer.eos_token_id:
                return out, "stop"
            out.append(token)
        return out, "length"

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            bodies.append(body)
            with one_at_a_time:
                out, reason = generate(body)
            usage = {"prompt_tokens": len(body["prompt"]), "completion_tokens": len(out)}
            if not body.get("stream"):
                text = tokenizer.decode(out)
                return self._reply("application/json", json.dumps({"choices": [
                    {"index": 0, "text": text, "finish_reason": reason}], "usage": usage}))
            events, said = [], ""
            for i in range(1, len(out) + 1):
                text = tokenizer.decode(out[:i])
                events.append({"choices": [{"index": 0, "text": text[len(said):],
                                            "finish_reason": None}]})
                said = text
            events += [{"choices": [{"index": 0, "text": "", "finish_reason": reason}]},
                       {"choices": [], "usage": usage}]
            self._reply("text/event-stream", "".join(f"data: {json.dumps(e)}\n\n"
                                                     for e in events) + "data: [DONE]\n\n")

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self._reply("application/json", json.dumps({"object": "list", "data": [
                {"id": "tiny", "object": "model"}]}))

        def _reply(self, kind: str, text: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(text.encode())))
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        server.server_close()


def service(model_dir: Path, kb: Path, **overrides: object) -> TestClient:
    return ready_client(Settings(model_dir=model_dir, served_model_name="tiny", kb_dir=kb,
                                 kb_readonly=True, **overrides))


def grounded(client: TestClient) -> tuple[str, list[str]]:
    """The reply to QUESTION and its sources (greedy)."""
    response = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": [{"role": "user", "content": QUESTION}],
        "max_tokens": 12, "temperature": 0})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["cogcore"]["route"] == "facts"
    return (body["choices"][0]["message"]["content"],
            [s["id"] for s in body["cogcore"]["sources"]])


def constraint_said(client: TestClient) -> str:
    """/ready's `evidence_constraint` once the upstream's probe has answered."""
    said = ""
    for _ in range(200):
        said = client.get("/ready").json()["evidence_constraint"]
        if said.startswith(("carried", "not carried")):
            return said
        time.sleep(0.05)
    return said


@pytest.fixture(scope="module")
def local(tiny_llama_dir: Path, kb_dir: Path) -> tuple[str, list[str]]:  # noqa: F811
    """The in-process engine's constrained reply, the reference."""
    client = service(tiny_llama_dir, kb_dir)
    try:
        return grounded(client)
    finally:
        client.__exit__(None, None, None)


def through_vllm(model_dir: Path, kb: Path, plugin: bool
                 ) -> tuple[str, tuple[str, list[str]], dict]:
    """/ready's word on the constraint, the grounded reply and the request body the upstream
    got for it, with COGCORE_UPSTREAM_CONSTRAINT=vllm and the stand-in with(out) the plugin."""
    with mini_vllm(model_dir, plugin) as (url, bodies):
        client = service(model_dir, kb, upstream_url=url, upstream_model="tiny",
                         upstream_constraint="vllm")
        try:
            said = constraint_said(client)
            bodies.clear()
            reply = grounded(client)
        finally:
            client.__exit__(None, None, None)
    return said, reply, bodies[0]


def test_a_vllm_upstream_with_the_plugin_answers_as_the_local_engine(
        tiny_llama_dir: Path, kb_dir: Path, local: tuple[str, list[str]]) -> None:  # noqa: F811
    said, reply, body = through_vllm(tiny_llama_dir, kb_dir, plugin=True)
    assert said == CARRIED and reply == local
    sent = constraint_from_xargs(body["vllm_xargs"])
    assert sent is not None and sent.stop_ids  # the reader's constraint, with its stops


def test_without_the_plugin_the_ready_body_says_it_is_ignored(
        tiny_llama_dir: Path, kb_dir: Path, local: tuple[str, list[str]]) -> None:  # noqa: F811
    said, reply, body = through_vllm(tiny_llama_dir, kb_dir, plugin=False)
    assert said == IGNORED
    assert XARG in body["vllm_xargs"]  # sent, and ignored: the reply is the model's own
    assert reply[1] == local[1] and reply[0] != local[0]


def test_an_upstream_not_declared_gets_no_constraint(tiny_llama_dir: Path,
                                                     kb_dir: Path) -> None:  # noqa: F811
    with mini_vllm(tiny_llama_dir, plugin=True) as (url, bodies):
        client = service(tiny_llama_dir, kb_dir, upstream_url=url, upstream_model="tiny")
        try:
            assert client.get("/ready").json()["evidence_constraint"] == NOT_CARRIED
            grounded(client)
        finally:
            client.__exit__(None, None, None)
    assert bodies and all("vllm_xargs" not in b for b in bodies)


def test_a_failed_probe_is_retried_and_a_verdict_kept_for_its_ttl() -> None:
    calls: list[float] = []

    async def probe() -> bool:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise httpx.ConnectError("refused")
        return True

    async def three_checks(url: str) -> list[str]:
        ready = Readiness(None, url, constraints_carried=True, probe=probe, ttl_s=0)
        said = []
        for _ in range(3):
            said.append((await ready.check())["evidence_constraint"])
            await asyncio.sleep(0.1)  # the probe runs in the background meanwhile
        return said

    with slow_upstream(first_token_s=0.0) as url:
        said = asyncio.run(three_checks(url))
    assert said == [UNCHECKED, UNCHECKED, CARRIED]
    assert len(calls) == 2  # the failure retried at the next check; the verdict then kept
