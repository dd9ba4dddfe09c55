"""Time to ready: how long `cogcore serve` takes from launch until /ready answers 200.

Usage: .venv/bin/python benchmarks/startup_time.py [--rounds 3] [--model DIR] [--kb DIR]
           [--compare NAME=COMMAND ...] [--out docs/startup.json]

Each round starts every command once on a copy of the knowledge base, the commands taking
turns so that the shared machine's load falls on all alike; a command is anything that takes
`cogcore serve`'s arguments (`--compare before=/path/to/old/cogcore` times an older checkout).
The copy is made once per command, and each command starts once untimed before the rounds:
the rounds time a restart, as a deployed service restarts, and a start that saves something
beside the knowledge base (a router it had to fit) has done so in its own copy by then.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cogcore.paths import default_core_dir, default_kb_dir
from loadtest.server import start, stop


def time_to_ready(command: str, model: Path, kb: Path, log: Path) -> float:
    """Seconds from launching `command serve` until /ready answers 200."""
    began = time.perf_counter()
    server = start(model, log, kb_dir=kb, cogcore=command, env={"COGCORE_LOG_LEVEL": "INFO"},
                   timeout_s=600)
    seconds = time.perf_counter() - began
    stop(server, timeout_s=60)
    return seconds


def main() -> None:
    """Start each command `--rounds` times, taking turns; print and save medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", type=Path, default=default_core_dir())
    parser.add_argument("--kb", type=Path, default=default_kb_dir())
    parser.add_argument("--compare", nargs="*", default=[], metavar="NAME=COMMAND")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    commands = {"this checkout": str(Path(sys.executable).with_name("cogcore"))}
    commands.update(dict(item.split("=", 1) for item in args.compare))
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory() as scratch:
        kbs = {name: Path(scratch) / f"kb-{i}" for i, name in enumerate(commands)}
        for name, kb in kbs.items():
            shutil.copytree(args.kb, kb, ignore=shutil.ignore_patterns("writer.lock"))
            time_to_ready(commands[name], args.model, kb, Path(scratch) / "warm-up.log")
        for round_ in range(args.rounds):
            for name, command in commands.items():
                log = Path(scratch) / f"{name}-{round_}.log".replace(" ", "_")
                seconds[name].append(time_to_ready(command, args.model, kbs[name], log))
                print(f"round {round_ + 1}: {name}: {seconds[name][-1]:.2f} s", flush=True)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    first = next(iter(medians.values()))
    report = {"command": " ".join(sys.argv), "model": str(args.model), "kb": str(args.kb),
              "rounds": args.rounds, "seconds": seconds, "median_s": medians,
              "ratio_to_this_checkout": {n: m / first for n, m in medians.items()}}
    for name, median in medians.items():
        print(f"{name}: median {median:.2f} s ({median / first:.2f}x this checkout)")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
