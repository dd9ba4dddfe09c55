"""HTTP behaviour on a tiny random Llama, in process: envelope, limits, auth, readiness."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import Resources, create_app, load_resources
from service.settings import Settings


def tiny_settings(model_dir: Path, **overrides: object) -> Settings:
    """Settings for a tiny checkpoint, no embedder."""
    return Settings(model_dir=model_dir, served_model_name="tiny", load_embedder=False,
                    **overrides)


def ready_client(settings: Settings) -> TestClient:
    """A client whose app has finished loading."""
    client = TestClient(create_app(settings))
    client.__enter__()
    for _ in range(600):
        if client.get("/ready").status_code == 200:
            return client
        threading.Event().wait(0.05)
    raise AssertionError("the app never became ready")


@pytest.fixture(scope="module")
def client(tiny_llama_dir: Path) -> Iterator[TestClient]:
    """One ready app on the tiny Llama for the whole module."""
    c = ready_client(tiny_settings(tiny_llama_dir, max_body_bytes=4000, max_context=64))
    yield c
    c.__exit__(None, None, None)


def chat_body(**extra: object) -> dict:
    """A minimal chat request for the tiny model."""
    return {"model": "tiny", "messages": [{"role": "user", "content": "a b c"}],
            "max_tokens": 4, "temperature": 0, **extra}


def assert_error(response, status: int, code: str | None, param: str | None = None) -> None:
    """The one OpenAI envelope, with this status, code and (when given) param."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["message"]
    if param is not None:
        assert error["param"] == param


def test_chat_completion_shape_and_request_id(client: TestClient) -> None:
    """A chat completion has OpenAI's fields, usage, and the request id header."""
    response = client.post("/v1/chat/completions", json=chat_body(),
                           headers={"x-request-id": "abc123"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "abc123"
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == "tiny"
    assert body["choices"][0]["finish_reason"] in {"stop", "length"}
    assert body["usage"]["total_tokens"] == (body["usage"]["prompt_tokens"]
                                             + body["usage"]["completion_tokens"])


def test_completion_stream_has_usage_and_done(client: TestClient) -> None:
    """SSE: chunks, a final usage chunk with no choices, then [DONE]."""
    body = {"model": "tiny", "prompt": "a b", "max_tokens": 3, "stream": True,
            "stream_options": {"include_usage": True}}
    with client.stream("POST", "/v1/completions", json=body) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    usage_chunk = json.loads(lines[-2].removeprefix("data: "))
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] <= 3


@pytest.mark.parametrize(("extra", "param"), [
    ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
    ({"modalities": ["audio"]}, "modalities"), ({"guided_json": {}}, "guided_json"),
])
def test_unsupported_parameters_are_named(client: TestClient, extra: dict, param: str) -> None:
    """Anything not implemented is a 400 naming the parameter, never silently ignored."""
    response = client.post("/v1/chat/completions", json=chat_body(**extra))
    assert_error(response, 400, "unsupported_parameter", param)


@pytest.mark.parametrize(("extra", "param"), [
    ({"n": 9}, "n"), ({"n": 0}, "n"), ({"top_logprobs": 2}, "top_logprobs"),
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"logit_bias": {"99999999": 1}}, "logit_bias"), ({"logit_bias": {"x": 1}}, "logit_bias"),
    ({"logit_bias": {"5": 101}}, "logit_bias"), ({"presence_penalty": 2.5}, "presence_penalty"),
])
def test_sampling_fields_out_of_range_are_named(client: TestClient, extra: dict, param: str
                                                ) -> None:
    """n over max_n (8), top_logprobs without logprobs or over 20, a logit_bias id outside the
    vocabulary or a bias outside -100..100, a penalty outside -2..2: a 400 naming it."""
    response = client.post("/v1/chat/completions", json=chat_body(**extra))
    assert_error(response, 400, "invalid_request", param)
    if extra.get("logit_bias", {}).get("99999999"):
        assert "99999999" in response.json()["error"]["message"]


def test_validation_errors_are_400_in_the_envelope(client: TestClient) -> None:
    """Bad types, bad JSON and missing fields are 400, not 422."""
    assert_error(client.post("/v1/chat/completions", json=chat_body(temperature="hot")),
                 400, "invalid_request", "temperature")
    assert_error(client.post("/v1/chat/completions", content=b"{not json",
                             headers={"content-type": "application/json"}),
                 400, "invalid_request")
    assert_error(client.post("/v1/completions", json={"model": "tiny"}), 400, "invalid_request",
                 "prompt")


def test_context_length_is_refused_not_truncated(client: TestClient) -> None:
    """Prompt plus max_tokens over the context is a 400 context_length_exceeded."""
    response = client.post("/v1/completions",
                           json={"model": "tiny", "prompt": "a b c", "max_tokens": 64})
    assert_error(response, 400, "context_length_exceeded", "max_tokens")


def test_unknown_model_and_route(client: TestClient) -> None:
    """Another model name is a 404 model_not_found; an unknown path a 404 envelope."""
    assert_error(client.post("/v1/chat/completions", json=chat_body(model="gpt-4")),
                 404, "model_not_found", "model")
    assert_error(client.get("/v1/nothing"), 404, None)


def test_body_over_limit_is_413(client: TestClient) -> None:
    """Declared or chunked, a body over the limit is refused with 413."""
    big = chat_body(messages=[{"role": "user", "content": "x" * 5000}])
    assert_error(client.post("/v1/chat/completions", json=big), 413, "payload_too_large")
    chunks = iter([json.dumps(big).encode()])
    assert_error(client.post("/v1/chat/completions", content=chunks,
                             headers={"content-type": "application/json"}),
                 413, "payload_too_large")


