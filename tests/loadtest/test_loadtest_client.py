"""The streaming client and the level runner against an in-process fake SSE server."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtest.client import Endpoint, RequestResult, build_payload, stream_request
from loadtest.metrics import summarize
from loadtest.report import LevelReport, Report, write_report
from loadtest.runner import Level, LoadConfig, run_level
from loadtest.workload import Prompt

URL = "http://127.0.0.1:9"
Handler = Callable[[httpx.Request], Any]


def _chat_events(words: list[str]) -> list[dict]:
    chunk = {"object": "chat.completion.chunk", "usage": None}
    events = [chunk | {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    events += [chunk | {"choices": [{"index": 0, "delta": {"content": w}}]} for w in words]
    events.append(chunk | {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    usage = {"prompt_tokens": 5, "completion_tokens": len(words) + 1, "total_tokens": 9}
    events.append(chunk | {"choices": [], "usage": usage})
    return events


async def _sse(events: list[dict], delay_s: float = 0.0, done: bool = True) -> AsyncIterator[bytes]:
    for event in events:
        await asyncio.sleep(delay_s)
        yield f"data: {json.dumps(event)}\n\n".encode()
    if done:
        yield b"data: [DONE]\n\n"


def _stream_one(handler: Handler, endpoint: Endpoint = "chat") -> RequestResult:
    payload = build_payload(endpoint, "m", Prompt("factual", "hi"), 8, 0.0)

    async def go() -> RequestResult:
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(base_url=URL, transport=transport) as client:
            return await stream_request(client, endpoint, payload, "factual")

    return asyncio.run(go())


def test_chat_stream_counts_content_chunks_and_takes_usage() -> None:
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, content=_sse(_chat_events(["Par", "is", "."]), 0.002))

    result = _stream_one(handler)
    assert result.ok and result.status == 200
    assert len(result.chunk_times) == 3  # role-only and finish chunks are not tokens
    assert result.usage_tokens == 4 and result.prompt_tokens == 5
    assert result.sent_at < result.chunk_times[0] < result.chunk_times[-1] <= result.end_at
    assert seen[0]["stream"] is True and seen[0]["stream_options"] == {"include_usage": True}
    assert seen[0]["messages"] == [{"role": "user", "content": "hi"}]


def test_completions_stream_reads_text() -> None:
    events = [{"choices": [{"index": 0, "text": t}]} for t in ("a", "b")]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/completions"
        return httpx.Response(200, content=_sse(events))

    result = _stream_one(handler, "completions")
    assert result.ok and len(result.chunk_times) == 2 and result.usage_tokens is None


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (lambda: httpx.Response(429, json={"error": {"message": "busy"}}), "429"),
        (lambda: httpx.Response(200, content=_sse(_chat_events(["a"]), done=False)),
         "incomplete_stream"),
        (lambda: httpx.Response(200, content=_sse([{"error": {"message": "boom"}}])),
         "stream_error"),
        (lambda: httpx.Response(200, content=_sse(_chat_events([])[:1])), "no_tokens"),
    ],
)
def test_failures_are_recorded_by_kind(response: Callable[[], httpx.Response], error: str) -> None:
    result = _stream_one(lambda request: response())
    assert not result.ok and result.error == error


def test_transport_failure_is_named_by_exception() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    result = _stream_one(handler)
    assert result.error == "ConnectError" and result.status is None


def _config(**overrides: object) -> LoadConfig:
    return LoadConfig(url=URL, model="m", **({"requests": 6, "duration_s": 5.0} | overrides))


def test_closed_loop_stops_at_the_request_count() -> None:
    active, peak = 0, 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        return httpx.Response(200, content=_sse(_chat_events(["x", "y"])))

    run = asyncio.run(run_level(_config(), Level(concurrency=2), httpx.MockTransport(handler)))
    assert len(run.results) == 6 and run.cancelled == 0 and peak == 2
    assert all(r.ok for r in run.results)


def test_open_loop_sends_every_request() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=_sse(_chat_events(["x"])))

    run = asyncio.run(run_level(_config(), Level(rate=200.0), httpx.MockTransport(handler)))
    assert len(run.results) == 6 and run.cancelled == 0


def test_deadline_cancels_requests_in_flight() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=_sse(_chat_events(["x"] * 100), delay_s=0.05))

    config = _config(duration_s=0.3)
    run = asyncio.run(run_level(config, Level(concurrency=3), httpx.MockTransport(handler)))
    assert run.results == [] and run.cancelled == 3
    assert 0.3 <= run.duration_s < 1.0
    metrics = summarize(run.results, run.duration_s, run.cancelled, {})
    assert metrics.cancelled == 3 and metrics.completed == 0


def test_report_files_hold_every_level(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=_sse(_chat_events(["x", "y", "z"]), 0.001))

    config = _config(api_key="secret")
    levels = []
    for level in (Level(concurrency=1), Level(rate=100.0)):
        run = asyncio.run(run_level(config, level, httpx.MockTransport(handler)))
        levels.append(LevelReport(run, summarize(run.results, run.duration_s, 0, {"ttft_ms": 1e4})))
    paths = write_report(Report(config, {"ttft_ms": 1e4}, levels, "cogcore loadtest", "now"),
                         tmp_path)
    data = json.loads(paths["json"].read_text())
    assert [lv["label"] for lv in data["levels"]] == ["c=1", "rate=100/s"]
    assert data["config"]["api_key"] == "***" and "secret" not in paths["md"].read_text()
    for level in data["levels"]:
        m = level["metrics"]
        assert m["completed"] == 6 and m["output_tokens"] == 6 * 4 and m["goodput"] > 0
        assert all(math.isfinite(v) and v > 0 for v in m["ttft_ms"].values())
    assert "## c=1" in paths["md"].read_text() and paths["png"].stat().st_size > 10_000
