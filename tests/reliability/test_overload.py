"""Overload: far more concurrent clients than the engine holds (batch 2, queue 2).

The excess is refused at once with 429 and Retry-After, every admitted request completes,
resident memory stays bounded, and the service answers normally afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loadtest import server as srv
from tests.reliability import load
from tests.reliability.report import env_int, record

BATCH, WAITING = 2, 2


@pytest.fixture(scope="module")
def small_server(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[srv.Server]:
    """The tiny Llama with a small batch and a small queue; no embedder, no store."""
    server = srv.start(tiny_llama_dir, tmp_path_factory.mktemp("overload") / "server.log", env={
        "COGCORE_LOAD_EMBEDDER": "false", "COGCORE_LOAD_KB": "false",
        "COGCORE_MAX_BATCH_SIZE": str(BATCH), "COGCORE_MAX_WAITING": str(WAITING),
        "COGCORE_RETRY_AFTER_S": "2", "COGCORE_SERVED_MODEL_NAME": "tiny"})
    yield server
    srv.stop(server)


def completion(max_tokens: int, stream: bool = False) -> load.Request:
    """A text completion request that decodes `max_tokens` tokens (no stop string)."""
    body = {"model": "tiny", "prompt": "once upon a time", "max_tokens": max_tokens,
            "temperature": 1.0, "seed": 1, "stream": stream}
    return lambda http: http.post("/v1/completions", json=body)


def test_excess_is_refused_with_retry_after(small_server: srv.Server) -> None:
    """Many more clients than rows + queue: 200 or 429 only, Retry-After on each 429."""
    clients = env_int("COGCORE_OVERLOAD_CLIENTS", 64)
    rounds = env_int("COGCORE_OVERLOAD_ROUNDS", 2)
    rss = [small_server.rss_mb()]
    runs = []
    for _ in range(rounds):
        requests = [("completion", completion(16)) for _ in range(clients)]
        runs.append(asyncio.run(load.burst(small_server.url, {}, requests)))
        rss.append(small_server.rss_mb())
    outcomes = [o for run in runs for o in run.outcomes]
    ok = [o for o in outcomes if o.status == 200]
    refused = [o for o in outcomes if o.status == 429]
    assert len(ok) + len(refused) == len(outcomes), [o for o in outcomes if o.status
                                                     not in (200, 429)][:3]
    assert all(o.retry_after == "2" for o in refused)
    assert len(ok) >= rounds * (BATCH + WAITING) and refused
    after = httpx.post(f"{small_server.url}/v1/completions", timeout=60,
                       json={"model": "tiny", "prompt": "a", "max_tokens": 4})
    assert after.status_code == 200 and httpx.get(f"{small_server.url}/health").status_code == 200
    assert small_server.gauge("num_requests_running") == 0
    assert small_server.gauge("num_requests_waiting") == 0
    record("overload", {
        "clients_per_round": clients, "rounds": rounds, "max_batch_size": BATCH,
        "max_waiting": WAITING, "sent": len(outcomes), "ok": len(ok), "refused_429": len(refused),
        "max_429_latency_s": round(max(o.latency_s for o in refused), 3),
        "max_ok_latency_s": round(max(o.latency_s for o in ok), 3),
        "rss_mb_per_round": [round(x, 1) for x in rss]})
