"""eval.json, eval.md and PNG plots for one checkpoint or several side by side."""

from __future__ import annotations

import json
from pathlib import Path

# (label, path into a result) of the headline figures, in table and plot order.
HEADLINE = (
    ("closed-book calibration", ("suites", "closed_book", "calibration", "accuracy")),
    ("closed-book heldout", ("suites", "closed_book", "heldout", "accuracy")),
    ("open-book", ("suites", "open_book", "accuracy")),
    ("counterfactual faithfulness", ("suites", "counterfactual", "faithfulness")),
    ("counterfactual memory override", ("suites", "counterfactual", "memory_override")),
    ("fictional", ("suites", "fictional", "accuracy")),
    ("reasoning (headline tasks)", ("suites", "reasoning", "accuracy")),
)
N_PATH = {"counterfactual": ("suites", "counterfactual", "n")}


def _get(result: dict, path: tuple[str, ...]) -> float:
    value: object = result
    for key in path:
        value = value[key]  # type: ignore[index]
    return float(value)  # type: ignore[arg-type]


def _n(result: dict, path: tuple[str, ...]) -> int:
    """The item count beside a figure: the `n` of the dict that holds it."""
    return int(_get(result, (*path[:-1], "n")))


def write_json(results: list[dict], out: Path) -> Path:
    """eval.json: the first model's figures at the top level, the others under `compare`."""
    first, *others = results
    path = out / "eval.json"
    path.write_text(json.dumps({**first, "compare": others}, indent=2) + "\n")
    return path


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def _headline_rows(results: list[dict]) -> list[list[str]]:
    rows = [[label, *(f"{_get(r, p):.3f} (n={_n(r, p)})" for r in results)]
            for label, p in HEADLINE]
    rows.append(["perplexity (per word)",
                 *(f"{r['suites']['perplexity']['value']:.2f}" for r in results)])
    for key, fmt in (("params", "{:,}"), ("non_embedding_params", "{:,}"),
                     ("checkpoint_bytes", "{:,}")):
        rows.append([key, *(fmt.format(r[key]) for r in results)])
    for key in ("tokens_per_s_batch1", "tokens_per_s_batch32"):
        rows.append([key, *(f"{r['speed'][key]:.1f}" for r in results)])
    rows.append(["peak RSS (MiB)", *(f"{r['peak_rss_bytes'] / 2**20:.0f}" for r in results)])
    rows.append(["eval seconds", *(f"{r['seconds']:.0f}" for r in results)])
    return rows


def _reasoning_rows(results: list[dict]) -> list[list[str]]:
    tasks = results[0]["suites"]["reasoning"]["tasks"]
    headline = results[0]["suites"]["reasoning"]["headline_tasks"]
    return [
        [f"{t}{' *' if t in headline else ''}", f"{tasks[t]['chance']:.2f}",
         *(f"{r['suites']['reasoning']['tasks'][t]['accuracy']:.2f}" for r in results)]
        for t in tasks
    ]


def _relation_rows(results: list[dict]) -> list[list[str]]:
    relations = results[0]["suites"]["closed_book"]["heldout"]["per_relation"]
    return [
        [rel, str(relations[rel]["n"]),
         *(f"{r['suites']['closed_book']['heldout']['per_relation'][rel]['accuracy']:.2f}"
           for r in results)]
        for rel in relations
    ]


def write_markdown(results: list[dict], out: Path, plots: list[Path]) -> Path:
    """eval.md: the headline table, reasoning per task, closed-book per relation, the plots."""
    names = [r["name"] for r in results]
    parts = [
        "# Evaluation", "",
        f"Mode: {results[0]['mode']}. Models: " + ", ".join(f"`{r['model']}`" for r in results),
        "", "## Headline", "", _table(["figure", *names], _headline_rows(results)), "",
        "## Reasoning tasks (log-likelihood multiple choice; * = in the headline mean)", "",
        _table(["task", "chance", *names], _reasoning_rows(results)), "",
        "## Closed-book heldout accuracy per relation", "",
        _table(["relation", "n", *names], _relation_rows(results)), "",
        f"Perplexity text: {results[0]['suites']['perplexity']['source']}, "
        f"{results[0]['suites']['perplexity']['words']} words.", "",
        *(f"![{p.stem}]({p.name})" for p in plots),
    ]
    path = out / "eval.md"
    path.write_text("\n".join(parts) + "\n")
    return path


def write_plots(results: list[dict], out: Path) -> list[Path]:
    """Two PNGs: headline figures per model, and reasoning tasks per model beside chance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / len(results)
    paths = []
    panels = (
        ("eval-headline", [label for label, _ in HEADLINE],
         lambda r: [_get(r, p) for _, p in HEADLINE], None),
        ("eval-reasoning", list(results[0]["suites"]["reasoning"]["tasks"]),
         lambda r: [t["accuracy"] for t in r["suites"]["reasoning"]["tasks"].values()],
         [t["chance"] for t in results[0]["suites"]["reasoning"]["tasks"].values()]),
    )
    for stem, labels, values, chance in panels:
        fig, ax = plt.subplots(figsize=(10, 4.5))
        for i, result in enumerate(results):
            xs = [x + i * width for x in range(len(labels))]
            ax.bar(xs, values(result), width, label=result["name"])
        if chance is not None:
            ax.scatter([x + 0.4 - width / 2 for x in range(len(labels))], chance, marker="_",
                       s=400, color="black", label="chance", zorder=3)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(labels))], labels, rotation=20,
                      ha="right")
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        ax.legend()
        fig.tight_layout()
        path = out / f"{stem}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def write_report(results: list[dict], out: Path) -> list[Path]:
    """Write eval.json, eval.md and the plots into `out`; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(results, out)
    return [write_json(results, out), write_markdown(results, out, plots), *plots]
