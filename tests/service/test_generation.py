"""The engine protocol's admission, the same for both engines: a full queue is a 429 and a
shutdown a 503, raised by `submit` before any stream starts (and over HTTP, before any 200)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from transformers import AutoModelForCausalLM, AutoTokenizer

from service.engine import Engine
from service.errors import NotReady, QueueFull
from service.generation import GenerationEngine, GenerationRequest
from service.sampling import SamplingParams
from service.upstream import UpstreamEngine
from tests.service.slow_upstream import slow_upstream
from tests.service.test_api import assert_error, ready_client, tiny_settings
from tests.service.test_upstream import front

REQUEST = GenerationRequest([1, 2, 3], SamplingParams(200))


def local_engine(tiny_llama_dir: Path) -> Callable[[], GenerationEngine]:
    """A local engine on the tiny Llama with one row and no waiting room."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    model.generation_config.eos_token_id = None

    def make() -> GenerationEngine:
        engine = Engine(model, tokenizer, max_batch_size=1, max_waiting=0)
        engine.eos_ids = set()
        return engine

    return make


def check_admission(make: Callable[[], GenerationEngine]) -> None:
    """One request runs; the next is refused at `submit` with 429; once the first is closed a
    request is admitted again; after a drain `submit` is refused with 503."""

    async def body() -> None:
        engine = make()
        engine.start()
        try:
            first = engine.submit(REQUEST)
            await anext(first)  # running: the only place is taken
            with pytest.raises(QueueFull) as full:
                engine.submit(REQUEST)
            assert full.value.status == 429
            await first.aclose()
            for _ in range(200):  # the row leaves before the next step
                if engine.num_running + engine.num_waiting == 0:
                    break
                await asyncio.sleep(0.01)
            again = engine.submit(REQUEST)
            await again.aclose()
            assert await engine.drain(5.0)
            with pytest.raises(NotReady) as closing:
                engine.submit(REQUEST)
            assert closing.value.status == 503
        finally:
            engine.stop()

    asyncio.run(body())


def test_local_engine_admits_eagerly(tiny_llama_dir: Path) -> None:
    check_admission(local_engine(tiny_llama_dir))


def test_upstream_engine_admits_eagerly() -> None:
    with slow_upstream(first_token_s=0.0, between_s=5.0) as url:
        check_admission(lambda: UpstreamEngine(url, "m", max_running=1, max_waiting=0))


def test_unread_stream_releases_its_place() -> None:
    """A stream admitted and dropped without being read (a client gone before its response
    started) gives its place back."""
    async def body() -> int:
        engine = UpstreamEngine("http://127.0.0.1:9", "m", max_running=1, max_waiting=0)
        stream = engine.submit(REQUEST)
        assert engine.num_waiting == 1
        del stream
        return engine.num_waiting + engine.num_running

    assert asyncio.run(body()) == 0


def run_while_busy(client: TestClient, check: Callable[[], None]) -> None:
    """Hold the front's only place with a streamed request, then run `check`."""
    body = {"model": "front", "prompt": "a b", "max_tokens": 4, "stream": True}
    busy = threading.Thread(target=client.post, args=("/v1/completions",), kwargs={"json": body})
    engine = client.app.state.serving.engine
    busy.start()
    try:
        for _ in range(400):
            if engine.num_running:
                break
            threading.Event().wait(0.005)
        check()
    finally:
        busy.join()


def test_full_upstream_queue_is_a_429_before_the_stream(tiny_llama_dir: Path) -> None:
    """Over HTTP, a streamed request to a full upstream engine gets a 429 status in the
    envelope, with Retry-After, not an error event inside a 200 stream."""
    with slow_upstream(first_token_s=1.0) as url:
        client = front(tiny_llama_dir, url, max_batch_size=1, max_waiting=0, retry_after_s=2)
        try:
            def refused() -> None:
                body = {"model": "front", "prompt": "a", "max_tokens": 4, "stream": True}
                response = client.post("/v1/completions", json=body)
                assert_error(response, 429, "queue_full")
                assert response.headers["retry-after"] == "2"
            run_while_busy(client, refused)
        finally:
            client.__exit__(None, None, None)


def test_upstream_stream_reads_through(tiny_llama_dir: Path) -> None:
    """The same front, not full: the stream carries the upstream's pieces and its usage."""
    with slow_upstream(first_token_s=0.0) as url:
        client = front(tiny_llama_dir, url)
        try:
            body = {"model": "front", "prompt": "a", "max_tokens": 4, "stream": True,
                    "stream_options": {"include_usage": True}}
            with client.stream("POST", "/v1/completions", json=body) as response:
                assert response.status_code == 200
                events = [json.loads(line[6:]) for line in response.iter_lines()
                          if line.startswith("data: {")]
            text = "".join(c["text"] for e in events for c in e["choices"])
            assert text == " one two three"
            assert events[-1]["usage"]["completion_tokens"] == 3
        finally:
            client.__exit__(None, None, None)


def test_local_engine_over_http_refuses_during_shutdown_with_503(tiny_llama_dir: Path) -> None:
    """The local engine over HTTP: a request once the engine stopped is a 503, the status the
    upstream engine now gives too (it was a 429 there)."""
    client = ready_client(tiny_settings(tiny_llama_dir))
    try:
        client.app.state.serving.engine.stop()
        body = {"model": "tiny", "prompt": "a", "max_tokens": 2}
        assert_error(client.post("/v1/completions", json=body), 503, "not_ready")
    finally:
        client.__exit__(None, None, None)
