"""Soak: steady concurrency of mixed factual, reasoning and document-write traffic.

Short in CI (COGCORE_SOAK_S, default 40 s); `make reliability` runs it for 10 minutes. Zero
errors other than deliberate 429s; resident memory and latency percentiles at start and end
are reported (the memory goal, growth under 10%, is read from the figures, not asserted).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from loadtest import server as srv
from tests.reliability import load
from tests.reliability.conftest import ADMIN, bearer
from tests.reliability.report import env_float, env_int, percentile, record

ENTITIES = ["Zorbania", "Quellport", "Vastrelle", "Ombrik", "Tessaly", "Krenmoor"]


def pick(index: int) -> tuple[str, load.Request]:
    """Request `index` of the mix: 40% factual, 40% reasoning, 20% document writes."""
    name = ENTITIES[index % len(ENTITIES)]
    slot = index % 5
    if slot in (0, 1):
        body = {"model": "tiny", "max_tokens": 8, "temperature": 0, "messages": [
            {"role": "user", "content": f"What is the capital of {name}?"}]}
        return "factual", lambda http: http.post("/v1/chat/completions", json=body)
    if slot in (2, 3):
        body = {"model": "tiny", "max_tokens": 8, "temperature": 0.7, "seed": index,
                "stream": slot == 3, "messages": [
                    {"role": "user", "content": f"What is {index % 97} plus {index % 13}?"}]}
        return "reasoning", lambda http: http.post("/v1/chat/completions", json=body)
    doc = {"documents": [{"id": f"soak:{name.lower()}:{index % 50}",
                          "text": f"The capital of {name} is {name}port, rebuilt in year "
                                  f"{index}.", "metadata": {"kind": "soak"}}]}
    return "write", lambda http: http.post("/v1/documents", json=doc)


def window(run: load.Run, start: float, end: float) -> dict[str, float | None]:
    """Latency percentiles of the successful requests started in [start, end) seconds."""
    values = [o.latency_s for o in run.outcomes if start <= o.started_s < end
              and o.status == 200]
    return {"n": len(values), "p50_s": percentile(values, 50), "p95_s": percentile(values, 95),
            "p99_s": percentile(values, 99)}


def test_soak_mixed_traffic(tiny_llama_dir: Path, tmp_path: Path) -> None:
    """Mixed traffic for the soak duration: only 200s and deliberate 429s."""
    duration = env_float("COGCORE_SOAK_S", 40)
    workers = env_int("COGCORE_SOAK_WORKERS", 6)
    server = srv.start(tiny_llama_dir, tmp_path / "server.log", kb_dir=tmp_path / "kb", env={
        "COGCORE_ADMIN_KEYS": ADMIN, "COGCORE_SERVED_MODEL_NAME": "tiny",
        "COGCORE_MAX_BATCH_SIZE": "4", "COGCORE_MAX_WAITING": "2"})
    try:
        asyncio.run(load.steady(server.url, bearer(ADMIN), 2, 5, pick, max_requests=20))  # warm
        rss_start = server.rss_mb()
        run = asyncio.run(load.steady(server.url, bearer(ADMIN), workers, duration, pick))
        rss_end = server.rss_mb()
        healthy = httpx.get(f"{server.url}/health", timeout=10).status_code
        running = server.gauge("num_requests_running")
    finally:
        srv.stop(server)
    fifth = duration / 5
    kinds = {k: sum(o.kind == k for o in run.outcomes) for k in ("factual", "reasoning", "write")}
    record("soak", {
        "duration_s": duration, "workers": workers, "sent": len(run.outcomes), "by_kind": kinds,
        "statuses": run.statuses(), "rss_mb_start": round(rss_start, 1),
        "rss_mb_end": round(rss_end, 1),
        "rss_growth_pct": round(100 * (rss_end - rss_start) / rss_start, 2),
        "latency_first_fifth": window(run, 0, fifth),
        "latency_last_fifth": window(run, duration - fifth, duration + 1e9)})
    bad = run.unexpected({200, 429})
    assert not bad, bad[:5]
    assert all(kinds.values()) and healthy == 200 and running == 0
