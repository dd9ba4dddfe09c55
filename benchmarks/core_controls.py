"""Forgetting against reading: the default core beside cuts of the same size chosen at random and
by magnitude, each pushed through the same pipeline (same width, refit and vocabulary trim).

The base and the default core come from one full `cogcore eval` run (its eval.json keeps every
per-item result); each control is evaluated on the forgetting and reading suites only, at the
full mode's sizes (`evaluation.partial`), and paired with the base item by item, so every ratio
has a 95% interval. Build the controls first, for example:

    cogcore prune --method random --width 1367 --vocab-size 16384 --vocab-selection rank \
        --refit-prose-chars 200000 --calibration 64 --eval none --out artifacts/tmp/ctrl-random

then:

    python benchmarks/core_controls.py --eval docs/pruning/core-v2-eval/eval.json \
        random=artifacts/tmp/ctrl-random magnitude=artifacts/tmp/ctrl-magnitude \
        --out docs/pruning/controls [--also LABEL=REPORT.json ...]

The core the controls stand beside is the eval.json's compared core, labelled `default`, unless
`--core LABEL=REPORT.json` names another (an `against_base` report, as `benchmarks/reading_heal.py
report` writes): controls built with healing pair with a healed core of the same recipe.

Writes OUT/<name>.json per control (its partial result with `against_base`, the paired ratios;
a control whose result is already there is not evaluated again) and the Pareto picture of the
default core, the controls and any `--also` report (`benchmarks/core_frontier.py`):
OUT/controls.json, OUT/controls.md and OUT/controls.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from core_frontier import frontier  # noqa: E402

from evaluation.compare import paired_ratios  # noqa: E402
from evaluation.partial import FORGETTING_AND_READING, run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, required=True,
                        help="eval.json of `cogcore eval --model BASE --compare CORE`")
    parser.add_argument("controls", nargs="+", help="NAME=CHECKPOINT")
    parser.add_argument("--also", action="append", default=[],
                        help="LABEL=REPORT.json (an `against_base` report) to draw beside them")
    parser.add_argument("--core", help="LABEL=REPORT.json: the core the controls stand beside "
                        "(default: the eval.json's compared core, as `default`)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    full = json.loads(args.eval.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    points = [args.core or f"default={args.eval}"]
    for spec in args.controls:
        name, _, checkpoint = spec.partition("=")
        path = args.out / f"{name}.json"
        result = json.loads(path.read_text()) if path.is_file() else None
        if result is None or not set(FORGETTING_AND_READING) <= set(result["suites"]):
            result = run(Path(checkpoint), path)
        result["against_base"] = paired_ratios(full, result)
        path.write_text(json.dumps(result, indent=2) + "\n")
        points.append(f"{name}={path}")
    command = "python benchmarks/core_controls.py " + " ".join(
        [f"--eval {args.eval}", *args.controls, *([f"--core {args.core}"] if args.core else []),
         *(f"--also {a}" for a in args.also),
         f"--out {args.out}"])
    frontier(points + args.also, args.out / "controls", command)
    print((args.out / "controls.md").read_text(), end="")


if __name__ == "__main__":
    main()
