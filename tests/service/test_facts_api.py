"""Facts from the store over HTTP: documents API, auth, grounded answers, abstention.

The language model is the tiny random Llama (its words are noise; the grounding around it is
what is checked); the embedder and the knowledge base on disk are the real ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cogcore.facts import load_entities
from retrieval.documents import Document
from retrieval.embedder import Embedder
from retrieval.knowledge_base import KnowledgeBase
from service.routing import router
from service.routing.router import ROUTER_FILE
from service.settings import Settings
from tests.service.test_api import assert_error, ready_client

READ, ADMIN = "read-key", "admin-key"
ENTITIES = ("country:france", "country:peru", "country:japan", "element:iron",
            "us_state:ohio")


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real knowledge base on disk: five entity documents."""
    path = tmp_path_factory.mktemp("kb")
    docs = [Document(e.id, e.document(), {"kind": e.kind, "entity": e.name})
            for e in load_entities() if e.id in ENTITIES]
    with KnowledgeBase.open(path, embedder=Embedder()) as kb:
        kb.upsert(docs)
    return path


@pytest.fixture(scope="module")
def client(tiny_llama_dir: Path, kb_dir: Path) -> Iterator[TestClient]:
    """The app on the tiny Llama with the real embedder and the small knowledge base."""
    settings = Settings(model_dir=tiny_llama_dir, served_model_name="tiny", kb_dir=kb_dir,
                        api_keys=[READ], admin_keys=[ADMIN], max_document_bytes=2000)
    c = ready_client(settings)
    yield c
    c.__exit__(None, None, None)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat(client: TestClient, question: str, **extra: object) -> dict:
    body = {"model": "tiny", "messages": [{"role": "user", "content": question}],
            "max_tokens": 4, "temperature": 0, **extra}
    response = client.post("/v1/chat/completions", json=body, headers=auth(READ))
    assert response.status_code == 200, response.text
    return response.json()


def test_writes_need_an_admin_key(client: TestClient) -> None:
    doc = {"documents": [{"id": "note:1", "text": "Zorbania's capital is Quellport."}]}
    assert_error(client.post("/v1/documents", json=doc), 401, "invalid_api_key")
    assert_error(client.post("/v1/documents", json=doc, headers=auth(READ)), 403,
                 "permission_denied")
    assert_error(client.delete("/v1/documents/country:peru", headers=auth(READ)), 403,
                 "permission_denied")
    assert client.get("/v1/documents/note:1", headers=auth(READ)).status_code == 404
    assert client.get("/v1/documents/country:peru", headers=auth(READ)).status_code == 200


def test_upsert_get_search_delete(client: TestClient) -> None:
    doc = {"id": "fiction:zorbania", "text": "The capital of Zorbania is Quellport.",
           "metadata": {"kind": "fiction"}}
    response = client.post("/v1/documents", json={"documents": [doc]}, headers=auth(ADMIN))
    assert response.status_code == 200, response.text
    assert response.json()["data"] == [{"id": "fiction:zorbania", "chunks": 1}]
    got = client.get("/v1/documents/fiction:zorbania", headers=auth(READ)).json()
    assert got["text"] == doc["text"] and got["metadata"] == {"kind": "fiction"}
    search = {"query": "capital of Zorbania", "k": 2, "filter": {"kind": ["fiction"]}}
    hits = client.post("/v1/search", json=search, headers=auth(READ)).json()["data"]
    assert [h["document_id"] for h in hits] == ["fiction:zorbania"]
    deleted = client.delete("/v1/documents/fiction:zorbania", headers=auth(ADMIN))
    assert deleted.json() == {"object": "document.deleted", "id": "fiction:zorbania",
                              "deleted": True, "chunks": 1}
    assert_error(client.delete("/v1/documents/fiction:zorbania", headers=auth(ADMIN)), 404,
                 "document_not_found")


