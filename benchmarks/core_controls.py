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
        --out docs/pruning/controls

Writes OUT/controls.json, OUT/controls.md, OUT/controls.png and OUT/<name>.json per control
(a control whose result is already there is not evaluated again).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from evaluation.compare import paired_ratios
from evaluation.partial import FORGETTING_AND_READING, run

FORGETTING = ("closed-book heldout", "closed-book paraphrase")
READING = ("open-book", "counterfactual faithfulness", "fictional")


def _figures(base: dict, result: dict) -> dict:
    ratios = paired_ratios(base, result)
    row = {label: ratios[label] for label in FORGETTING + READING if label in ratios}
    row["reading (mean of three)"] = sum(row[r]["ratio"] for r in READING) / len(READING)
    return row


def _cell(entry: dict | float) -> str:
    if isinstance(entry, float):
        return f"{entry:.3f}"
    low, high = entry["low"], entry["high"]
    interval = "" if math.isnan(low) else f" [{low:.2f}, {high:.2f}]"
    return f"{entry['ratio']:.3f}{interval}"


def markdown(rows: dict[str, dict], command: str) -> str:
    columns = [*FORGETTING, *READING, "reading (mean of three)"]
    lines = ["# Forgetting against reading: the default core and its controls", "",
             "Ratios to the base, paired over items, with 95% bootstrap intervals. Lower is "
             "better for the closed-book columns (more forgotten), higher for the reading ones.",
             "", f"`{command}`", "",
             "| cut | " + " | ".join(columns) + " |", "|" + " --- |" * (len(columns) + 1)]
    lines += [f"| {name} | " + " | ".join(_cell(row[c]) for c in columns) + " |"
              for name, row in rows.items()]
    return "\n".join(lines) + "\n"


def plot(rows: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, row in rows.items():
        cb = row["closed-book heldout"]
        x, y = cb["ratio"], row["reading (mean of three)"]
        xerr = None if math.isnan(cb["low"]) else [[x - cb["low"]], [cb["high"] - x]]
        ax.errorbar(x, y, xerr=xerr, fmt="o", capsize=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 4))
    ax.scatter([1.0], [1.0], marker="*", s=120, color="black")
    ax.annotate("base", (1.0, 1.0), textcoords="offset points", xytext=(6, -10))
    ax.set_xlabel("closed-book recall, held-out (x base; lower forgets more)")
    ax.set_ylabel("reading, mean of three suites (x base)")
    ax.set_title("Forgetting against reading at 0.80x parameters")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, required=True,
                        help="eval.json of `cogcore eval --model BASE --compare CORE`")
    parser.add_argument("controls", nargs="+", help="NAME=CHECKPOINT")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    full = json.loads(args.eval.read_text())
    rows = {entry["name"]: _figures(full, entry) for entry in full["compare"]}
    args.out.mkdir(parents=True, exist_ok=True)
    for spec in args.controls:
        name, _, checkpoint = spec.partition("=")
        path = args.out / f"{name}.json"
        result = json.loads(path.read_text()) if path.is_file() else None
        if result is None or not set(FORGETTING_AND_READING) <= set(result["suites"]):
            result = run(Path(checkpoint), path)
        rows[name] = _figures(full, result)
    command = "python benchmarks/core_controls.py " + " ".join(
        [f"--eval {args.eval}", *args.controls, f"--out {args.out}"])
    (args.out / "controls.json").write_text(json.dumps(
        {"command": command, "base": full["model"], "rows": rows}, indent=2) + "\n")
    (args.out / "controls.md").write_text(markdown(rows, command))
    plot(rows, args.out / "controls.png")
    print(markdown(rows, command))


if __name__ == "__main__":
    main()
