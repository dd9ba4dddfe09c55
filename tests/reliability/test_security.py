"""Security: keys on every /v1 route, read keys cannot write, keys stay out of logs, document
ids never become paths, size limits hold (declared and chunked bodies)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from loadtest import server as srv
from tests.reliability.conftest import ADMIN, MAX_BODY, MAX_DOCUMENT, READ, bearer
from tests.reliability.report import record

ROUTES = [("GET", "/v1/models", None), ("POST", "/v1/chat/completions", {}),
          ("POST", "/v1/completions", {}), ("POST", "/v1/embeddings", {}),
          ("GET", "/v1/documents", None), ("GET", "/v1/documents/anything", None),
          ("POST", "/v1/search", {"query": "x"}),
          ("POST", "/v1/documents", {"documents": [{"id": "intruder", "text": "pwned"}]}),
          ("DELETE", "/v1/documents/victim", None)]
WRITES = [r for r in ROUTES if r[1] == "/v1/documents" and r[0] == "POST"
          or r[0] == "DELETE"]
BAD_AUTH = {"none": {}, "wrong": bearer("not-a-key"), "empty": {"Authorization": "Bearer "},
            "basic": {"Authorization": f"Basic {ADMIN}"}, "prefix": bearer(ADMIN[:-1]),
            "suffix": bearer(ADMIN + "x"), "case": bearer(ADMIN.upper()),
            "raw": {"Authorization": ADMIN}}
ESCAPING_IDS = ["../../etc/passwd", "/etc/passwd", "..\\..\\windows\\win.ini",
                "a/../../../b", "%2e%2e%2f%2e%2e%2fetc", "~root/.ssh/id_rsa",
                "kb.sqlite", "../kb/index.faiss", "con", "x" * 500]


def snapshot(kb_client: TestClient) -> dict[str, str]:
    """Every stored document id and text (the state a refused write must not change)."""
    page = kb_client.get("/v1/documents?limit=1000", headers=bearer(READ)).json()
    return {d["id"]: d["text"] for d in page["data"]}


@pytest.fixture(scope="module")
def seeded(kb_client: TestClient) -> TestClient:
    """The scratch store with the document a DELETE would target."""
    doc = {"documents": [{"id": "victim", "text": "The victim document stays."}]}
    assert kb_client.post("/v1/documents", json=doc, headers=bearer(ADMIN)).status_code == 200
    return kb_client


@pytest.mark.parametrize("auth", list(BAD_AUTH))
def test_bad_keys_are_401_everywhere_and_change_nothing(seeded: TestClient, auth: str) -> None:
    """No key, a wrong, empty, truncated, extended, re-cased or unprefixed key: 401."""
    before = snapshot(seeded)
    for method, path, body in ROUTES:
        response = seeded.request(method, path, json=body, headers=BAD_AUTH[auth])
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert ADMIN not in response.text and READ not in response.text
    assert snapshot(seeded) == before


def test_read_key_cannot_write(seeded: TestClient) -> None:
    """A read key on a write route: 403, and the store is unchanged."""
    before = snapshot(seeded)
    for method, path, body in WRITES:
        response = seeded.request(method, path, json=body, headers=bearer(READ))
        assert response.status_code == 403 and response.json()["error"]["code"] == (
            "permission_denied")
    assert snapshot(seeded) == before and "victim" in before


def test_open_routes_stay_open(seeded: TestClient) -> None:
    """/health, /ready and /metrics need no key (and reveal none)."""
    for path in ("/health", "/ready", "/metrics"):
        response = seeded.get(path)
        assert response.status_code == 200 and ADMIN not in response.text


@pytest.fixture(scope="module")
def real_server(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[srv.Server]:
    """A real `cogcore serve` (real URL handling, real logs at DEBUG) on a scratch store."""
    tmp = tmp_path_factory.mktemp("security")
    server = srv.start(tiny_llama_dir, tmp / "server.log", kb_dir=tmp / "data" / "kb", env={
        "COGCORE_API_KEYS": READ, "COGCORE_ADMIN_KEYS": ADMIN, "COGCORE_LOG_LEVEL": "DEBUG",
        "COGCORE_SERVED_MODEL_NAME": "tiny"})
    yield server
    srv.stop(server)


def test_ids_are_data_not_paths(real_server: srv.Server, tmp_path_factory: pytest.TempPathFactory
                                ) -> None:
    """Path-like ids are stored and returned verbatim; no file appears for them anywhere."""
    data = real_server.log_path.parent / "data"
    files_before = {p.relative_to(data) for p in data.rglob("*")}
    docs = [{"id": doc_id, "text": f"Escape attempt number {n}."}
            for n, doc_id in enumerate(ESCAPING_IDS)]
    with httpx.Client(base_url=real_server.url, timeout=60) as http:
        response = http.post("/v1/documents", json={"documents": docs}, headers=bearer(ADMIN))
        assert response.status_code == 200, response.text
        for n, doc_id in enumerate(ESCAPING_IDS):
            # Clients percent-encode an id (a bare ".." is folded away by URL normalisation).
            got = http.get(f"/v1/documents/{quote(doc_id, safe='')}", headers=bearer(READ))
            assert got.status_code == 200 and got.json()["id"] == doc_id, (doc_id, got.text)
            assert got.json()["text"] == f"Escape attempt number {n}."  # not /etc/passwd
        files_after = {p.relative_to(data) for p in data.rglob("*")}
        for doc_id in ESCAPING_IDS:
            deleted = http.delete(f"/v1/documents/{quote(doc_id, safe='')}",
                                  headers=bearer(ADMIN))
            assert deleted.status_code == 200, (doc_id, deleted.text)
    created = sorted(str(p) for p in files_after - files_before)
    assert not any(name in path for path in created for name in ("passwd", "win.ini", "id_rsa",
                                                                   "con", "xxxx"))
    assert Path("/etc/passwd").exists()
    record("path_escape", {"ids_tried": len(ESCAPING_IDS), "files_created_by_the_writes": created})


def test_size_limits_hold(seeded: TestClient) -> None:
    """Body over the limit: 413 declared or chunked; document over its limit: 413."""
    big = b'{"query": "' + b"x" * MAX_BODY + b'"}'
    declared = seeded.post("/v1/search", content=big, headers=bearer(READ))
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 4096):
            yield big[start:start + 4096]

    chunked = seeded.post("/v1/search", content=chunks(), headers=bearer(READ))
    assert chunked.status_code == 413
    doc = {"documents": [{"id": "huge", "text": "y" * (MAX_DOCUMENT + 1)}]}
    too_big = seeded.post("/v1/documents", json=doc, headers=bearer(ADMIN))
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == (
        "document_too_large")
    assert seeded.get("/v1/documents/huge", headers=bearer(READ)).status_code == 404


def test_keys_never_appear_in_logs(real_server: srv.Server) -> None:
    """Right, wrong and admin keys, sent on every route: none of them in the server's logs."""
    wrong = "sk-wrong-" + os.urandom(8).hex()
    with httpx.Client(base_url=real_server.url, timeout=60) as http:
        for key in (READ, ADMIN, wrong):
            for method, path, body in ROUTES:
                http.request(method, path, json=body, headers={
                    **bearer(key), "x-request-id": f"rid-{key[:4]}"})
            http.post("/v1/completions", headers=bearer(key), content=b"{bad json")
            http.get("/metrics", headers=bearer(key))
    srv.stop(real_server)  # flush everything, shutdown lines included
    log = real_server.log()
    assert '"path": "/v1/documents"' in log  # the requests were logged...
    for key in (READ, ADMIN, wrong):
        assert key not in log  # ...but never a key
    record("keys_in_logs", {"log_lines": len(log.splitlines()), "keys_found": 0})
