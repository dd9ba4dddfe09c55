"""Streaming throughput of `cogcore serve` against `transformers serve`, same checkpoint.

Starts each server in turn on 127.0.0.1, drives it with the same streaming chat load (fixed
prompts, fixed max_tokens, a bounded number of requests per concurrency level), and prints
output tokens/s, TTFT and inter-token latency percentiles, and the ratios.

    .venv/bin/python benchmarks/serve_throughput.py [--model DIR] [--clients 1,8,32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
PROMPTS = [
    "Write a short story about a robot who learns to paint.",
    "Explain how a bicycle stays upright while moving.",
    "Describe a walk through a forest in autumn.",
    "Give advice to someone starting to learn the piano.",
]


@dataclass
class Run:
    """Measurements of one load level against one server."""

    tokens: int = 0
    wall_s: float = 0.0
    ttft: list[float] = field(default_factory=list)
    itl: list[float] = field(default_factory=list)


def free_port() -> int:
    """A free port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(kind: str, model: Path, port: int, threads: int) -> subprocess.Popen:
    """Start one server kind ('cogcore', 'transformers', 'transformers-cb')."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads),
           "COGCORE_TORCH_THREADS": str(threads),
           "COGCORE_LOAD_EMBEDDER": "false", "COGCORE_MAX_BATCH_SIZE": "32",
           "COGCORE_LOG_LEVEL": "WARNING"}
    bin_dir = Path(sys.executable).parent
    if kind == "cogcore":
        cmd = [str(bin_dir / "cogcore"), "serve", "--port", str(port), "--model", str(model),
               "--device", "cpu"]
    else:
        cmd = [str(bin_dir / "transformers"), "serve", str(model), "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu", "--dtype", "float32",
               "--log-level", "warning"]
        if kind == "transformers-cb":
            cmd.append("--continuous-batching")
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def wait_ready(url: str, process: subprocess.Popen, timeout_s: float = 600) -> None:
    """Poll /health (and /ready when there is one) until the server answers."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} during startup")
        try:
            if httpx.get(f"{url}/health").status_code == 200 and \
                    httpx.get(f"{url}/ready").status_code in (200, 404):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("server did not start")


async def one_request(client: httpx.AsyncClient, url: str, model: str, prompt: str,
                      max_tokens: int, run: Run) -> None:
    """One streaming chat request; every content chunk is timed as a token."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens, "temperature": 0, "stream": True}
    started, stamps = time.monotonic(), []
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                stamps.append(time.monotonic())
    if stamps:
        run.ttft.append(stamps[0] - started)
        run.itl.extend(b - a for a, b in zip(stamps, stamps[1:], strict=False))
        run.tokens += len(stamps)


async def drive(url: str, model: str, clients: int, requests: int, max_tokens: int) -> Run:
    """`clients` concurrent loops sharing `requests` requests in total."""
    run, queue = Run(), asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(PROMPTS[i % len(PROMPTS)])

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            await one_request(client, url, model, queue.get_nowait(), max_tokens, run)

    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(timeout=900, limits=limits) as client:
        started = time.monotonic()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        run.wall_s = time.monotonic() - started
    return run


def pct(values: list[float], q: float) -> float:
    """The q-th percentile in milliseconds."""
    if len(values) < 2:
        return 1000 * values[0] if values else float("nan")
    return 1000 * statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def bench(kind: str, model: Path, levels: list[int], max_tokens: int, rounds: int,
          threads: int) -> dict[int, Run]:
    """Start `kind`, warm it up, run every load level, stop it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(kind, model, port, threads)
    try:
        wait_ready(url, process)
        name = model.resolve().name if kind == "cogcore" else str(model)
        asyncio.run(drive(url, name, 1, 1, 8))  # warm-up
        results = {}
        for clients in levels:
            results[clients] = asyncio.run(drive(url, name, clients, rounds * clients, max_tokens))
            r = results[clients]
            print(f"{kind:16s} clients={clients:3d}  {r.tokens / r.wall_s:7.1f} tok/s  "
                  f"TTFT p50 {pct(r.ttft, 50):7.0f} p90 {pct(r.ttft, 90):7.0f} ms  "
                  f"ITL p50 {pct(r.itl, 50):6.0f} p90 {pct(r.itl, 90):6.0f} ms  "
                  f"({r.tokens} tokens, {r.wall_s:.1f}s, load {os.getloadavg()[0]:.1f})",
                  flush=True)
        return results
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    """Run the comparison and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "artifacts/base/smollm2-135m-instruct")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="requests per client")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per server")
    parser.add_argument("--servers", default="cogcore,transformers,transformers-cb")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    results = {}
    for kind in args.servers.split(","):
        try:
            results[kind] = bench(kind, args.model, levels, args.max_tokens, args.rounds,
                                  args.threads)
        except (RuntimeError, httpx.HTTPError) as exc:
            print(f"{kind}: failed: {exc}", flush=True)
    tps = {k: {c: r.tokens / r.wall_s for c, r in v.items()} for k, v in results.items()}
    if "cogcore" in tps:
        ours = tps["cogcore"]
        top = max(levels)
        print(f"cogcore {top} clients / 1 client: {ours[top] / ours[min(levels)]:.2f}x")
        for kind, other in tps.items():
            if kind != "cogcore":
                print(f"cogcore / {kind} at {top} clients: {ours[top] / other[top]:.2f}x")


if __name__ == "__main__":
    main()
