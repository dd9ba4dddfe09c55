"""/ready beyond "loaded": the upstream engine checked (and cached), the evidence constraint's
absence said; the upstream's connect errors retried with backoff, and nothing else retried."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from loadtest.server import free_port
from service.app import create_app
from service.generation import GenerationRequest
from service.readiness import NOT_CARRIED, Readiness
from service.sampling import SamplingParams
from service.settings import Settings
from service.upstream import UpstreamEngine, UpstreamError
from tests.service.slow_upstream import slow_upstream
from tests.service.test_api import assert_error, ready_client, tiny_settings
from tests.service.test_upstream import chat, front


def test_ready_checks_the_upstream_and_says_the_constraint_is_not_carried(
        tiny_llama_dir: Path) -> None:
    with slow_upstream(first_token_s=0.0) as url:
        client = front(tiny_llama_dir, url)
        body = client.get("/ready").json()
    assert body == {"status": "ready", "upstream": "ok", "evidence_constraint": NOT_CARRIED}
    time.sleep(1.6)  # past the cached result: the upstream is gone now
    try:
        gone = client.get("/ready")
        assert_error(gone, 503, "not_ready")
        assert "upstream engine is unreachable" in gone.json()["error"]["message"]
    finally:
        client.__exit__(None, None, None)


def test_a_local_engine_applies_the_constraint(tiny_llama_dir: Path) -> None:
    client = ready_client(tiny_settings(tiny_llama_dir))
    try:
        assert client.get("/ready").json() == {"status": "ready",
                                               "evidence_constraint": "applied"}
    finally:
        client.__exit__(None, None, None)


def test_checks_are_cached_for_ttl() -> None:
    calls = []

    class Database:
        def ping(self, timeout_s: float) -> None:
            calls.append(timeout_s)
            if len(calls) > 1:
                raise OSError("connection refused")

    readiness = Readiness(Database(), ttl_s=0.3, timeout_s=0.5)

    async def probe() -> None:
        bodies = await asyncio.gather(*(readiness.check() for _ in range(20)))
        assert bodies[0] == {"status": "ready", "knowledge_base": "ok",
                             "evidence_constraint": "applied"}
        assert len(calls) == 1  # twenty probes, one query
        await asyncio.sleep(0.35)
        with pytest.raises(Exception, match="knowledge-base database is unreachable: "
                                            "OSError: connection refused"):
            await readiness.check()

    asyncio.run(probe())


def request() -> GenerationRequest:
    return GenerationRequest(prompt_ids=[1, 2, 3], params=SamplingParams(max_tokens=3),
                             timeout_s=30)


async def collect(engine: UpstreamEngine) -> str:
    return "".join([d.text async for d in engine.submit(request())])


def test_an_upstream_that_comes_up_late_is_reached_by_retrying(tiny_llama_dir: Path) -> None:
    port = free_port()
    opened = threading.Event()

    def late() -> None:
        time.sleep(0.5)  # the first tries are refused: nothing listens yet
        with slow_upstream(first_token_s=0.0, port=port):
            opened.set()
            time.sleep(5)

    threading.Thread(target=late, daemon=True).start()
    engine = UpstreamEngine(f"http://127.0.0.1:{port}", "m", connect_tries=5, backoff_s=0.2)
    assert asyncio.run(collect(engine)) == " one two three"
    assert opened.is_set()


def test_only_connect_errors_are_retried() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) < 3:
            raise httpx.ConnectError("refused", request=request)
        raise httpx.ReadError("reset after the request went out", request=request)

    engine = UpstreamEngine("http://upstream", "m", connect_tries=4, backoff_s=0.01)
    engine._client = httpx.AsyncClient(base_url="http://upstream",
                                       transport=httpx.MockTransport(handler))
    with pytest.raises(UpstreamError, match="ReadError"):
        asyncio.run(collect(engine))
    assert calls == ["/v1/completions"] * 3  # two refused, then one that failed for good

    calls.clear()
    engine = UpstreamEngine("http://upstream", "m", connect_tries=2, backoff_s=0.01)
    engine._client = httpx.AsyncClient(
        base_url="http://upstream", transport=httpx.MockTransport(
            lambda r: (calls.append(r.url.path), _refuse(r))[1]))
    with pytest.raises(UpstreamError, match="ConnectError"):
        asyncio.run(collect(engine))
    assert len(calls) == 2  # bounded


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


def test_unreachable_upstream_is_not_ready_and_a_502(tiny_llama_dir: Path) -> None:
    settings = Settings(model_dir=tiny_llama_dir, served_model_name="front", load_embedder=False,
                        upstream_url="http://127.0.0.1:9")  # the discard port: nothing listens
    client = TestClient(create_app(settings))
    client.__enter__()
    try:
        for _ in range(600):  # loaded once /ready names the upstream rather than loading
            message = client.get("/ready").json()["error"]["message"]
            if "upstream" in message:
                break
            time.sleep(0.05)
        assert message.startswith("the upstream engine is unreachable: ConnectError")
        assert_error(chat(client, "front"), 502, "upstream_error")
    finally:
        client.__exit__(None, None, None)