def test_documents_are_paged_in_id_order(client: TestClient) -> None:
    page = client.get("/v1/documents?offset=1&limit=2", headers=auth(READ)).json()
    assert page["total"] == len(ENTITIES) and page["offset"] == 1 and page["limit"] == 2
    assert [d["id"] for d in page["data"]] == sorted(ENTITIES)[1:3]


@pytest.mark.parametrize(
    ("documents", "status", "code"),
    [
        ([{"id": "x", "text": "   "}], 400, "invalid_document"),
        ([{"id": "", "text": "text"}], 400, "invalid_document"),
        ([{"id": "x", "text": "y" * 3000}], 413, "document_too_large"),
        ([{"id": "x", "text": "ok", "metadata": ["not", "an", "object"]}], 400,
         "invalid_request"),
        ([], 400, "invalid_request"),
    ],
)
def test_bad_documents_are_refused_and_change_nothing(
    client: TestClient, documents: list, status: int, code: str
) -> None:
    before = client.get("/v1/documents", headers=auth(READ)).json()["total"]
    response = client.post("/v1/documents", json={"documents": documents},
                           headers=auth(ADMIN))
    assert_error(response, status, code)
    assert client.get("/v1/documents", headers=auth(READ)).json()["total"] == before


def test_search_errors_are_4xx(client: TestClient) -> None:
    bad_key = {"query": "capital", "filter": {"nobody_has_this": "x"}}
    assert client.post("/v1/search", json=bad_key, headers=auth(READ)).status_code == 400
    assert_error(client.post("/v1/search", json={"query": " "}, headers=auth(READ)), 400,
                 "invalid_document")


def test_factual_question_is_answered_from_the_store_with_sources(client: TestClient) -> None:
    body = chat(client, "What is the capital of Peru?")
    info = body["cogcore"]
    assert info["route"] == "facts" and not info["abstained"]
    assert info["sources"][0]["id"] == "country:peru"
    assert "Lima" in info["sources"][0]["text"]
    assert body["choices"][0]["message"]["content"].startswith("According to the context,")


def test_a_grounded_reply_copies_its_evidence_sentence(client: TestClient) -> None:
    """Even the tiny random Llama's reply is a piece of the evidence sentence, read from a word
    of its choice on: it cannot wander."""
    body = chat(client, "Which city serves as the seat of government of Peru?", max_tokens=24)
    reply = body["choices"][0]["message"]["content"]
    evidence = body["cogcore"]["sources"][0]["text"]
    copied = reply.removeprefix("According to the context,")
    assert copied.strip() and copied.startswith(" ") and copied.strip() in evidence.replace(
        "The ", "the ")


def test_the_reader_prompt_keeps_the_system_prompt_and_the_history(client: TestClient) -> None:
    question = {"role": "user", "content": "What is the capital of Peru?"}
    alone = chat(client, "", messages=[question])["usage"]["prompt_tokens"]
    system = {"role": "system", "content": "You are a terse assistant for travellers."}
    history = [{"role": "user", "content": "What is the capital of Japan?"},
               {"role": "assistant", "content": "According to the context, Tokyo."}]
    told = chat(client, "", messages=[system, question])
    assert told["cogcore"]["query"] == "What is the capital of Peru?"
    assert told["usage"]["prompt_tokens"] > alone
    chatted = chat(client, "", messages=[system, *history, question])
    assert chatted["cogcore"]["query"] == "What is the capital of Peru?"
    assert [s["id"] for s in chatted["cogcore"]["sources"]] == ["country:peru"]
    assert chatted["usage"]["prompt_tokens"] > told["usage"]["prompt_tokens"]


def test_reasoning_question_goes_to_the_core_alone(client: TestClient) -> None:
    body = chat(client, "What is 17 plus 25?")
    assert body["cogcore"] == {"route": "reasoning", "sources": [], "abstained": False,
                               "query": None}
    forced = chat(client, "What is the capital of Peru?", retrieval="never")
    assert forced["cogcore"]["route"] == "reasoning" and not forced["cogcore"]["sources"]


