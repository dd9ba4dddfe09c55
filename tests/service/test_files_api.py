"""Files over HTTP: upload (Markdown, HTML, PDF), their sections, citations, bad uploads.

The language model is the tiny random Llama (its words are noise); the embedder and the
knowledge base on disk are real, so retrieval and the citations' locations are the product's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from cogcore.facts import load_entities
from retrieval.documents import Document
from retrieval.embedder import Embedder
from retrieval.knowledge_base import KnowledgeBase
from service.settings import Settings
from tests.retrieval.test_formats import HTML, MARKDOWN, make_pdf
from tests.service.test_api import assert_error, ready_client

READ, ADMIN = "read-key", "admin-key"
QUESTION = "When does the reading room of the Vellmar Archive open on Saturdays?"


@pytest.fixture(scope="module")
def client(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[TestClient]:
    """The app on the tiny Llama, the real embedder and a two-document knowledge base."""
    path = tmp_path_factory.mktemp("kb")
    docs = [Document(e.id, e.document(), {"kind": e.kind}) for e in load_entities()
            if e.id in ("country:france", "element:iron")]
    with KnowledgeBase.open(path, embedder=Embedder()) as kb:
        kb.upsert(docs)
    settings = Settings(model_dir=tiny_llama_dir, served_model_name="tiny", kb_dir=path,
                        api_keys=[READ], admin_keys=[ADMIN], max_document_bytes=5000,
                        max_body_bytes=60_000)
    c = ready_client(settings)
    yield c
    c.__exit__(None, None, None)


def auth(key: str = ADMIN) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def upload(client: TestClient, name: str, data: bytes | str, media: str = "",
           key: str = ADMIN, **fields: str):
    return client.post("/v1/files", files={"file": (name, data, media or None)},
                       data=fields, headers=auth(key))


def test_markdown_upload_is_stored_by_section_with_its_location(client: TestClient) -> None:
    response = upload(client, "archive.md", MARKDOWN, id="archive",
                      metadata=json.dumps({"team": "records"}))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "archive" and body["object"] == "file"
    assert body["filename"] == "archive.md" and body["format"] == "markdown"
    # One section per sentence, list item or table row (retrieval.formats.SECTION_CHARS).
    assert body["sections"] == 8 and body["chunks"] == 8 and body["bytes"] == len(MARKDOWN)
    assert client.get("/v1/files/archive", headers=auth(READ)).json()["sections"] == 8
    fees = client.get("/v1/documents/" + quote("archive#6", safe=""), headers=auth(READ))
    meta = fees.json()["metadata"]
    assert meta["heading_path"] == ["Vellmar Archive", "Opening hours", "Fees"]
    assert MARKDOWN[meta["char_start"]:meta["char_end"]] == "A day pass costs 7 marks."
    assert meta["team"] == "records" and meta["file_id"] == "archive"
    found = client.post("/v1/search", json={"query": "day pass price", "k": 1,
                                            "filter": {"file_id": "archive"}},
                        headers=auth(READ)).json()["data"]
    assert found[0]["document_id"] == "archive#6"
    assert [f["id"] for f in client.get("/v1/files", headers=auth(READ)).json()["data"]] \
        == ["archive"]


def test_html_and_pdf_uploads_by_media_type_and_extension(client: TestClient) -> None:
    html = upload(client, "guide", HTML, "text/html")
    assert html.status_code == 200, html.text
    assert html.json()["format"] == "html" and html.json()["id"].startswith("file-")
    pdf_bytes = make_pdf([["The ferry leaves at 7:40."], ["The store holds 320 pallets."]])
    pdf = upload(client, "harbour.pdf", pdf_bytes)
    assert pdf.status_code == 200, pdf.text
    file_id = pdf.json()["id"]
    page = client.get("/v1/documents/" + quote(f"{file_id}#1", safe=""), headers=auth(READ))
    assert page.json()["metadata"]["page"] == 2
    assert page.json()["metadata"]["location"] == "page 2"
    again = upload(client, "harbour.pdf", pdf_bytes)  # a second build may differ in its date
    assert again.json()["id"] == file_id  # the same bytes: the same file, not a copy
    for done in (html, pdf):
        gone = client.delete(f"/v1/files/{done.json()['id']}", headers=auth())
        assert gone.status_code == 200 and gone.json()["deleted"]
    assert_error(client.get(f"/v1/files/{file_id}", headers=auth(READ)), 404,
                 "document_not_found")


def test_a_grounded_reply_cites_the_section_and_its_place(client: TestClient) -> None:
    assert upload(client, "archive.md", MARKDOWN, id="archive").status_code == 200
    body = {"model": "tiny", "messages": [{"role": "user", "content": QUESTION}],
            "max_tokens": 4, "temperature": 0, "retrieval": "always"}
    data = client.post("/v1/chat/completions", json=body, headers=auth(READ)).json()
    message = data["choices"][0]["message"]
    sources = data["cogcore"]["sources"]
    assert sources and sources[0]["id"] == "archive#2"
    assert len(message["annotations"]) == len(sources)
    cite = message["annotations"][0]
    assert cite["type"] == "url_citation"
    assert cite["url_citation"] == {
        "start_index": 0, "end_index": len(message["content"]),
        "title": "archive.md, Vellmar Archive > Opening hours",
        "url": "/v1/documents/archive%232", "document_id": "archive#2",
        "chunk_id": sources[0]["chunk_id"], "file_id": "archive",
        "location": {"heading_path": ["Vellmar Archive", "Opening hours"],
                     "char_start": MARKDOWN.index("- The reading"),
                     "char_end": MARKDOWN.index(" Saturdays.") + 11}}
    assert client.get(cite["url_citation"]["url"], headers=auth(READ)).status_code == 200
    streamed = client.post("/v1/chat/completions", json={**body, "stream": True},
                           headers=auth(READ))
    events = [json.loads(line[6:]) for line in streamed.text.splitlines()
              if line.startswith("data: {")]
    with_cites = [e for e in events if "annotations" in e["choices"][0]["delta"]]
    assert len(with_cites) == 1 and with_cites[0]["choices"][0]["finish_reason"]
    assert with_cites[0]["choices"][0]["delta"]["annotations"] == message["annotations"]


def test_an_abstention_or_reasoning_reply_has_no_citations(client: TestClient) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Add 2 and 3."}],
            "max_tokens": 2, "temperature": 0, "retrieval": "never"}
    data = client.post("/v1/chat/completions", json=body, headers=auth(READ)).json()
    assert data["choices"][0]["message"]["annotations"] == []


def test_a_document_that_only_names_a_file_is_not_a_file(client: TestClient) -> None:
    metas = {"x": {"file_id": "x"},
             "y": {"file_id": "y", "purpose": "assistants", "format": "markdown",
                   "sections": "many"}}
    docs = [{"id": f"{k}#0", "text": "A note.", "metadata": m} for k, m in metas.items()]
    response = client.post("/v1/documents", json={"documents": docs}, headers=auth())
    assert response.status_code == 200, response.text
    try:
        for name in metas:
            assert_error(client.get(f"/v1/files/{name}", headers=auth(READ)), 404,
                         "document_not_found")
            assert_error(client.delete(f"/v1/files/{name}", headers=auth()), 404,
                         "document_not_found")
        listed = client.get("/v1/files", headers=auth(READ))
        assert listed.status_code == 200, listed.text
        assert not {f["id"] for f in listed.json()["data"]} & set(metas)
    finally:
        for name in metas:
            client.delete("/v1/documents/" + quote(f"{name}#0", safe=""), headers=auth())


@pytest.mark.parametrize(("name", "data", "fields", "status", "code", "match"), [
    ("bad.pdf", b"%PDF-1.4 torn", {}, 400, "invalid_document", "cannot be read"),
    ("a.docx", b"PK\x03\x04", {}, 400, "invalid_document", "cannot tell the format"),
    ("a.md", b"x", {"format": "rtf"}, 400, "invalid_document", "not supported"),
    ("empty.md", b"\n \n", {}, 400, "invalid_document", "empty"),
    ("scan.pdf", make_pdf([[]]), {}, 400, "invalid_document", "holds no text"),
    ("big.txt", b"word " * 2000, {}, 413, "document_too_large", "over the limit"),
    ("huge.txt", b"w" * 70_000, {}, 413, "payload_too_large", "over"),
    ("a.md", b"# T\n\nBody.", {"purpose": "fine-tune"}, 400, "unsupported_parameter",
     "purpose"),
    ("a.md", b"# T\n\nBody.", {"metadata": "[1]"}, 400, "invalid_document", "JSON object"),
    ("a.md", b"# T\n\nBody.", {"metadata": '{"page": 1}'}, 400, "invalid_document",
     "set from the file"),
])
def test_bad_uploads_are_4xx_and_change_nothing(client: TestClient, name: str, data: bytes,
                                                fields: dict[str, str], status: int,
                                                code: str, match: str) -> None:
    before = client.get("/v1/documents", headers=auth(READ)).json()["total"]
    response = upload(client, name, data, id="keep", **fields)
    assert_error(response, status, code)
    assert match in response.json()["error"]["message"]
    assert client.get("/v1/documents", headers=auth(READ)).json()["total"] == before


def test_uploads_need_an_admin_key_and_a_file(client: TestClient) -> None:
    assert_error(upload(client, "a.md", b"Body.", key=READ), 403, "permission_denied")
    assert_error(client.post("/v1/files", data={"purpose": "assistants"}, headers=auth()),
                 400, "invalid_request", "file")


def test_a_shorter_version_replaces_the_file_and_a_failed_one_keeps_it(
        client: TestClient) -> None:
    assert upload(client, "archive.md", MARKDOWN, id="archive").json()["sections"] == 8
    assert_error(upload(client, "archive.pdf", b"%PDF-1.4 torn", id="archive"), 400,
                 "invalid_document")
    assert client.get("/v1/files/archive", headers=auth(READ)).json()["sections"] == 8
    assert upload(client, "archive.md", "# New\n\nOnly this.", id="archive").status_code == 200
    assert client.get("/v1/files/archive", headers=auth(READ)).json()["sections"] == 1
    assert client.get("/v1/documents/" + quote("archive#3", safe=""),
                      headers=auth(READ)).status_code == 404
    assert client.delete("/v1/files/archive", headers=auth()).json()["chunks"] == 1
    assert_error(client.delete("/v1/files/archive", headers=auth()), 404, "document_not_found")
