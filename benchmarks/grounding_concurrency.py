"""Time to first token at N concurrent chats, grounded (`retrieval: auto`) against the engine
alone (`retrieval: never`), through `cogcore loadtest` against real `cogcore serve` processes on
loopback (default core, default knowledge base).

    .venv/bin/python benchmarks/grounding_concurrency.py [--rounds 2] [--concurrency 32]
        [--before-src DIR] [--after-src DIR]

Each round starts a server, warms it up with one untimed level of each configuration, then
runs both back to back (their order alternating by round), so the machine's load falls
on both alike; the ratio grounded / engine-only is computed per round. `--before-src` names a
source tree of another revision (`git worktree add DIR REV`) whose server takes its turn in
every round too, with the same model and knowledge base: before and after in one run
(`--after-src`: a clean checkout of this revision, without uncommitted work).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cogcore.paths import artifacts_dir, default_kb_dir
from loadtest.server import Server, start, stop

CONFIGS = ("never", "auto")  # the engine alone, then grounded


def ttft_p50(server: Server, retrieval: str, args: argparse.Namespace, out: Path) -> float:
    """One `cogcore loadtest` level against `server`; its TTFT p50 in ms."""
    exe = str(Path(sys.executable).with_name("cogcore"))
    subprocess.run([exe, "loadtest", "--url", server.url, "--concurrency",
                    str(args.concurrency), "--requests", str(args.concurrency),
                    "--duration", str(args.duration),
                    "--max-tokens", str(args.max_tokens),
                    "--retrieval", retrieval, "--out", str(out)],
                   check=True, capture_output=True)
    level = json.loads((out / "loadtest.json").read_text())["levels"][0]
    return float(level["metrics"]["ttft_ms"]["median"])


def main() -> None:
    """Start the server(s), take turns, print and save the TTFTs and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=artifacts_dir() / "core" / "default")
    parser.add_argument("--kb", type=Path, default=default_kb_dir())
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--duration", type=float, default=240)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before-src", type=Path, default=None)
    parser.add_argument("--after-src", type=Path, default=None, help="default: this tree")
    parser.add_argument("--out", type=Path, default=artifacts_dir() / "reports" / "grounding")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sources = {"after": args.after_src} | ({"before": args.before_src} if args.before_src else {})
    results: dict[str, dict[str, list[float]]] = {s: {c: [] for c in CONFIGS} for s in sources}
    for round_ in range(args.rounds):
        for name, src in sources.items():
            # Read-only: the knowledge base stays open to other writers (tests, `kb build`).
            env = {"COGCORE_KB_READONLY": "1"} | ({"PYTHONPATH": str(src.resolve())} if src else {})
            server = start(args.model.resolve(), args.out / f"serve-{name}.log",
                           env=env, kb_dir=args.kb.resolve())
            try:
                # A fresh server's first levels are slow (allocations, first searches, KV
                # buffers growing to the replies' length): one untimed level of each.
                for config in CONFIGS:
                    ttft_p50(server, config, args, args.out / f"{name}-warm-up-{config}")
                for config in CONFIGS if round_ % 2 == 0 else reversed(CONFIGS):
                    out = args.out / f"{name}-{config}-{round_}"
                    results[name][config].append(ttft_p50(server, config, args, out))
                    print(name, config, round_, f"{results[name][config][-1]:.0f} ms",
                          flush=True)
            finally:
                stop(server)
    report = {"concurrency": args.concurrency, "max_tokens": args.max_tokens,
              "load_average": os.getloadavg(), "finished": time.strftime("%FT%TZ", time.gmtime()),
              "ttft_p50_ms": results,
              "grounded_over_engine_only": {
                  name: [round(g / e, 2) for g, e in zip(r["auto"], r["never"], strict=True)]
                  for name, r in results.items()},
              "median_ratio": {name: round(statistics.median(
                  g / e for g, e in zip(r["auto"], r["never"], strict=True)), 2)
                  for name, r in results.items()}}
    (args.out / "grounding_concurrency.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
