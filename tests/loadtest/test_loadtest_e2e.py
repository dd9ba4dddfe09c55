"""`cogcore loadtest` end to end: the real service on a loopback port, a tiny random Llama."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from cli import app as cli_app
from loadtest.runner import Level, LoadConfig, run_level
from service.app import create_app
from service.settings import Settings


@pytest.fixture(scope="module")
def service_url(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app served by uvicorn on a free loopback port (port 0), ready to generate."""
    settings = Settings(model_dir=tiny_llama_dir, kb_dir=tmp_path_factory.mktemp("kb"),
                        load_embedder=False, device="cpu", max_batch_size=4)
    server = uvicorn.Server(uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    while httpx.get(f"{url}/ready").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    yield url
    server.should_exit = True
    thread.join(timeout=30)


def _all_positive(values: dict[str, float]) -> bool:
    return all(math.isfinite(v) and v > 0 for v in values.values())


def test_bounded_loadtest_reports_every_request(service_url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, [
        "loadtest", "--url", service_url, "--concurrency", "2", "--requests", "6",
        "--max-tokens", "8", "--duration", "120",
        "--slo", "ttft_ms=60000,tpot_ms=60000", "--out", str(tmp_path),
    ])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "loadtest.json").read_text())
    (level,) = report["levels"]
    m = level["metrics"]
    assert (m["started"], m["completed"], m["failed"], m["cancelled"]) == (6, 6, 0, 0)
    assert m["errors"] == {} and m["good_fraction"] == 1.0
    assert 6 <= m["output_tokens"] <= 6 * 8
    for key in ("duration_s", "request_throughput", "output_throughput", "goodput"):
        assert math.isfinite(m[key]) and m[key] > 0, key
    for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2el_ms"):
        assert m[key] is not None and _all_positive(m[key]), key
    assert {r["kind"] for r in level["requests"]} == {"factual", "reasoning"}
    assert (tmp_path / "loadtest.png").stat().st_size > 10_000
    assert "## c=2" in (tmp_path / "loadtest.md").read_text()


def test_completions_endpoint_streams_tokens(service_url: str) -> None:
    model = httpx.get(f"{service_url}/v1/models").json()["data"][0]["id"]
    config = LoadConfig(url=service_url, model=model, endpoint="completions",
                        requests=2, duration_s=60, max_tokens=4)
    run = asyncio.run(run_level(config, Level(concurrency=2)))
    assert [r.error for r in run.results] == [None, None]
    assert all(r.usage_tokens and len(r.chunk_times) >= 1 for r in run.results)
