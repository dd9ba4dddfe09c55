"""core_report.json / .md and the sweep's table and plot: what a pruning run leaves for humans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIGURES = (
    ("closed_book_heldout", "held-out closed-book", "{:.3f}"),
    ("closed_book_calibration", "calibration closed-book", "{:.3f}"),
    ("open_book", "open-book reading", "{:.3f}"),
    ("counterfactual", "counterfactual faithfulness", "{:.3f}"),
    ("fictional", "fictional reading", "{:.3f}"),
    ("reasoning", "reasoning (headline)", "{:.3f}"),
    ("perplexity", "perplexity (general text)", "{:.2f}"),
    ("tokens_per_s_batch_1", "tokens/s, batch 1", "{:.1f}"),
    ("tokens_per_s_batch_32", "tokens/s, batch 32", "{:.1f}"),
)


def done_when(base: dict[str, float], core: dict[str, float], params: float) -> dict[str, bool]:
    """Each target of the pruning issue, checked on the flat headline figures of base and core."""
    return {
        "params <= 80% of base": params <= 0.80,
        "held-out closed-book <= 25% of base": core["closed_book_heldout"]
        <= 0.25 * base["closed_book_heldout"],
        "counterfactual >= base": core["counterfactual"] >= base["counterfactual"],
        "open-book >= 95% of base": core["open_book"] >= 0.95 * base["open_book"],
        "fictional >= 95% of base": core["fictional"] >= 0.95 * base["fictional"],
        "reasoning >= 95% of base": core["reasoning"] >= 0.95 * base["reasoning"],
        "perplexity <= 1.5x base": core["perplexity"] <= 1.5 * base["perplexity"],
        "tokens/s batch 1 >= base": core["tokens_per_s_batch_1"] >= base["tokens_per_s_batch_1"],
        "tokens/s batch 32 >= base": core["tokens_per_s_batch_32"]
        >= base["tokens_per_s_batch_32"],
    }


def _ratio(core: float, base: float) -> str:
    return f"{core / base:.2f}" if base else "n/a"


def figures_table(base: dict[str, float], core: dict[str, float]) -> list[str]:
    """Markdown rows: each headline figure for base and core, and their ratio."""
    rows = ["| figure | base | core | core / base |", "| --- | --- | --- | --- |"]
    for key, name, fmt in FIGURES:
        rows.append(f"| {name} | {fmt.format(base[key])} | {fmt.format(core[key])} | "
                    f"{_ratio(core[key], base[key])} |")
    return rows


def write_core_report(out: Path, report: dict[str, Any]) -> None:
    """Write `core_report.json` (everything) and `core_report.md` (the side-by-side view)."""
    (out / "core_report.json").write_text(json.dumps(report, indent=2) + "\n")
    params = report["params"]
    lines = [
        f"# Core report: {report['config']['method']}",
        "",
        f"Command: `{report['command']}`",
        "",
        f"- base: `{report['base']}`; core: `{report['out']}`",
        f"- parameters: {params['base'] / 1e6:.1f}M → {params['core'] / 1e6:.1f}M "
        f"({params['ratio']:.1%} of base); MLP width {report['width']}",
        "- time: " + ", ".join(f"{k} {v:.0f}s" for k, v in report["seconds"].items()),
        f"- device: {report['device']}; evaluation sizes: {report['sizes']}",
        "",
        *figures_table(report["base_figures"], report["core_figures"]),
        "",
        "## Done-when targets (issue 5)",
        "",
        *[f"- [{'x' if ok else ' '}] {name}" for name, ok in report["done_when"].items()],
        "",
        "## Config",
        "",
        "```json",
        json.dumps(report["config"], indent=2),
        "```",
    ]
    (out / "core_report.md").write_text("\n".join(lines) + "\n")


def sweep_markdown(sweep: dict[str, Any]) -> str:
    """The sweep as a Markdown table, one row per run, figures relative to the base."""
    base = sweep["base_figures"]
    lines = [
        "| run | params | held-out CB | CB / base | open-book | counterfact. | fictional | "
        "reasoning | ppl | reading ret. |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| base | 100% | {base['closed_book_heldout']:.3f} | 1.00 | {base['open_book']:.3f} | "
        f"{base['counterfactual']:.3f} | {base['fictional']:.3f} | {base['reasoning']:.3f} | "
        f"{base['perplexity']:.2f} | 1.00 |",
    ]
    for run in sweep["runs"]:
        f = run["figures"]
        lines.append(
            f"| {run['name']} | {run['params_ratio']:.0%} | {f['closed_book_heldout']:.3f} | "
            f"{run['closed_book_retention']:.2f} | {f['open_book']:.3f} | "
            f"{f['counterfactual']:.3f} | {f['fictional']:.3f} | {f['reasoning']:.3f} | "
            f"{f['perplexity']:.2f} | {run['reading_retention']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def sweep_plot(sweep: dict[str, Any], path: Path) -> None:
    """Held-out closed-book recall against reading retention, one marker per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for method in sorted({run["method"] for run in sweep["runs"]}):
        runs = [r for r in sweep["runs"] if r["method"] == method]
        ax.scatter([r["reading_retention"] for r in runs],
                   [r["closed_book_retention"] for r in runs], label=method, s=40)
        for r in runs:
            ax.annotate(r["label"], (r["reading_retention"], r["closed_book_retention"]),
                        fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.scatter([1.0], [1.0], marker="*", s=160, color="black", label="base")
    ax.axhline(0.25, color="grey", linestyle=":", linewidth=1)
    ax.axvline(0.95, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("reading retention (mean of open-book, counterfactual, fictional / base)")
    ax.set_ylabel("held-out closed-book recall / base")
    ax.set_title("Pruning: facts forgotten vs reading kept (target: lower right)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
