"""End to end: concurrent grounded chats through a real server get the sources sequential ones
get (their grounding is batched, service/grounding_batch.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from loadtest.server import Server, start, stop
from loadtest.workload import FACTUAL, REASONING


@pytest.fixture(scope="module")
def grounded_server(default_base_dir: Path, default_kb_dir: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server on the default model and knowledge base (read-only: others may write)."""
    log = tmp_path_factory.mktemp("grounded-server") / "serve.log"
    server = start(default_base_dir, log, env={"COGCORE_KB_DIR": str(default_kb_dir),
                                                "COGCORE_KB_READONLY": "1"})
    yield server
    stop(server)


async def _grounding(client: AsyncOpenAI, model: str, question: str
                     ) -> tuple[str, list[tuple[str, str]]]:
    reply = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": question}], max_tokens=2,
        temperature=0)
    info = reply.model_extra["cogcore"]
    return info["route"], [(s["id"], s["text"]) for s in info["sources"]]


@pytest.mark.real_model
def test_concurrent_grounded_chats_get_the_sources_sequential_ones_get(
        grounded_server: Server) -> None:
    questions = [*FACTUAL, *REASONING[:4]]

    async def run() -> tuple[list, list]:
        async with AsyncOpenAI(base_url=f"{grounded_server.url}/v1", api_key="none",
                               max_retries=0) as client:
            alone = [await _grounding(client, grounded_server.model, q) for q in questions]
            together = await asyncio.gather(
                *(_grounding(client, grounded_server.model, q) for q in questions))
        return alone, list(together)

    alone, together = asyncio.run(run())
    assert together == alone
    assert sum(1 for route, sources in alone if route == "facts" and sources) >= len(FACTUAL) - 2