def test_models_and_metrics(client: TestClient) -> None:
    """/v1/models lists the served name; /metrics exposes the vLLM-style names."""
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["tiny"]
    client.post("/v1/chat/completions", json=chat_body())
    text = client.get("/metrics").text
    for name in ("cogcore:time_to_first_token_seconds", "cogcore:inter_token_latency_seconds",
                 "cogcore:e2e_request_latency_seconds", "cogcore:request_queue_time_seconds",
                 "cogcore:num_requests_running", "cogcore:num_requests_waiting",
                 "cogcore:prompt_tokens_total", "cogcore:generation_tokens_total"):
        assert name in text


def test_queue_full_is_429_with_retry_after(tiny_llama_dir: Path) -> None:
    """With no waiting room and the only row busy, a request gets 429 and Retry-After."""
    client = ready_client(tiny_settings(tiny_llama_dir, max_batch_size=1, max_waiting=0,
                                        retry_after_s=3))
    engine = client.app.state.serving.engine
    body = {"model": "tiny", "prompt": "a", "max_tokens": 100}
    busy = threading.Thread(target=client.post, args=("/v1/completions",), kwargs={"json": body})
    try:
        busy.start()
        for _ in range(400):
            if engine.num_running:
                break
            threading.Event().wait(0.005)
        response = client.post("/v1/completions", json=body)
        assert_error(response, 429, "queue_full")
        assert response.headers["retry-after"] == "3"
    finally:
        busy.join()
        client.__exit__(None, None, None)


def test_timeout_is_408(tiny_llama_dir: Path) -> None:
    """A request past the per-request timeout is a 408 request_timeout. Greedy, so the tiny
    model runs all 200 steps (sampled, it drew its end-of-sequence token after 28 steps and
    finished inside the timeout once); 200 steps take far longer than 10 ms on any CPU."""
    client = ready_client(tiny_settings(tiny_llama_dir, request_timeout_s=0.01))
    try:
        response = client.post("/v1/completions",
                               json={"model": "tiny", "prompt": "a", "max_tokens": 200,
                                     "temperature": 0})
        assert_error(response, 408, "request_timeout")
    finally:
        client.__exit__(None, None, None)


def test_auth_guards_v1_only(tiny_llama_dir: Path) -> None:
    """With keys set, /v1 needs a valid Bearer key (admin keys too); ops routes stay open."""
    client = ready_client(tiny_settings(tiny_llama_dir, api_keys=["k1"], admin_keys=["adm"]))
    try:
        assert_error(client.get("/v1/models"), 401, "invalid_api_key")
        assert_error(client.get("/v1/models", headers={"Authorization": "Bearer nope"}),
                     401, "invalid_api_key")
        for key in ("k1", "adm"):
            assert client.get("/v1/models",
                              headers={"Authorization": f"Bearer {key}"}).status_code == 200
        for path in ("/health", "/ready", "/metrics"):
            assert client.get(path).status_code == 200
    finally:
        client.__exit__(None, None, None)


def test_not_ready_until_loaded(tiny_llama_dir: Path) -> None:
    """/health answers at once; /ready and /v1 are 503 until the loader returns."""
    release = threading.Event()

    def slow_loader(settings: Settings) -> Resources:
        release.wait(30)
        return load_resources(settings)

    with TestClient(create_app(tiny_settings(tiny_llama_dir), loader=slow_loader)) as client:
        assert client.get("/health").status_code == 200
        assert_error(client.get("/ready"), 503, "not_ready")
        assert_error(client.post("/v1/chat/completions", json=chat_body()), 503, "not_ready")
        release.set()
        for _ in range(600):
            if client.get("/ready").status_code == 200:
                break
            threading.Event().wait(0.05)
        assert client.get("/ready").status_code == 200


def test_api_keys_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """COGCORE_API_KEYS takes a comma-separated list."""
    monkeypatch.setenv("COGCORE_API_KEYS", "a, b")
    assert Settings().api_keys == ["a", "b"]


def test_grounding_settings_are_a_group_read_from_the_same_variables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """COGCORE_RETRIEVAL_K and friends land in Settings().grounding, checked like the rest."""
    from pydantic import ValidationError

    monkeypatch.setenv("COGCORE_RETRIEVAL_K", "3")
    monkeypatch.setenv("COGCORE_ABSTAIN_MESSAGE", "No idea.")
    grounding = Settings().grounding
    assert (grounding.retrieval_k, grounding.abstain_message) == (3, "No idea.")
    assert grounding.route_threshold == 0.5  # untouched defaults stay
    monkeypatch.setenv("COGCORE_RETRIEVAL_K", "0")
    with pytest.raises(ValidationError, match="retrieval_k"):
        Settings()


@pytest.mark.parametrize(("engine", "torch_threads", "expected"),
                         [("llamacpp", None, 1), ("llamacpp", 2, 2), ("torch", None, 2)])
def test_torch_threads_on_the_llamacpp_engine(tiny_llama_dir: Path, engine: str,
                                              torch_threads: int | None, expected: int) -> None:
    """Serving on llama.cpp, torch only samples: one thread unless set, so that llama.cpp's
    OpenMP threads are the only pool libgomp manages (docs/speed.md, "One OpenMP pool")."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        load_resources(tiny_settings(tiny_llama_dir, engine=engine, torch_threads=torch_threads))
        assert torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(before)
