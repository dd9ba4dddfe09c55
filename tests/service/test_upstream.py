"""Scale-out: this service in front of a second instance of itself playing the upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from loadtest.server import Server, start, stop
from service.settings import Settings
from tests.service.test_api import ready_client


@pytest.fixture(scope="module")
def upstream(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real `cogcore serve` on the tiny Llama, on a loopback port."""
    log = tmp_path_factory.mktemp("upstream") / "serve.log"
    server = start(tiny_llama_dir, log, env={"COGCORE_LOAD_EMBEDDER": "false",
                                              "COGCORE_API_KEYS": "upstream-key"})
    yield server
    stop(server)


def front(model_dir: Path, url: str, **overrides: object) -> TestClient:
    """This service, generating on `url`, with only the tokenizer loaded locally."""
    settings = Settings(model_dir=model_dir, served_model_name="front", load_embedder=False,
                        upstream_url=url, upstream_model=model_dir.resolve().name,
                        upstream_api_key="upstream-key", **overrides)
    return ready_client(settings)


def chat(client: TestClient | httpx.Client, model: str, **extra: object) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "a b c"}],
            "max_tokens": 8, "temperature": 0, **extra}
    return client.post("/v1/chat/completions", json=body)


def test_front_answers_exactly_as_the_upstream(tiny_llama_dir: Path, upstream: Server) -> None:
    direct = chat(httpx.Client(base_url=upstream.url,
                               headers={"Authorization": "Bearer upstream-key"}),
                  upstream.model)
    client = front(tiny_llama_dir, upstream.url)
    try:
        through = chat(client, "front")
        assert through.status_code == 200, through.text
        assert (through.json()["choices"][0]["message"]["content"]
                == direct.json()["choices"][0]["message"]["content"])
        assert through.json()["usage"] == direct.json()["usage"]
        with client.stream("POST", "/v1/chat/completions", json={
            "model": "front", "messages": [{"role": "user", "content": "a b c"}],
            "max_tokens": 8, "temperature": 0, "stream": True,
        }) as response:
            events = [json.loads(line[6:]) for line in response.iter_lines()
                      if line.startswith("data: {")]
        streamed = "".join(e["choices"][0]["delta"].get("content") or "" for e in events
                           if e["choices"])
        assert streamed == through.json()["choices"][0]["message"]["content"]
        assert 'cogcore:e2e_request_latency_seconds_count{model_name="front"}' in client.get(
            "/metrics").text
    finally:
        client.__exit__(None, None, None)
