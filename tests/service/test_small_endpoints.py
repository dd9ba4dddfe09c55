"""/tokenize and /detokenize (vLLM's shapes), CORS, SSE keep-alive and the served model's id."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from cogcore.checkpoint_id import checkpoint_id
from cogcore.paths import default_core_dir
from loadtest.server import Server, start, stop
from service.settings import Settings
from tests.service.slow_upstream import slow_upstream
from tests.service.test_api import assert_error, ready_client, tiny_settings
from tests.service.test_upstream import front

KEY = {"Authorization": "Bearer k"}
TEXT = "Zürich's café serves 東京 ramen 😀 at 7 pm."


@pytest.fixture(scope="module")
def core_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real `cogcore serve` on the default core (no embedder, no knowledge base)."""
    core = default_core_dir()
    if not (core / "config.json").is_file():
        pytest.skip("the default core is not built (make core)")
    log = tmp_path_factory.mktemp("core-server") / "serve.log"
    server = start(core, log, env={"COGCORE_API_KEYS": "k", "COGCORE_LOAD_EMBEDDER": "false",
                                   "COGCORE_LOAD_KB": "false"})
    yield server
    stop(server)


@pytest.mark.real_model
def test_tokenize_detokenize_round_trip(core_server: Server) -> None:
    """Text to ids and back through a real server; a chat's ids are the ones its completion
    prefills (the openai client's usage says how many)."""
    http = httpx.Client(base_url=core_server.url, headers=KEY, timeout=60)
    tokens = http.post("/tokenize", json={"prompt": TEXT, "return_token_strs": True}).json()
    assert tokens["count"] == len(tokens["tokens"]) == len(tokens["token_strs"]) > 5
    assert tokens["max_model_len"] == 8192
    back = http.post("/detokenize", json={"tokens": tokens["tokens"],
                                          "model": core_server.model})
    assert back.json() == {"prompt": TEXT}
    messages = [{"role": "user", "content": TEXT}]
    chat = http.post("/tokenize", json={"model": core_server.model, "messages": messages})
    client = OpenAI(base_url=f"{core_server.url}/v1", api_key="k", max_retries=0)
    reply = client.chat.completions.create(model=core_server.model, messages=messages,
                                           max_tokens=1, extra_body={"retrieval": "never"})
    assert chat.json()["count"] == reply.usage.prompt_tokens
    assert TEXT in http.post("/detokenize", json={"tokens": chat.json()["tokens"]}).json()[
        "prompt"]


@pytest.mark.real_model
def test_served_id_says_what_the_checkpoint_is(core_server: Server) -> None:
    """The default core is served as what it is; its old id ('default') is a 404 naming the
    served one, in the envelope, as vLLM answers an unknown model."""
    client = OpenAI(base_url=f"{core_server.url}/v1", api_key="k", max_retries=0)
    assert [m.id for m in client.models.list()] == ["smollm2-135m-instruct-core"]
    assert core_server.model == "smollm2-135m-instruct-core"
    with pytest.raises(openai.NotFoundError) as missing:
        client.completions.create(model="default", prompt="Hi", max_tokens=1)
    error = missing.value.response.json()["error"]
    assert error["code"] == "model_not_found" and "smollm2-135m-instruct-core" in error["message"]


def test_checkpoint_id_from_report_else_directory(tmp_path: Path) -> None:
    core = tmp_path / "default"
    core.mkdir()
    (core / "core_report.json").write_text(json.dumps({"base": "artifacts/base/SmolLM2-1.7B"}))
    assert checkpoint_id(core) == "smollm2-1.7b-core"
    plain = tmp_path / "my-model"
    plain.mkdir()
    assert checkpoint_id(plain) == "my-model"
    (plain / "core_report.json").write_text("[not a report")
    assert checkpoint_id(plain) == "my-model"
    assert Settings(model_dir=core, served_model_name="mine").model_name == "mine"
    assert Settings(model_dir=core).model_name == "smollm2-1.7b-core"


def test_tokenize_errors_are_in_the_envelope(tiny_llama_dir: Path) -> None:
    client = ready_client(tiny_settings(tiny_llama_dir))
    try:
        assert_error(client.post("/tokenize", json={"model": "other", "prompt": "a"}),
                     404, "model_not_found", "model")
        assert_error(client.post("/detokenize", json={"tokens": [10 ** 9]}), 400,
                     "invalid_request", "tokens")
        assert_error(client.post("/detokenize", json={"tokens": ["a"]}), 400, "invalid_request")
        assert_error(client.post("/tokenize", json={
            "messages": [{"role": "user", "content": "a"}], "add_generation_prompt": True,
            "continue_final_message": True}), 400, "invalid_request")
        ids = client.post("/tokenize", json={"prompt": "a b c"}).json()["tokens"]
        assert client.post("/detokenize", json={"tokens": ids}).json()["prompt"].endswith(
            "a b c")
    finally:
        client.__exit__(None, None, None)


PREFLIGHT = {"Origin": "http://app.example", "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type"}


def test_cors_is_off_by_default(tiny_llama_dir: Path) -> None:
    client = ready_client(tiny_settings(tiny_llama_dir))
    try:
        response = client.options("/v1/chat/completions", headers=PREFLIGHT)
        assert "access-control-allow-origin" not in response.headers
        assert response.status_code == 405
        simple = client.get("/v1/models", headers={"Origin": "http://app.example"})
        assert "access-control-allow-origin" not in simple.headers
    finally:
        client.__exit__(None, None, None)


def test_cors_allows_the_configured_origins(tiny_llama_dir: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COGCORE_CORS_ORIGINS", "http://app.example, http://other.example")
    client = ready_client(tiny_settings(tiny_llama_dir, api_keys=["k"]))
    try:
        response = client.options("/v1/chat/completions", headers=PREFLIGHT)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "http://app.example"
        assert "POST" in response.headers["access-control-allow-methods"]
        assert "authorization" in response.headers["access-control-allow-headers"].lower()
        refused = client.get("/v1/models", headers={"Origin": "http://app.example"})
        assert refused.status_code == 401  # no key: the refusal still carries the CORS header
        assert refused.headers["access-control-allow-origin"] == "http://app.example"
        stranger = client.options("/v1/chat/completions",
                                  headers={**PREFLIGHT, "Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in stranger.headers
    finally:
        client.__exit__(None, None, None)


def test_keep_alive_comments_come_before_a_late_first_token(tiny_llama_dir: Path) -> None:
    """A stream whose first token is 1 s away gets `: keep-alive` comment lines every 0.1 s
    first, then the tokens; the openai client reads through them."""
    with slow_upstream(first_token_s=1.0) as url:
        client = front(tiny_llama_dir, url, sse_keepalive_s=0.1)
        try:
            body = {"model": "front", "messages": [{"role": "user", "content": "a"}],
                    "max_tokens": 4, "stream": True}
            with client.stream("POST", "/v1/chat/completions", json=body) as response:
                lines = [line for line in response.iter_lines() if line]
            first_token = next(i for i, line in enumerate(lines) if '"content":" one"' in line)
            alive = [i for i, line in enumerate(lines) if line == ": keep-alive"]
            assert len(alive) >= 3 and max(alive) < first_token
            assert lines[0].startswith("data: {") and lines[-1] == "data: [DONE]"
            sdk = OpenAI(base_url="http://front/v1", api_key="none", http_client=client)
            chunks = sdk.chat.completions.create(model="front", stream=True, max_tokens=4,
                                                 messages=body["messages"])
            assert "".join(c.choices[0].delta.content or "" for c in chunks
                           if c.choices) == " one two three"
        finally:
            client.__exit__(None, None, None)