def test_a_follow_up_is_searched_as_a_standalone_question(client: TestClient) -> None:
    first = chat(client, "What is the capital of Peru?")
    reply = first["choices"][0]["message"]["content"]
    history = [{"role": "user", "content": "What is the capital of Peru?"},
               {"role": "assistant", "content": reply}]
    follow = chat(client, "Which currency code does it use?", messages=[
        *history, {"role": "user", "content": "Which currency code does it use?"}])
    info = follow["cogcore"]
    assert info["query"] == "What is the currency code of Peru?"
    assert info["route"] == "facts" and [s["id"] for s in info["sources"]] == ["country:peru"]
    assert "PEN" in info["sources"][0]["text"]
    elliptical = chat(client, "And Japan?", messages=[
        *history, {"role": "user", "content": "And Japan?"}])["cogcore"]
    assert elliptical["query"] == "What is the capital of Japan?"
    assert [s["id"] for s in elliptical["sources"]] == ["country:japan"]


def test_follow_ups_that_ask_no_fact_are_not_rewritten(client: TestClient) -> None:
    poem = [{"role": "user", "content": "Write a short poem about Peru."},
            {"role": "assistant", "content": "Peru, land of the Andes."}]
    info = chat(client, "Make it rhyme.", messages=[
        *poem, {"role": "user", "content": "Make it rhyme."}])["cogcore"]
    assert info["route"] == "reasoning" and not info["sources"]


def test_unknown_entity_abstains_without_running_the_model(client: TestClient) -> None:
    body = chat(client, "What is the capital of Quorvania?")
    assert body["cogcore"] == {"route": "facts", "sources": [], "abstained": True,
                               "query": "What is the capital of Quorvania?"}
    assert body["choices"][0]["message"]["content"] == "The knowledge base has no answer to this."
    assert body["usage"]["completion_tokens"] == 0


def test_stream_carries_sources_in_its_first_chunk(client: TestClient) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Capital of Japan?"}],
            "max_tokens": 4, "temperature": 0, "stream": True, "retrieval": "always"}
    with client.stream("POST", "/v1/chat/completions", json=body, headers=auth(READ)) as r:
        events = [json.loads(line.removeprefix("data: ")) for line in r.iter_lines()
                  if line.startswith("data: {")]
    assert events[0]["cogcore"]["route"] == "facts"
    assert events[0]["cogcore"]["sources"][0]["id"] == "country:japan"
    assert all(e.get("cogcore") is None for e in events[1:])
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    whole = chat(client, "Capital of Japan?", retrieval="always")
    assert text == whole["choices"][0]["message"]["content"]


def test_metrics_count_routes_and_abstentions(client: TestClient) -> None:
    chat(client, "What is the capital of Quorvania?")
    metrics = client.get("/metrics").text
    assert 'cogcore:route_requests_total{model_name="tiny",route="facts"}' in metrics
    assert "cogcore:abstentions_total" in metrics
    assert "cogcore:retrieval_latency_seconds_count" in metrics


def test_a_second_replica_serves_the_store_read_only(client: TestClient, tiny_llama_dir: Path,
                                                      kb_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # The first replica fitted the router and saved it beside the store: this one only loads it.
    assert (kb_dir / ROUTER_FILE).is_file()
    monkeypatch.setattr(router, "fit_router", lambda *a, **k: pytest.fail("router refitted"))
    settings = Settings(model_dir=tiny_llama_dir, served_model_name="tiny", kb_dir=kb_dir,
                        api_keys=[READ], admin_keys=[ADMIN])
    second = ready_client(settings)  # the module's client holds the writer lock
    try:
        doc = {"documents": [{"id": "note:2", "text": "Written through the second replica."}]}
        assert_error(second.post("/v1/documents", json=doc, headers=auth(ADMIN)), 409,
                     "knowledge_base_read_only")
        assert chat(second, "What is the capital of Peru?")["cogcore"]["sources"]
    finally:
        second.__exit__(None, None, None)
