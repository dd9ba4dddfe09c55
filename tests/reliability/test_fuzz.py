"""API fuzzing with schemathesis against the service's own OpenAPI schema.

A real `cogcore serve` on the real default model, a scratch copy of the default knowledge base
and keys set; every operation gets positive (schema-valid) and negative (schema-violating)
cases, each response checked by schemathesis' checks (no 5xx, status, content type, headers and
body as documented, negative data rejected, positive data accepted, auth not ignored...) and by
ours (every error in the one envelope). Positive generation requests are pinned to the served
model and capped at a few new tokens, so the fuzzer spends its time on the API, not on decoding.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import PositiveDataAcceptanceConfig

from loadtest import server as srv
from tests.reliability.report import env_int, record

ADMIN = "fuzz-admin-key"
READ = "fuzz-read-key"
MAX_TOKENS = 4
EMBEDDER = "all-MiniLM-L6-v2"
OPERATIONS = [
    ("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"), ("GET", "/v1/models"),
    ("POST", "/v1/chat/completions"), ("POST", "/v1/completions"), ("POST", "/v1/embeddings"),
    ("POST", "/v1/documents"), ("GET", "/v1/documents"), ("GET", "/v1/documents/{doc_id}"),
    ("DELETE", "/v1/documents/{doc_id}"), ("POST", "/v1/search"), ("POST", "/v1/files"),
    ("GET", "/v1/files"), ("GET", "/v1/files/{file_id}"), ("DELETE", "/v1/files/{file_id}"),
    ("POST", "/tokenize"), ("POST", "/detokenize"), ("POST", "/v1/responses"),
]
# Schema-valid requests that the service may still refuse for a documented reason: context
# length or blank text (400), unknown model or document (404), size (413).
ACCEPTED = ["2xx", "400", "404", "413"]
# Operations with a body or query to violate; a lone path string has no negative case.
NEGATABLE = {("POST", "/v1/chat/completions"), ("POST", "/v1/completions"),
             ("POST", "/v1/embeddings"), ("POST", "/v1/documents"), ("GET", "/v1/documents"),
             ("POST", "/v1/search"), ("POST", "/v1/files"), ("POST", "/tokenize"),
             ("POST", "/detokenize"), ("POST", "/v1/responses")}
CASES_TO_RUN = [(method, path, mode) for method, path in OPERATIONS
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
                if mode == GenerationMode.POSITIVE or (method, path) in NEGATABLE]
SEEN: Counter[str] = Counter()
CASES: Counter[str] = Counter()


def examples() -> int:
    """Examples per operation and mode: 10 in CI, more under `make reliability`."""
    return env_int("COGCORE_FUZZ_EXAMPLES", 10)


@pytest.fixture(scope="module")
def fuzz_server(default_base_dir: Path, default_kb_dir: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[srv.Server]:
    """The real model and a scratch copy of the default knowledge base (writes go there)."""
    tmp = tmp_path_factory.mktemp("fuzz")
    kb = tmp / "kb"
    shutil.copytree(default_kb_dir, kb)
    server = srv.start(default_base_dir, tmp / "server.log", kb_dir=kb, env={
        "COGCORE_API_KEYS": READ, "COGCORE_ADMIN_KEYS": ADMIN,
        "COGCORE_DEFAULT_MAX_TOKENS": str(MAX_TOKENS), "COGCORE_REQUEST_TIMEOUT_S": "60"})
    yield server
    srv.stop(server)
    errors = [line for line in server.log().splitlines()
              if '"status": 5' in line and '"/ready"' not in line]
    record("fuzz", {"cases": sum(CASES.values()), "cases_by_operation": dict(CASES),
                    "statuses": dict(sorted(SEEN.items())), "examples_cap": examples(),
                    "server_5xx_after_ready": len(errors)})


@pytest.fixture(scope="module")
def api_schema(fuzz_server: srv.Server) -> schemathesis.schemas.BaseSchema:
    """The schema the server itself serves at /openapi.json, bounded for CI."""
    loaded = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    loaded.config.update(base_url=fuzz_server.url, headers={"Authorization": f"Bearer {ADMIN}"},
                         request_timeout=120)
    loaded.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=ACCEPTED)
    return loaded


def test_schema_lists_every_operation(api_schema: schemathesis.schemas.BaseSchema) -> None:
    """The fuzzed list below is the whole API: a new route must join it."""
    served = sorted((op.ok().method.upper(), op.ok().path)
                    for op in api_schema.get_all_operations())
    assert served == sorted(OPERATIONS)
    raw = api_schema.raw_schema
    assert "422" not in json.dumps(raw["paths"])  # validation is a 400 in the envelope
    assert raw["paths"]["/v1/search"]["post"]["security"] == [{"bearer": []}]


def _pin(case: schemathesis.Case, model: str) -> None:
    """Positive generation cases: the served model, and few new tokens."""
    body = case.body
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return
    body["model"] = EMBEDDER if case.path == "/v1/embeddings" else model
    for field in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        if isinstance(body.get(field), int):
            body[field] = min(body[field], MAX_TOKENS)
    if case.path in ("/v1/chat/completions", "/v1/completions"):
        body.setdefault("max_tokens", MAX_TOKENS)
    if case.path == "/v1/responses":
        body.setdefault("max_output_tokens", MAX_TOKENS)


def assert_envelope(response: schemathesis.Response) -> None:
    """Every error is the one OpenAI envelope, nothing more."""
    if response.status_code < 400:
        return
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, response.text
    assert isinstance(error["message"], str) and error["message"], response.text


@pytest.mark.real_model
@pytest.mark.parametrize(("method", "path", "mode"), CASES_TO_RUN,
                         ids=[f"{m} {p} {g.value}" for m, p, g in CASES_TO_RUN])
def test_operation_conforms(api_schema: schemathesis.schemas.BaseSchema,
                            fuzz_server: srv.Server, method: str, path: str,
                            mode: GenerationMode) -> None:
    """No 5xx, every response as documented, every error in the envelope."""
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples(), deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    def run(case: schemathesis.Case) -> None:
        if mode == GenerationMode.POSITIVE:
            _pin(case, fuzz_server.model)
        response = case.call_and_validate()
        CASES[f"{method} {path} {mode.value}"] += 1
        SEEN[str(response.status_code)] += 1
        assert response.status_code < 500, response.text
        assert_envelope(response)

    run()
