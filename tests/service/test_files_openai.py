"""Files and citations through the official openai client against a real `cogcore serve`.

The server runs the tiny random Llama with the real embedder on a small knowledge base, on
loopback: what is checked is that the client uploads a file and parses the citations, whole
and streamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI
from openai.lib.streaming.chat import ChatCompletionStreamState

from loadtest.server import Server, start, stop
from retrieval.documents import Document
from retrieval.embedder import Embedder
from retrieval.knowledge_base import KnowledgeBase
from tests.retrieval.test_formats import MARKDOWN, make_pdf
from tests.service.test_files_api import QUESTION

ADMIN = "files-admin"


@pytest.fixture(scope="module")
def server(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server on the tiny Llama and a one-document knowledge base."""
    kb = tmp_path_factory.mktemp("kb")
    with KnowledgeBase.open(kb, embedder=Embedder()) as base:
        base.upsert([Document("note", "The capital of Zorbania is Quellport.")])
    log = tmp_path_factory.mktemp("files-server") / "serve.log"
    running = start(tiny_llama_dir, log, env={"COGCORE_ADMIN_KEYS": ADMIN,
                                              "COGCORE_KB_DIR": str(kb)})
    yield running
    stop(running)


@pytest.fixture
def client(server: Server) -> OpenAI:
    """The official client pointed at the real server."""
    return OpenAI(base_url=f"{server.url}/v1", api_key=ADMIN, max_retries=0)


def test_files_upload_and_citations_parse_in_the_openai_client(client: OpenAI,
                                                               server: Server) -> None:
    uploaded = client.files.create(file=("archive.md", MARKDOWN.encode()), purpose="assistants")
    assert uploaded.object == "file" and uploaded.filename == "archive.md"
    assert client.files.retrieve(uploaded.id).id == uploaded.id
    pdf = client.files.create(file=("harbour.pdf", make_pdf([["Harbour notes."]])),
                              purpose="user_data")
    assert pdf.id in [f.id for f in client.files.list()]
    assert client.files.delete(pdf.id).deleted

    kwargs = {"model": server.model, "messages": [{"role": "user", "content": QUESTION}],
              "max_tokens": 4, "temperature": 0, "extra_body": {"retrieval": "always"}}
    message = client.chat.completions.create(**kwargs).choices[0].message
    assert message.annotations, "the grounded reply cites its sources"
    cite = message.annotations[0]
    assert cite.type == "url_citation"
    assert cite.url_citation.url == f"/v1/documents/{uploaded.id}%232"
    assert cite.url_citation.title == "archive.md, Vellmar Archive > Opening hours"
    assert cite.url_citation.end_index == len(message.content or "")
    assert cite.url_citation.document_id == f"{uploaded.id}#2"  # an extension field

    chunks = list(client.chat.completions.create(**kwargs, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == message.content
    # The client's own accumulation of a stream (what `chat.completions.stream` runs; its
    # final parse refuses a reply cut at max_tokens, which the tiny model's always is).
    state = ChatCompletionStreamState()
    for chunk in chunks:
        list(state.handle_chunk(chunk))
    final = state.current_completion_snapshot.choices[0].message
    assert final.content == message.content
    assert [a.model_dump() for a in final.annotations or []] \
        == [a.model_dump() for a in message.annotations]
