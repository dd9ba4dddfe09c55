"""POST /v1/responses through the official openai client (`client.responses.create`, sync,
async, streamed) against a real `cogcore serve` of the default core and knowledge base."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator

import pytest
from openai import AsyncOpenAI, BadRequestError, OpenAI
from openai.types.responses import Response

from cogcore.paths import default_core_dir, default_kb_dir
from loadtest.server import Server, start, stop

pytestmark = pytest.mark.real_model
QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def kb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server of the default core with a copy of the default knowledge base (another
    server may hold the original's writer lock)."""
    core, kb = default_core_dir(), default_kb_dir()
    if not (core / "config.json").is_file() or not kb.is_dir():
        pytest.skip("the default core or knowledge base is not built (make core kb)")
    tmp = tmp_path_factory.mktemp("responses-server")
    shutil.copytree(kb, tmp / "kb", ignore=shutil.ignore_patterns("writer.lock"))
    server = start(core, tmp / "serve.log", env={"COGCORE_API_KEYS": "k",
                                                  "COGCORE_KB_DIR": str(tmp / "kb")})
    yield server
    stop(server)


@pytest.fixture
def client(kb_server: Server) -> OpenAI:
    return OpenAI(base_url=f"{kb_server.url}/v1", api_key="k", max_retries=0)


def test_response_with_citations(client: OpenAI, kb_server: Server) -> None:
    """A grounded question: a Response (the openai type) whose output text cites its
    sources as url_citation annotations, with the cogcore extension and usage."""
    reply = client.responses.create(model=kb_server.model, input=QUESTION,
                                    instructions="Answer briefly.", max_output_tokens=16,
                                    temperature=0, extra_body={"retrieval": "always"})
    assert isinstance(reply, Response) and reply.object == "response"
    assert "Paris" in reply.output_text
    text = reply.output[0].content[0]
    assert text.annotations and all(a.type == "url_citation" and a.url.startswith(
        "/v1/documents/") and a.end_index == len(text.text) for a in text.annotations)
    extra = reply.model_extra["cogcore"]
    assert extra["route"] == "facts" and extra["sources"]
    assert reply.usage.input_tokens > 0 and 0 < reply.usage.output_tokens <= 16
    assert reply.status in ("completed", "incomplete")


def test_streamed_events_in_order(client: OpenAI, kb_server: Server) -> None:
    """The Responses event sequence; the deltas add up to the done text and the final
    response's text."""
    kwargs = {"model": kb_server.model, "max_output_tokens": 8, "temperature": 0,
              "input": [{"role": "user", "content": "Say hello."}],
              "extra_body": {"retrieval": "never"}}
    events = list(client.responses.create(**kwargs, stream=True))
    types = [e.type for e in events]
    final = events[-1].response
    assert types[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert types[-4:-1] == ["response.output_text.done", "response.content_part.done",
                            "response.output_item.done"]
    assert types[-1] == "response.completed" and final.status in ("completed", "incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = next(e for e in events if e.type == "response.output_text.done")
    assert deltas and deltas == done.text == final.output_text
    whole = client.responses.create(**kwargs)
    assert whole.output_text == deltas


def test_async_and_stream_helper(kb_server: Server) -> None:
    """The async client, and the client's `responses.stream` helper, against the server."""
    aclient = AsyncOpenAI(base_url=f"{kb_server.url}/v1", api_key="k", max_retries=0)

    async def main() -> tuple[str, str]:
        reply = await aclient.responses.create(
            model=kb_server.model, input=[{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "Count to three."}],
            max_output_tokens=8, temperature=0, extra_body={"retrieval": "never"})
        async with aclient.responses.stream(
                model=kb_server.model, input="Count to three.", instructions="Be brief.",
                max_output_tokens=8, temperature=0, extra_body={"retrieval": "never"}
        ) as stream:
            final = await stream.get_final_response()
        return reply.output_text, final.output_text

    whole, streamed = asyncio.run(main())
    assert whole and whole == streamed


def test_stateful_fields_are_named_400s(client: OpenAI, kb_server: Server) -> None:
    """store: true, previous_response_id and tools are refused, each named."""
    for extra, param in (({"store": True}, "store"),
                         ({"previous_response_id": "resp_1"}, "previous_response_id"),
                         ({"tools": [{"type": "web_search"}]}, "tools")):
        with pytest.raises(BadRequestError) as refused:
            client.responses.create(model=kb_server.model, input="hi", max_output_tokens=2,
                                    **extra)
        assert refused.value.body["param"] == param, refused.value.body
