"""End to end: a real `cogcore serve` on loopback, driven by the official openai client."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from loadtest.server import Server, start, stop


@pytest.fixture(scope="module")
def real_server(default_base_dir: Path, default_kb_dir: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real server on the default model, embedder and knowledge base for the module."""
    log = tmp_path_factory.mktemp("real-server") / "serve.log"
    server = start(default_base_dir, log, env={"COGCORE_API_KEYS": "test-key",
                                                "COGCORE_KB_DIR": str(default_kb_dir)})
    yield server
    stop(server)


@pytest.fixture
def client(real_server: Server) -> OpenAI:
    """The official client pointed at the real server."""
    return OpenAI(base_url=f"{real_server.url}/v1", api_key="test-key", max_retries=0)


QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.mark.real_model
def test_chat_streamed_equals_not_streamed(client: OpenAI, real_server: Server) -> None:
    """Greedy chat: the streamed text equals the whole text, and usage arrives in the stream."""
    whole = client.chat.completions.create(model=real_server.model, messages=QUESTION,
                                           max_tokens=12, temperature=0)
    stream = client.chat.completions.create(model=real_server.model, messages=QUESTION,
                                            max_tokens=12, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert whole.choices[0].message.content and text == whole.choices[0].message.content
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert "Paris" in text


@pytest.mark.real_model
def test_completion_streamed_equals_not_streamed(client: OpenAI, real_server: Server) -> None:
    """Greedy text completion, streamed and not, with a stop string."""
    kwargs = {"model": real_server.model, "prompt": "One, two, three,", "max_tokens": 10,
              "temperature": 0, "stop": ["six"]}
    whole = client.completions.create(**kwargs)
    streamed = "".join(c.choices[0].text for c in client.completions.create(**kwargs,
                                                                              stream=True))
    assert streamed == whole.choices[0].text and "six" not in streamed


@pytest.mark.real_model
def test_models_and_embeddings(client: OpenAI, real_server: Server) -> None:
    """/v1/models lists the model and embedder; embeddings are unit vectors of 384."""
    ids = [m.id for m in client.models.list().data]
    assert ids == [real_server.model, "all-MiniLM-L6-v2"]
    result = client.embeddings.create(model="all-MiniLM-L6-v2", input=["Paris", "Lima"])
    assert [len(d.embedding) for d in result.data] == [384, 384]
    assert abs(sum(x * x for x in result.data[0].embedding) - 1.0) < 1e-3


@pytest.mark.real_model
def test_wrong_key_is_refused(real_server: Server) -> None:
    """The openai client surfaces our 401 envelope."""
    from openai import AuthenticationError

    bad = OpenAI(base_url=f"{real_server.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(AuthenticationError) as info:
        bad.models.list()
    assert info.value.body["code"] == "invalid_api_key"


@pytest.mark.real_model
def test_disconnect_frees_the_row(real_server: Server) -> None:
    """A streaming client that goes away is dropped: the running count returns to zero."""
    # Greedy and closed-book: this prompt then runs all 400 tokens (a sampled story could end
    # before the gauge is read, a facts route could abstain without running the model).
    body = {"model": real_server.model, "prompt": "Once upon a time", "max_tokens": 400,
            "stream": True, "temperature": 0, "retrieval": "never"}
    headers = {"Authorization": "Bearer test-key"}
    with httpx.stream("POST", f"{real_server.url}/v1/completions", json=body,
                      headers=headers, timeout=60) as response:
        next(response.iter_lines())
        # The first chunk can leave before the scheduler counts the row as running (on a busy
        # machine it waits a step): it must be counted while its 400 tokens stream.
        deadline = time.monotonic() + 10
        while real_server.gauge("num_requests_running") != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert real_server.gauge("num_requests_running") == 1
    deadline = time.monotonic() + 10
    while real_server.gauge("num_requests_running") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert real_server.gauge("num_requests_running") == 0


def test_sigterm_drains_running_requests(tiny_llama_dir: Path, tmp_path: Path) -> None:
    """On SIGTERM a running request still completes, then the process exits."""
    server = start(tiny_llama_dir, tmp_path / "serve.log",
                   env={"COGCORE_LOAD_EMBEDDER": "false", "COGCORE_LOAD_KB": "false",
                        "COGCORE_DRAIN_TIMEOUT_S": "30"})
    result: dict[str, httpx.Response] = {}
    body = {"model": server.model, "prompt": "a", "max_tokens": 140, "temperature": 0}

    def call() -> None:
        result["r"] = httpx.post(f"{server.url}/v1/completions", json=body, timeout=60)

    worker = threading.Thread(target=call)
    try:
        worker.start()
        while not server.gauge("num_requests_running"):
            time.sleep(0.005)
        server.process.send_signal(signal.SIGTERM)
        worker.join(timeout=60)
        # uvicorn re-raises the captured SIGTERM once shut down, as a well-behaved process.
        assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        stop(server)
    assert result["r"].status_code == 200
    assert result["r"].json()["usage"]["completion_tokens"] > 0
