"""A corpus of hostile and malformed requests: each gets its documented 4xx in the envelope.

In process, on the tiny Llama with the real embedder and a scratch knowledge base, keys set.
Every case is sent as raw bytes so that invalid JSON, lone surrogates and NaN reach the server
exactly as written.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from fastapi.testclient import TestClient

from tests.reliability.conftest import ADMIN, MAX_BODY, MAX_DOCUMENT, READ, bearer
from tests.reliability.report import record

CHAT, COMPLETIONS, EMBED = "/v1/chat/completions", "/v1/completions", "/v1/embeddings"
DOCS, SEARCH = "/v1/documents", "/v1/search"
USER = [{"role": "user", "content": "hello"}]
SEEN: Counter[str] = Counter()


def chat(**fields: object) -> bytes:
    """A chat body: the tiny model, one user message, `fields` on top."""
    return json.dumps({"model": "tiny", "messages": USER, "max_tokens": 2, **fields}).encode()


def completion(**fields: object) -> bytes:
    """A text completion body with `fields` on top."""
    return json.dumps({"model": "tiny", "prompt": "a b", "max_tokens": 2, **fields}).encode()


def docs(*documents: object) -> bytes:
    """An upsert body."""
    return json.dumps({"documents": list(documents)}).encode()


# (id, method, path, raw body, status, code); every request carries the admin key.
CORPUS: list[tuple[str, str, str, bytes | None, int, str | None]] = [
    # Not JSON, or not an object.
    ("invalid-json", "POST", CHAT, b'{"model": "tiny",', 400, "invalid_request"),
    ("empty-body", "POST", CHAT, b"", 400, "invalid_request"),
    ("json-array", "POST", CHAT, b"[]", 400, "invalid_request"),
    ("json-null", "POST", COMPLETIONS, b"null", 400, "invalid_request"),
    ("invalid-utf8", "POST", COMPLETIONS, b'{"model":"tiny","prompt":"\xff\xfe"}', 400,
     "invalid_request"),
    ("nested-too-deep", "POST", SEARCH, b'{"query":"x","filter":{"a":' + b"[" * 5000
     + b"]" * 5000 + b"}}", 400, "invalid_request"),
    # Wrong types and missing fields.
    ("missing-model", "POST", CHAT, json.dumps({"messages": USER}).encode(), 400,
     "invalid_request"),
    ("missing-messages", "POST", CHAT, json.dumps({"model": "tiny"}).encode(), 400,
     "invalid_request"),
    ("messages-not-list", "POST", CHAT, chat(messages="hello"), 400, "invalid_request"),
    ("content-number", "POST", CHAT, chat(messages=[{"role": "user", "content": 5}]), 400,
     "invalid_request"),
    ("max-tokens-string", "POST", CHAT, chat(max_tokens="3"), 400, "invalid_request"),
    ("max-tokens-float", "POST", CHAT, chat(max_tokens=2.5), 400, "invalid_request"),
    ("stream-string", "POST", CHAT, chat(stream="yes"), 400, "invalid_request"),
    ("temperature-string", "POST", CHAT, chat(temperature="hot"), 400, "invalid_request"),
    ("prompt-bools", "POST", COMPLETIONS, completion(prompt=[True, False]), 400,
     "invalid_request"),
    ("prompt-mixed-list", "POST", COMPLETIONS, completion(prompt=[1, "a"]), 400,
     "invalid_request"),
    ("unknown-field", "POST", CHAT, chat(frobnicate=1), 400, "unsupported_parameter"),
    # Empty things.
    ("empty-messages", "POST", CHAT, chat(messages=[]), 400, "invalid_request"),
    ("empty-prompt", "POST", COMPLETIONS, completion(prompt=""), 400, "invalid_request"),
    ("empty-prompt-ids", "POST", COMPLETIONS, completion(prompt=[]), 400,
     "unsupported_parameter"),
    ("empty-embedding-input", "POST", EMBED, json.dumps(
        {"model": "all-MiniLM-L6-v2", "input": []}).encode(), 400, "invalid_request"),
    # Giant strings: over the context (never truncated), over the body limit.
    ("prompt-over-context", "POST", COMPLETIONS, completion(prompt="word " * 2000), 400,
     "context_length_exceeded"),
    ("body-over-limit", "POST", CHAT, chat(messages=[{"role": "user",
                                                      "content": "x" * MAX_BODY}]), 413,
     "payload_too_large"),
    # Control characters and odd Unicode: lone surrogates in JSON escapes anywhere.
    ("surrogate-chat", "POST", CHAT,
     b'{"model":"tiny","messages":[{"role":"user","content":"a\\ud800b"}]}', 400,
     "invalid_request"),
    ("surrogate-chat-stream", "POST", CHAT,
     b'{"model":"tiny","stream":true,"messages":[{"role":"user","content":"\\udfff"}]}', 400,
     "invalid_request"),
    ("surrogate-completion", "POST", COMPLETIONS, b'{"model":"tiny","prompt":"\\ud83d"}', 400,
     "invalid_request"),
    ("surrogate-stop", "POST", COMPLETIONS,
     b'{"model":"tiny","prompt":"a","stop":["\\ud800"]}', 400, "invalid_request"),
    ("surrogate-embedding", "POST", EMBED,
     b'{"model":"all-MiniLM-L6-v2","input":["ok","\\udc00"]}', 400, "invalid_request"),
    ("surrogate-search", "POST", SEARCH, b'{"query":"\\ud800"}', 400, "invalid_request"),
    ("surrogate-doc-id", "POST", DOCS, b'{"documents":[{"id":"\\ud800","text":"x"}]}', 400,
     "invalid_request"),
    ("surrogate-metadata-key", "POST", DOCS,
     b'{"documents":[{"id":"m","text":"x","metadata":{"\\ud800":1}}]}', 400,
     "invalid_request"),
    # max_tokens and seed out of range.
    ("max-tokens-zero", "POST", CHAT, chat(max_tokens=0), 400, "invalid_request"),
    ("max-tokens-negative", "POST", CHAT, chat(max_tokens=-5), 400, "invalid_request"),
    ("max-tokens-huge", "POST", CHAT, chat(max_tokens=10**30), 400, "context_length_exceeded"),
    ("max-completion-tokens-huge", "POST", CHAT, chat(max_completion_tokens=2**63), 400,
     "context_length_exceeded"),
    ("seed-over-int64", "POST", CHAT, chat(seed=2**70), 400, "invalid_request"),
    ("temperature-nan", "POST", CHAT, chat()[:-1] + b',"temperature":NaN}', 400,
     "invalid_request"),
    ("top-p-infinity", "POST", CHAT, chat()[:-1] + b',"top_p":Infinity}', 400,
     "invalid_request"),
    # Roles, n, unsupported options.
    ("unknown-role", "POST", CHAT, chat(messages=[{"role": "wizard", "content": "x"}]), 400,
     "invalid_request"),
    ("tool-role", "POST", CHAT, chat(messages=[{"role": "tool", "content": "x"}]), 400,
     "invalid_request"),
    ("n-over-max", "POST", CHAT, chat(n=99), 400, "invalid_request"),
    ("best-of-3", "POST", COMPLETIONS, completion(best_of=3), 400, "unsupported_parameter"),
    ("top-logprobs-alone", "POST", CHAT, chat(top_logprobs=3), 400, "invalid_request"),
    ("tools", "POST", CHAT, chat(tools=[{"type": "function"}]), 400, "invalid_request"),
    ("prompt-ids-out-of-vocab", "POST", COMPLETIONS, completion(prompt=[10**9]), 400,
     "invalid_request"),
    ("unknown-model", "POST", CHAT, chat(model="gpt-4"), 404, "model_not_found"),
    ("retrieval-bogus", "POST", CHAT, chat(retrieval="sometimes"), 400, "invalid_request"),
    # Malformed streaming options.
    ("stream-options-string", "POST", CHAT, chat(stream=True, stream_options="usage"), 400,
     "invalid_request"),
    ("stream-options-unknown", "POST", CHAT, chat(stream=True, stream_options={"x": 1}), 400,
     "unsupported_parameter"),
    ("stream-options-usage-string", "POST", COMPLETIONS,
     completion(stream=True, stream_options={"include_usage": "yes"}), 400, "invalid_request"),
    # Documents: oversized, blank, bad ids, bad metadata.
    ("document-over-limit", "POST", DOCS, docs({"id": "big", "text": "y " * MAX_DOCUMENT}),
     413, "document_too_large"),
    ("document-blank", "POST", DOCS, docs({"id": "blank", "text": " \n\t "}), 400,
     "invalid_document"),
    ("document-empty-id", "POST", DOCS, docs({"id": "", "text": "x"}), 400,
     "invalid_document"),
    ("document-id-too-long", "POST", DOCS, docs({"id": "i" * 10_000, "text": "x"}), 400,
     "invalid_document"),
    ("document-id-number", "POST", DOCS, docs({"id": 5, "text": "x"}), 400, "invalid_request"),
    ("document-metadata-list", "POST", DOCS, docs({"id": "m", "text": "x",
                                                   "metadata": [1, 2]}), 400,
     "invalid_request"),
    ("document-metadata-nan", "POST", DOCS,
     b'{"documents":[{"id":"m","text":"x","metadata":{"a":NaN}}]}', 400, "invalid_document"),
    ("document-metadata-overflow", "POST", DOCS,
     b'{"documents":[{"id":"m","text":"x","metadata":{"a":1e999}}]}', 400,
     "invalid_document"),
    ("documents-empty-list", "POST", DOCS, docs(), 400, "invalid_request"),
    ("documents-over-1000", "POST", DOCS, docs(*[{"id": str(i), "text": "x"}
                                                 for i in range(1001)]), 400,
     "invalid_request"),
    ("document-unknown-field", "POST", DOCS, docs({"id": "u", "text": "x", "owner": "me"}), 400,
     "unsupported_parameter"),
    # Documents API reads and search.
    ("get-unknown", "GET", "/v1/documents/no-such-doc", None, 404, "document_not_found"),
    ("delete-unknown", "DELETE", "/v1/documents/no-such-doc", None, 404, "document_not_found"),
    ("page-negative-offset", "GET", "/v1/documents?offset=-1", None, 400, "invalid_request"),
    ("page-offset-over-int64", "GET", "/v1/documents?offset=" + "9" * 30, None, 400,
     "invalid_request"),
    ("page-limit-zero", "GET", "/v1/documents?limit=0", None, 400, "invalid_request"),
    ("page-limit-word", "GET", "/v1/documents?limit=many", None, 400, "invalid_request"),
    ("search-blank", "POST", SEARCH, b'{"query":"  "}', 400, "invalid_document"),
    ("search-k-zero", "POST", SEARCH, b'{"query":"x","k":0}', 400, "invalid_request"),
    ("search-k-huge", "POST", SEARCH, b'{"query":"x","k":100000}', 400, "invalid_request"),
    ("search-mode-bogus", "POST", SEARCH, b'{"query":"x","mode":"psychic"}', 400,
     "invalid_request"),
    ("search-filter-nested", "POST", SEARCH, b'{"query":"x","filter":{"kind":{"a":1}}}', 400,
     "invalid_search"),
    ("search-filter-unknown-key", "POST", SEARCH,
     b'{"query":"x","filter":{"k\') OR 1=1 --":1}}', 400, "invalid_search"),
    # Routing.
    ("wrong-method", "PUT", DOCS, b"{}", 405, None),
    ("unknown-route", "GET", "/v1/nothing-here", None, 404, None),
]


@pytest.fixture(scope="module", autouse=True)
def _report() -> object:
    yield
    record("bad_inputs", {"cases": sum(SEEN.values()), "statuses": dict(sorted(SEEN.items()))})


@pytest.mark.parametrize(("method", "path", "raw", "status", "code"),
                         [case[1:] for case in CORPUS], ids=[case[0] for case in CORPUS])
def test_bad_input_gets_its_4xx(kb_client: TestClient, method: str, path: str,
                                raw: bytes | None, status: int, code: str | None) -> None:
    """The documented status and code, in the envelope, and the service still answers."""
    headers = {**bearer(ADMIN), "content-type": "application/json"}
    response = kb_client.request(method, path, content=raw, headers=headers)
    SEEN[str(response.status_code)] += 1
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["message"]
    assert kb_client.get("/health").status_code == 200


def test_bad_writes_change_nothing(kb_client: TestClient) -> None:
    """After every refused write of the corpus, the store holds no document from it."""
    page = kb_client.get("/v1/documents", headers=bearer(READ)).json()
    refused = {"big", "blank", "m", "u", "0"}
    assert not refused & {d["id"] for d in page["data"]}


def test_surrogate_error_names_the_field(kb_client: TestClient) -> None:
    """A lone surrogate is named by its place in the body."""
    raw = b'{"model":"tiny","messages":[{"role":"user","content":"ok"},' \
          b'{"role":"user","content":[{"type":"text","text":"\\ud800"}]}]}'
    response = kb_client.post(CHAT, content=raw, headers={**bearer(READ),
                                                          "content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages.1.content.0.text"


def test_control_characters_are_served(kb_client: TestClient) -> None:
    """NUL, escapes and astral characters are valid text: answered, never a 5xx."""
    text = "a\x00b\x1b[31m\u202e\U0001f600\ufeff"
    response = kb_client.post(COMPLETIONS, json={"model": "tiny", "prompt": text,
                                                 "max_tokens": 2}, headers=bearer(READ))
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] >= 1
