"""The Pareto picture of pruned cores: closed-book recall kept against reading kept, per core.

Every figure is a ratio to the base with its 95% paired interval, from reports already written.

Each input is `LABEL=PATH`: either a report with an `against_base` map (label -> {ratio, low,
high, base, model, n}, as `python benchmarks/reading_heal.py report` writes), or a full
`cogcore eval` run's eval.json, whose base is paired with its compared model `compare[I]`
through `evaluation.compare.paired_ratios` (`LABEL=PATH#I`, I = 0 when left out). Usage:

    python benchmarks/core_frontier.py default=docs/pruning/core-v2-eval/eval.json \
        r50-lr3e5=docs/pruning/heal-reading-eot-r50-lr3e5.json --out docs/pruning/frontier

x is closed-book recall on the held-out facts (lower forgets more), y is reading: the mean of
open-book, counterfactual faithfulness and fictional (of those measured; a point missing one is
flagged). y's bars span the suites' intervals (the lowest low to the highest high): an envelope
of the three, wider than the mean's own interval, which the reports cannot give (it needs the
per-item results of all three together). A point is Pareto-efficient when no other point has
less closed-book recall and at least as much reading (or at least as little and more). Points
without closed-book heldout or any reading suite are listed as not measured and not plotted.

Writes OUT.json (every figure kept, for machines), OUT.md (the table) and OUT.png (the plot).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from evaluation.compare import PERPLEXITY

FORGETTING = "closed-book heldout"
PARAPHRASE = "closed-book paraphrase"
READING = ("open-book", "counterfactual faithfulness", "fictional")
OTHERS = ("reasoning: addition", *(label for label, _ in PERPLEXITY))
FIGURES = (FORGETTING, PARAPHRASE, *READING, *OTHERS)
# The target: facts mostly forgotten, reading all but kept.
TARGET_CLOSED_BOOK = 0.35
TARGET_READING = 0.95


def ratios_of(path: Path, index: int = 0) -> tuple[dict[str, dict], str]:
    """label -> {ratio, low, high, ...} against the base, and a line naming what was read."""
    data = json.loads(path.read_text())
    if "against_base" in data:
        name = data.get("core") or data.get("model", "?")
        return data["against_base"], f"{path} (against_base of {name})"
    if "compare" in data and "suites" in data:
        from evaluation.compare import paired_ratios

        compared = data["compare"][index]
        name = compared.get("name") or compared.get("model", "?")
        return paired_ratios(data, compared), f"{path}#{index} ({name} against {data['model']})"
    raise SystemExit(f"{path}: neither a report with against_base nor an eval.json with compare")


def _measured(entry: dict | None) -> bool:
    return entry is not None and _finite(entry.get("ratio"))


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def point(ratios: dict[str, dict], source: str) -> dict[str, Any]:
    """One row: the figures present (copied), the reading mean with its envelope, and whether
    it can be plotted (`plotted`) and why not (`missing`)."""
    row: dict[str, Any] = {"source": source,
                           "figures": {f: ratios[f] for f in FIGURES if f in ratios}}
    reading = [r for r in READING if _measured(ratios.get(r))]
    missing = [f for f in (FORGETTING, *READING) if not _measured(ratios.get(f))]
    row["missing"] = missing
    row["plotted"] = _measured(ratios.get(FORGETTING)) and bool(reading)
    if reading:
        lows = [ratios[r]["low"] for r in reading if _finite(ratios[r].get("low"))]
        highs = [ratios[r]["high"] for r in reading if _finite(ratios[r].get("high"))]
        row["reading"] = {"ratio": sum(ratios[r]["ratio"] for r in reading) / len(reading),
                          "low": min(lows) if lows else math.nan,
                          "high": max(highs) if highs else math.nan,
                          "of": reading, "partial": len(reading) < len(READING)}
    return row


def mark_pareto(rows: dict[str, dict]) -> list[str]:
    """Set `pareto` on every plotted row (less closed-book recall and more reading are better;
    the base is a reference, not a candidate) and return the efficient labels, by x."""
    plotted = {k: (r["figures"][FORGETTING]["ratio"], r["reading"]["ratio"])
               for k, r in rows.items() if r["plotted"]}
    efficient = []
    for label, (x, y) in plotted.items():
        dominated = any(ox <= x and oy >= y and (ox < x or oy > y)
                        for other, (ox, oy) in plotted.items() if other != label)
        rows[label]["pareto"] = not dominated
        rows[label]["in_target"] = x <= TARGET_CLOSED_BOOK and y >= TARGET_READING
        if not dominated:
            efficient.append(label)
    return sorted(efficient, key=lambda k: plotted[k])


def _cell(entry: dict | None) -> str:
    if not _measured(entry):
        return "–"
    interval = (f" [{entry['low']:.2f}, {entry['high']:.2f}]"
                if _finite(entry.get("low")) and _finite(entry.get("high")) else "")
    return f"{entry['ratio']:.3f}{interval}"


def markdown(rows: dict[str, dict], pareto: list[str], command: str, image: str) -> str:
    columns = (FORGETTING, PARAPHRASE, *READING, "reading (mean)", *OTHERS)
    lines = [
        "# Forgetting against reading: the Pareto picture", "",
        "Ratios to the base, paired over items, with 95% bootstrap intervals. Lower is better for "
        "the closed-book columns (more forgotten), higher for the reading ones. Reading (mean) is "
        "the mean of open-book, counterfactual faithfulness and fictional; its bracket is the "
        "envelope of their intervals (lowest low, highest high), not the mean's own interval. "
        f"Target: closed-book heldout <= {TARGET_CLOSED_BOOK} and reading >= {TARGET_READING}. "
        "Pareto: no other plotted point forgets at least as much and reads at least as well.",
        "", f"`{command}`", "",
        "| point | " + " | ".join(columns) + " | Pareto | in target |",
        "|" + " --- |" * (len(columns) + 3)]
    for label, row in rows.items():
        if not row["plotted"]:
            continue
        f, reading = row["figures"], row["reading"]
        mean = _cell(reading)
        if reading["partial"]:
            mean += f" (mean of {len(reading['of'])}: no " + ", ".join(
                r for r in READING if r not in reading["of"]) + ")"
        cells = [_cell(f.get(c)) for c in (FORGETTING, PARAPHRASE, *READING)]
        cells += [mean, *(_cell(f.get(c)) for c in OTHERS)]
        lines.append(f"| {label} | " + " | ".join(cells) + " | "
                     f"{'yes' if row['pareto'] else 'no'} | "
                     f"{'yes' if row['in_target'] else 'no'} |")
    lines += ["", "Pareto-efficient, by closed-book recall: " + (", ".join(pareto) or "none"), ""]
    unplotted = [(label, row) for label, row in rows.items() if not row["plotted"]]
    if unplotted:
        lines += ["## Not measured (not plotted)", ""]
        for label, row in unplotted:
            known = ", ".join(f"{c} {_cell(e)}" for c, e in row["figures"].items()
                              if _measured(e)) or "nothing"
            lines.append(f"- {label}: no {', '.join(row['missing'])}; has {known} "
                         f"(`{row['source']}`)")
        lines.append("")
    lines += ["## Sources", "", *(f"- {label}: `{row['source']}`" for label, row in rows.items()),
              "", f"![forgetting against reading]({image})"]
    return "\n".join(lines) + "\n"


def plot(rows: dict[str, dict], pareto: list[str], path: Path) -> None:
    """Closed-book recall (x) against reading (y), the Pareto front joined, target box shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    ax.add_patch(Rectangle((0, TARGET_READING), TARGET_CLOSED_BOOK, 1.2 - TARGET_READING,
                           facecolor="tab:green", alpha=0.12, edgecolor="tab:green",
                           linestyle="--", label=f"target (<= {TARGET_CLOSED_BOOK}, "
                                                 f">= {TARGET_READING})"))
    plotted = {k: r for k, r in rows.items() if r["plotted"]}
    for label, row in plotted.items():
        cb, reading = row["figures"][FORGETTING], row["reading"]
        x, y = cb["ratio"], reading["ratio"]
        xerr = ([[x - cb["low"]], [cb["high"] - x]]
                if _finite(cb.get("low")) and _finite(cb.get("high")) else None)
        yerr = ([[y - reading["low"]], [reading["high"] - y]]
                if _finite(reading["low"]) and _finite(reading["high"]) else None)
        color = "tab:red" if row["pareto"] else "tab:blue"
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", capsize=3, color=color,
                    markerfacecolor="white" if reading["partial"] else color, alpha=0.85)
        name = label + (" *" if reading["partial"] else "")
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    if pareto:
        front = sorted((plotted[k]["figures"][FORGETTING]["ratio"], plotted[k]["reading"]["ratio"])
                       for k in pareto)
        ax.plot(*zip(*front, strict=True), color="tab:red", linewidth=1, alpha=0.6)
    ax.errorbar([], [], fmt="o-", color="tab:red", label="Pareto-efficient")
    ax.errorbar([], [], fmt="o", color="tab:blue", label="dominated")
    if any(r["reading"]["partial"] for r in plotted.values()):
        ax.errorbar([], [], fmt="o", color="grey", markerfacecolor="white",
                    label="* reading without every suite")
    ax.scatter([1.0], [1.0], marker="*", s=160, color="black", zorder=3, label="base")
    unplotted = [k for k, r in rows.items() if not r["plotted"]]
    if unplotted:
        ax.text(0.01, 0.01, "not measured, not plotted: " + ", ".join(unplotted),
                transform=ax.transAxes, fontsize=7, color="grey", va="bottom", wrap=True)
    ax.set_xlim(0, 1.1)
    top = max([1.05, *(r["reading"]["high"] for r in plotted.values()
                       if _finite(r["reading"]["high"]))])
    bottom = min([0.5, *(r["reading"]["low"] for r in plotted.values()
                         if _finite(r["reading"]["low"]))])
    ax.set_ylim(bottom - 0.05, top + 0.05)
    ax.set_xlabel("closed-book recall, held-out facts (x base; lower forgets more)")
    ax.set_ylabel("reading: mean of open-book, counterfactual, fictional (x base)")
    ax.set_title("Forgetting against reading (target: upper left)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _beside(out: Path, suffix: str) -> Path:
    return out.parent / (out.name + suffix)


def frontier(specs: list[str], out: Path, command: str) -> dict[str, Any]:
    """Read every `LABEL=PATH[#I]`, write OUT.json, OUT.md and OUT.png; the JSON written."""
    from evaluation.report import strict_json

    rows: dict[str, dict] = {}
    for spec in specs:
        label, sep, target = spec.partition("=")
        if not sep or not label:
            raise SystemExit(f"{spec!r}: expected LABEL=PATH or LABEL=PATH#I")
        path, _, index = target.partition("#")
        rows[label] = point(*ratios_of(Path(path), int(index or 0)))
    pareto = mark_pareto(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    image = _beside(out, ".png")
    plot(rows, pareto, image)
    result = {"command": command, "x": FORGETTING, "y": "mean of " + ", ".join(READING),
              "y_interval": "envelope of the reading suites' intervals (min low, max high)",
              "target": {"closed_book_at_most": TARGET_CLOSED_BOOK,
                         "reading_at_least": TARGET_READING},
              "pareto": pareto, "points": rows}
    _beside(out, ".json").write_text(json.dumps(strict_json(result), indent=2) + "\n")
    _beside(out, ".md").write_text(markdown(rows, pareto, command, image.name))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("points", nargs="+", help="LABEL=PATH or LABEL=PATH#I (an eval.json)")
    parser.add_argument("--out", type=Path, required=True,
                        help="stem: writes OUT.json, OUT.md and OUT.png")
    args = parser.parse_args(argv)
    command = "python benchmarks/core_frontier.py " + " ".join(
        [*args.points, f"--out {args.out}"])
    frontier(args.points, args.out, command)
    print(_beside(args.out, ".md").read_text(), end="")


if __name__ == "__main__":
    main()
