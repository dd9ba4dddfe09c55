"""Streaming throughput of `cogcore serve` against `transformers serve`, same checkpoint.

Starts the servers on 127.0.0.1, drives each with the same streaming chat load (fixed prompts,
fixed max_tokens, a bounded number of requests per concurrency level), the servers taking turns
at each level, and prints output tokens/s, TTFT and inter-token latency percentiles, and the
ratios.

    .venv/bin/python benchmarks/serve_throughput.py [--model DIR] [--clients 1,8,32]
        [--servers cogcore,transformers-cb,cogcore-base --base-src OLD_CHECKOUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from loadtest.server import free_port, served_model

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


def start(kind: str, model: Path, port: int, threads: int, base_src: Path | None = None
          ) -> subprocess.Popen:
    """Start one server kind ('cogcore', 'cogcore-base': the code at `base_src`,
    'transformers', 'transformers-cb')."""
    cwd = base_src if kind == "cogcore-base" and base_src else REPO
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads),
           "COGCORE_TORCH_THREADS": str(threads),
           "COGCORE_LOAD_EMBEDDER": "false", "COGCORE_MAX_BATCH_SIZE": "32",
           "COGCORE_LOG_LEVEL": "WARNING"}
    if kind.startswith("cogcore-llamacpp-"):  # the llama.cpp engine at a GGUF type
        env.update({"COGCORE_ENGINE": "llamacpp", "COGCORE_LLAMACPP_THREADS": str(threads),
                    "COGCORE_GGUF_TYPE": kind.removeprefix("cogcore-llamacpp-")})
    if cwd != REPO:  # an older checkout's packages shadow this one's
        env["PYTHONPATH"] = str(cwd)
    bin_dir = Path(sys.executable).parent
    if kind.startswith("cogcore"):
        cmd = [str(bin_dir / "cogcore"), "serve", "--port", str(port), "--model", str(model),
               "--device", "cpu"]
    else:
        cmd = [str(bin_dir / "transformers"), "serve", str(model), "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu", "--dtype", "float32",
               "--log-level", "warning"]
        if kind == "transformers-cb":
            cmd.append("--continuous-batching")
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
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


def report(kind: str, clients: int, r: Run) -> None:
    """Print one load level's figures, with the machine's load average at its end."""
    print(f"{kind:16s} clients={clients:3d}  {r.tokens / r.wall_s:7.1f} tok/s  "
          f"TTFT p50 {pct(r.ttft, 50):7.0f} p90 {pct(r.ttft, 90):7.0f} ms  "
          f"ITL p50 {pct(r.itl, 50):6.0f} p90 {pct(r.itl, 90):6.0f} ms  "
          f"({r.tokens} tokens, {r.wall_s:.1f}s, load {os.getloadavg()[0]:.1f})", flush=True)


def bench(kinds: list[str], model: Path, levels: list[int], max_tokens: int, rounds: int,
          threads: int, base_src: Path | None = None) -> dict[str, dict[int, Run]]:
    """Start every server, then run each load level on each server in turn.

    The servers take turns level by level (in reversed order every other level) rather than
    one server after the other, because the shared machine's load drifts over minutes and the
    ratios must compare runs made under the same load. An idle server uses no CPU."""
    processes, urls = {}, {}
    try:
        for kind in kinds:
            port = free_port()
            urls[kind] = f"http://127.0.0.1:{port}"
            processes[kind] = start(kind, model, port, threads, base_src)
        for kind in kinds:
            wait_ready(urls[kind], processes[kind])
        names = {k: served_model(urls[k]) if k.startswith("cogcore") else str(model)
                 for k in kinds}
        for kind in kinds:
            asyncio.run(drive(urls[kind], names[kind], 1, 1, 8))  # warm-up
        results: dict[str, dict[int, Run]] = {k: {} for k in kinds}
        failed: set[str] = set()
        for i, clients in enumerate(levels):
            for kind in kinds if i % 2 == 0 else kinds[::-1]:
                if kind in failed:
                    continue
                try:
                    run = asyncio.run(drive(urls[kind], names[kind], clients, rounds * clients,
                                            max_tokens))
                except httpx.HTTPError as exc:  # one server failing leaves the others' figures
                    print(f"{kind}: failed at {clients} clients: {exc!r}", flush=True)
                    failed.add(kind)
                    continue
                results[kind][clients] = run
                report(kind, clients, run)
        return results
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
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
    parser.add_argument("--servers", default="cogcore,transformers,transformers-cb",
                        help="also 'cogcore-base': the service from --base-src; "
                             "'cogcore-llamacpp-f32' (or -q8_0, -f16): the llama.cpp engine")
    parser.add_argument("--base-src", type=Path,
                        help="another checkout of this repo (say `git worktree add` of an "
                             "older commit) whose service runs as 'cogcore-base'")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    results = bench(args.servers.split(","), args.model, levels, args.max_tokens, args.rounds,
                    args.threads, args.base_src)
    tps = {k: {c: r.tokens / r.wall_s for c, r in v.items()} for k, v in results.items()}
    top = max(levels)
    if top in tps.get("cogcore", {}):
        ours = tps["cogcore"]
        print(f"cogcore {top} clients / 1 client: {ours[top] / ours[min(levels)]:.2f}x")
        for kind, other in tps.items():
            if kind != "cogcore" and top in other:
                print(f"cogcore / {kind} at {top} clients: {ours[top] / other[top]:.2f}x")


if __name__ == "__main__":
    main()
