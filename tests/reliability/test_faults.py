"""Faults: SIGKILL during ingestion, SIGTERM under load, clients vanishing mid-stream.

Real `cogcore serve` processes on the tiny Llama (the language model is not what is tested).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from loadtest import server as srv
from tests.reliability import load
from tests.reliability.conftest import ADMIN, READ, bearer
from tests.reliability.report import env_float, env_int, percentile, record
from tests.tiny_models import build_tokenizer

KEYS = {"COGCORE_API_KEYS": READ, "COGCORE_ADMIN_KEYS": ADMIN,
        "COGCORE_SERVED_MODEL_NAME": "tiny"}


def kb_stats(kb: Path) -> dict:
    """`cogcore kb stats --kb DIR` as the operator runs it."""
    exe = Path(sys.executable).with_name("cogcore")
    result = subprocess.run([str(exe), "kb", "stats", "--kb", str(kb)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _writer(url: str, worker: int, acked: list[str], stop: threading.Event,
            limit: int) -> None:
    """Upsert small batches until stopped; remember each id whose write got a 2xx."""
    with httpx.Client(base_url=url, headers=bearer(ADMIN), timeout=30) as http:
        for batch in range(limit):
            if stop.is_set():
                return
            ids = [f"w{worker}-b{batch}-d{i}" for i in range(3)]
            docs = [{"id": i, "text": f"Record {i} names the token zq{i.replace('-', '')}.",
                     "metadata": {"worker": worker}} for i in ids]
            try:
                response = http.post("/v1/documents", json={"documents": docs})
            except httpx.HTTPError:
                return  # the server died under us: this write was never acknowledged
            if 200 <= response.status_code < 300:
                acked.extend(ids)


def test_sigkill_during_ingestion_loses_no_acknowledged_write(
        tiny_llama_dir: Path, tmp_path: Path) -> None:
    """Every 2xx-acknowledged document survives a SIGKILL, is searchable, index == store."""
    kb = tmp_path / "kb"
    server = srv.start(tiny_llama_dir, tmp_path / "server.log", env=KEYS, kb_dir=kb)
    acked: list[str] = []
    stop = threading.Event()
    writers = [threading.Thread(target=_writer, args=(server.url, w, acked, stop, 400))
               for w in range(3)]
    for thread in writers:
        thread.start()
    deadline = time.monotonic() + env_float("COGCORE_KILL_AFTER_S", 60)
    want = env_int("COGCORE_KILL_AFTER_DOCS", 60)
    while len(acked) < want and time.monotonic() < deadline:
        time.sleep(0.05)
    server.process.send_signal(signal.SIGKILL)  # mid-write: requests are in flight
    server.process.wait(timeout=30)
    stop.set()
    for thread in writers:
        thread.join(timeout=60)
    assert acked, "no write was acknowledged before the kill"
    restarted = srv.start(tiny_llama_dir, tmp_path / "server2.log", env=KEYS, kb_dir=kb)
    try:
        missing, unsearchable = [], []
        with httpx.Client(base_url=restarted.url, headers=bearer(READ), timeout=60) as http:
            total = http.get("/v1/documents", params={"limit": 1}).json()["total"]
            for doc_id in acked:
                if http.get(f"/v1/documents/{doc_id}").status_code != 200:
                    missing.append(doc_id)
            for doc_id in acked[:: max(1, len(acked) // 40)]:  # a spread sample
                query = {"query": f"zq{doc_id.replace('-', '')}", "k": 3, "mode": "bm25"}
                hits = http.post("/v1/search", json=query).json()["data"]
                if doc_id not in [h["document_id"] for h in hits]:
                    unsearchable.append(doc_id)
    finally:
        srv.stop(restarted)
    stats = kb_stats(kb)
    record("sigkill_ingestion", {
        "acknowledged_writes": len(acked), "found_after_restart": len(acked) - len(missing),
        "documents_in_store": total, "searched_sample": len(acked[:: max(1, len(acked) // 40)]),
        "unsearchable": len(unsearchable), "store_chunks": stats["chunks"],
        "index_count": stats["index_count"], "repair_on_open": stats["repair_on_open"]})
    assert not missing and not unsearchable
    assert total >= len(acked)  # an unacknowledged write may have landed too: allowed
    assert stats["index_count"] == stats["chunks"]


def test_sigterm_under_load_finishes_in_flight_requests(tiny_llama_dir: Path,
                                                        tmp_path: Path) -> None:
    """SIGTERM with a full batch: every admitted request completes, within the drain."""
    drain_s, clients = 60, 8
    server = srv.start(tiny_llama_dir, tmp_path / "server.log", env={
        "COGCORE_LOAD_EMBEDDER": "false", "COGCORE_LOAD_KB": "false",
        "COGCORE_SERVED_MODEL_NAME": "tiny", "COGCORE_DRAIN_TIMEOUT_S": str(drain_s),
        "COGCORE_MAX_BATCH_SIZE": "4"})
    # Long replies, sent together from clients built beforehand, so that all of them are
    # admitted before the first one finishes, however slow the machine.
    max_tokens = 400
    eos = build_tokenizer().eos_token_id
    body = {"model": "tiny", "prompt": "a b c", "max_tokens": max_tokens, "temperature": 1.0,
            "seed": 3, "stop": [], "logit_bias": {str(eos): -100}}
    results: list[httpx.Response | Exception] = []
    start = threading.Barrier(clients)

    def call() -> None:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            start.wait()
            try:
                results.append(http.post("/v1/completions", json=body))
            except httpx.HTTPError as exc:
                results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(clients)]
    for thread in threads:
        thread.start()
    # One scrape reads both gauges; the reading that shows every client admitted is the one
    # checked (a later scrape may already see the first rows finished on a fast machine).
    deadline = time.monotonic() + 60
    running, waiting = server.gauges("num_requests_running", "num_requests_waiting")
    while running + waiting < clients and time.monotonic() < deadline:
        time.sleep(0.01)
        running, waiting = server.gauges("num_requests_running", "num_requests_waiting")
    assert running > 0 and running + waiting == clients, (running, waiting, results)
    signalled = time.monotonic()
    status = srv.stop(server, signal.SIGTERM, timeout_s=drain_s + 30)
    exited_s = time.monotonic() - signalled
    for thread in threads:
        thread.join(timeout=60)
    ok = [r for r in results if isinstance(r, httpx.Response) and r.status_code == 200]
    record("sigterm_drain", {"in_flight_at_sigterm": clients, "completed_200": len(ok),
                             "exit_status": status, "exit_after_s": round(exited_s, 2),
                             "drain_timeout_s": drain_s})
    assert len(ok) == clients, [r if isinstance(r, Exception) else r.text for r in results]
    assert all(r.json()["usage"]["completion_tokens"] == max_tokens for r in ok)
    assert status in (0, -signal.SIGTERM) and exited_s < drain_s


async def _abandon_streams(url: str, clients: int) -> int:
    """Open `clients` streams, read the first event of each, then drop every connection."""
    body = {"model": "tiny", "prompt": "once", "max_tokens": 200, "stream": True}
    opened = 0

    async def one(http: httpx.AsyncClient) -> None:
        nonlocal opened
        async with http.stream("POST", "/v1/completions", json=body) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    opened += 1
                    return  # leaving the block closes the connection mid-stream

    async with load.client(url, clients, bearer(READ)) as http:
        await asyncio.gather(*(one(http) for _ in range(clients)))
    return opened


def _latencies(url: str, count: int) -> list[float]:
    body = {"model": "tiny", "prompt": "a b", "max_tokens": 8, "temperature": 0}
    out = []
    with httpx.Client(base_url=url, headers=bearer(READ), timeout=60) as http:
        for _ in range(count):
            started = time.monotonic()
            assert http.post("/v1/completions", json=body).status_code == 200
            out.append(time.monotonic() - started)
    return out


def test_mass_disconnect_leaks_no_sequence(tiny_llama_dir: Path, tmp_path: Path) -> None:
    """Many clients vanish mid-stream: running and waiting return to 0, no slowdown after."""
    server = srv.start(tiny_llama_dir, tmp_path / "server.log", env={
        **KEYS, "COGCORE_LOAD_EMBEDDER": "false", "COGCORE_LOAD_KB": "false",
        "COGCORE_MAX_BATCH_SIZE": "16", "COGCORE_MAX_WAITING": "64"})
    try:
        before = _latencies(server.url, 5)
        rounds, clients = env_int("COGCORE_DISCONNECT_ROUNDS", 2), 32
        opened = sum(asyncio.run(_abandon_streams(server.url, clients)) for _ in range(rounds))
        deadline = time.monotonic() + 30
        running, waiting = server.gauges("num_requests_running", "num_requests_waiting")
        while (running or waiting) and time.monotonic() < deadline:
            time.sleep(0.05)
            running, waiting = server.gauges("num_requests_running", "num_requests_waiting")
        settled_s = 30 - (deadline - time.monotonic())
        after = _latencies(server.url, 5)
    finally:
        srv.stop(server)
    record("mass_disconnect", {
        "streams_abandoned": opened, "running_after": running, "waiting_after": waiting,
        "seconds_to_zero": round(settled_s, 2),
        "p50_latency_before_s": percentile(before, 50), "p50_latency_after_s":
        percentile(after, 50)})
    assert opened == rounds * clients
    assert running == 0 and waiting == 0
