"""Streaming throughput of `cogcore serve` against `transformers serve` and llama.cpp's
`llama-server`, same checkpoint.

Starts the servers on 127.0.0.1, drives each with the same streaming chat load (fixed prompts,
fixed max_tokens, a bounded number of requests per concurrency level), the servers taking turns
at each level, and prints output tokens/s, TTFT and inter-token latency percentiles, and the
ratios.

    .venv/bin/python benchmarks/serve_throughput.py [--model DIR] [--clients 1,8,32]
        [--servers cogcore,transformers-cb,cogcore-base --base-src OLD_CHECKOUT]
        [--servers cogcore-llamacpp-q8_0,llama-server-q8_0 --llama-server PATH] [--out FILE]

`llama-server-<type>` serves the checkpoint's GGUF export at that type (the file the llama.cpp
engine serves, `artifacts/cache/gguf/`) with `--parallel 32` slots and continuous batching;
`--llama-server` names the binary (`make llama-server` builds it). Each server's peak resident
memory (VmHWM) is reported at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from loadtest.server import free_port, memory_mib, served_model

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


def gguf_export(model: Path, out_type: str) -> Path:
    """The checkpoint's GGUF at `out_type`, exported once (the llama.cpp engine's own cache)."""
    from service.llamacpp_setup import gguf_path
    from service.settings import Settings

    return gguf_path(Settings(model_dir=model, gguf_type=out_type))


def start_llama_server(binary: Path, model: Path, out_type: str, port: int, threads: int
                       ) -> subprocess.Popen:
    """llama.cpp's own server on the same checkpoint: 32 slots sharing one 16384-cell cache,
    as the llama.cpp engine's defaults."""
    cmd = [str(binary), "-m", str(gguf_export(model, out_type)), "--host", "127.0.0.1",
           "--port", str(port), "--threads", str(threads), "--threads-batch", str(threads),
           "--ctx-size", "16384", "--parallel", "32", "--cont-batching", "--kv-unified",
           "--no-webui", "--log-disable"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start(kind: str, model: Path, port: int, threads: int, base_src: Path | None = None,
          llama_server: Path | None = None) -> subprocess.Popen:
    """Start one server kind ('cogcore', 'cogcore-base': the code at `base_src`,
    'transformers', 'transformers-cb', 'llama-server-<type>')."""
    if kind.startswith("llama-server-"):
        if llama_server is None or not llama_server.is_file():
            raise SystemExit(f"{kind}: no llama-server binary at {llama_server} "
                             "(`make llama-server`, or --llama-server PATH)")
        return start_llama_server(llama_server, model, kind.removeprefix("llama-server-"),
                                  port, threads)
    cwd = base_src if kind == "cogcore-base" and base_src else REPO
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads),
           "COGCORE_LOAD_EMBEDDER": "false", "COGCORE_MAX_BATCH_SIZE": "32",
           "COGCORE_LOG_LEVEL": "WARNING"}
    if kind.startswith("cogcore-llamacpp-"):  # the llama.cpp engine at a GGUF type; torch
        # keeps the one thread the service gives it beside llama.cpp's, as served
        env.update({"COGCORE_ENGINE": "llamacpp", "COGCORE_LLAMACPP_THREADS": str(threads),
                    "COGCORE_GGUF_TYPE": kind.removeprefix("cogcore-llamacpp-")})
    else:
        env["COGCORE_TORCH_THREADS"] = str(threads)
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


REQUEST_NUMBERS = itertools.count()


async def drive(url: str, model: str, clients: int, requests: int, max_tokens: int,
                distinct: bool = False) -> Run:
    """`clients` concurrent loops sharing `requests` requests in total. With `distinct` each
    prompt opens with a number of its own, so that no server takes a whole earlier prompt
    from its prompt cache, only the chat template's turn."""
    run, queue = Run(), asyncio.Queue()
    for i in range(requests):
        prompt = PROMPTS[i % len(PROMPTS)]
        queue.put_nowait(f"Request {next(REQUEST_NUMBERS)}. {prompt}" if distinct else prompt)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            await one_request(client, url, model, queue.get_nowait(), max_tokens, run)

    # A connection per request: llama-server closes idle keep-alive connections after 5 s,
    # and a pooled one it closed fails the next request ("Server disconnected").
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=0)
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
          threads: int, base_src: Path | None = None, llama_server: Path | None = None,
          peaks: dict[str, float] | None = None, distinct: bool = False
          ) -> dict[str, dict[int, Run]]:
    """Start every server, then run each load level on each server in turn.

    The servers take turns level by level (in reversed order every other level) rather than
    one server after the other, because the shared machine's load drifts over minutes and the
    ratios must compare runs made under the same load. An idle server uses no CPU."""
    processes, urls = {}, {}
    try:
        for kind in kinds:
            port = free_port()
            urls[kind] = f"http://127.0.0.1:{port}"
            processes[kind] = start(kind, model, port, threads, base_src, llama_server)
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
                                            max_tokens, distinct))
                except httpx.HTTPError as exc:  # one server failing leaves the others' figures
                    print(f"{kind}: failed at {clients} clients: {exc!r}", flush=True)
                    failed.add(kind)
                    continue
                results[kind][clients] = run
                report(kind, clients, run)
        for kind, process in processes.items():
            if peaks is not None:
                peaks[kind] = memory_mib(process.pid, "VmHWM")
                print(f"{kind:16s} peak RSS {peaks[kind]:7.1f} MiB", flush=True)
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
    parser.add_argument("--llama-server", type=Path,
                        default=REPO / "artifacts/llama.cpp/bin/llama-server",
                        help="llama.cpp's server binary, for the 'llama-server-<type>' servers")
    parser.add_argument("--distinct", action="store_true",
                        help="no prompt twice: each opens with its own number (a prompt "
                             "cache then holds only the template's turn)")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    peaks: dict[str, float] = {}
    results = bench(args.servers.split(","), args.model, levels, args.max_tokens, args.rounds,
                    args.threads, args.base_src, args.llama_server, peaks, args.distinct)
    tps = {k: {c: r.tokens / r.wall_s for c, r in v.items()} for k, v in results.items()}
    for kind in tps:  # each llama.cpp engine against llama-server at the same type
        other = f"llama-server-{kind.removeprefix('cogcore-llamacpp-')}"
        if kind.startswith("cogcore-llamacpp-") and other in tps:
            for clients in sorted(set(tps[kind]) & set(tps[other])):
                print(f"{kind} / {other} at {clients} clients: "
                      f"{tps[kind][clients] / tps[other][clients]:.2f}x")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "command": " ".join(sys.argv), "model": str(args.model), "threads": args.threads,
            "max_tokens": args.max_tokens, "distinct": args.distinct, "peak_rss_mib": peaks,
            "servers": {k: {str(c): {"tokens_per_s": r.tokens / r.wall_s, "tokens": r.tokens,
                                     "ttft_p50_ms": pct(r.ttft, 50), "itl_p50_ms": pct(r.itl, 50)}
                            for c, r in v.items()} for k, v in results.items()},
            "load_average": os.getloadavg()}, indent=1))
    top = max(levels)
    if top in tps.get("cogcore", {}):
        ours = tps["cogcore"]
        print(f"cogcore {top} clients / 1 client: {ours[top] / ours[min(levels)]:.2f}x")
        for kind, other in tps.items():
            if kind != "cogcore" and top in other:
                print(f"cogcore / {kind} at {top} clients: {ours[top] / other[top]:.2f}x")


if __name__ == "__main__":
    main()
