"""eval.json, eval.md and PNG plots for one checkpoint or several side by side."""

from __future__ import annotations

import json
import math
from pathlib import Path

from evaluation.compare import LEVEL, PERPLEXITY, paired_ratios

# (label, path into a result) of the headline figures, in table and plot order.
HEADLINE = (
    ("closed-book calibration", ("suites", "closed_book", "calibration", "accuracy")),
    ("closed-book heldout", ("suites", "closed_book", "heldout", "accuracy")),
    ("closed-book paraphrase", ("suites", "closed_book", "paraphrase", "accuracy")),
    ("open-book", ("suites", "open_book", "accuracy")),
    ("counterfactual faithfulness", ("suites", "counterfactual", "faithfulness")),
    ("counterfactual memory override", ("suites", "counterfactual", "memory_override")),
    ("fictional", ("suites", "fictional", "accuracy")),
    ("reasoning (headline tasks)", ("suites", "reasoning", "accuracy")),
)
N_PATH = {"counterfactual": ("suites", "counterfactual", "n")}




def _get(result: dict, path: tuple[str, ...]) -> float:
    """The figure at `path`; NaN when an older result lacks it."""
    value: object = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return math.nan
        value = value[key]
    return float(value)  # type: ignore[arg-type]


def _n(result: dict, path: tuple[str, ...]) -> int:
    """The item count beside a figure: the `n` of the dict that holds it."""
    n = _get(result, (*path[:-1], "n"))
    return 0 if math.isnan(n) else int(n)


def strict_json(value: object) -> object:
    """NaN and infinities as null, so that a report stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    return value


def ratios_of(results: list[dict]) -> list[dict]:
    """Every other model's headline ratios to the first one, with 95% paired intervals."""
    first, *others = results
    return [{"model": o["name"], "to": first["name"], "level": LEVEL,
             "figures": paired_ratios(first, o)} for o in others]


def write_json(results: list[dict], out: Path) -> Path:
    """eval.json: the first model's figures at the top level, the others under `compare`, and
    each other model's ratios to the first (95% paired-bootstrap intervals) under `ratios`."""
    first, *others = results
    path = out / "eval.json"
    ratios = [strict_json(r) for r in ratios_of(results)]
    path.write_text(json.dumps({**first, "compare": others, "ratios": ratios}, indent=2)
                    + "\n")
    return path


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def _headline_rows(results: list[dict]) -> list[list[str]]:
    rows = [[label, *(f"{_get(r, p):.3f} (n={_n(r, p)})" for r in results)]
            for label, p in HEADLINE]
    for label, key in PERPLEXITY:
        rows.append([label, *(f"{_get(r, ('suites', key, 'value')):.2f}" for r in results)])
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


def _relation_rows(results: list[dict], split: str = "heldout") -> list[list[str]]:
    relations = results[0]["suites"]["closed_book"][split]["per_relation"]
    return [
        [rel, str(relations[rel]["n"]),
         *(f"{_get(r, ('suites', 'closed_book', split, 'per_relation', rel, 'accuracy')):.2f}"
           for r in results)]
        for rel in relations
    ]


def _paraphrase_section(results: list[dict]) -> list[str]:
    if "paraphrase" not in results[0]["suites"]["closed_book"]:
        return []
    return ["## Closed-book paraphrase accuracy per relation (held-out entities, other "
            "templates, forms and relations)", "",
            _table(["relation", "n", *[r["name"] for r in results]],
                   _relation_rows(results, "paraphrase")), ""]


def _interval(entry: dict) -> str:
    if entry.get("unpaired"):
        return f"n/a ({entry['unpaired']})"
    ratio, low, high = entry["ratio"], entry["low"], entry["high"]
    if not math.isfinite(ratio):
        return "n/a (the base scores zero)"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{ratio:.3f} (no interval)"
    return f"{ratio:.3f} [{low:.3f}, {high:.3f}]"


def _ratio_sections(results: list[dict]) -> list[str]:
    parts: list[str] = []
    for entry in ratios_of(results):
        rows = [[label, f"{f.get('base', math.nan):.3f}", f"{f.get('model', math.nan):.3f}",
                 str(f.get("n", "")), _interval(f)]
                for label, f in entry["figures"].items()]
        parts += [
            f"## Ratios {entry['model']} / {entry['to']} ({entry['level']:.0%} interval: paired "
            "bootstrap over items, over windows for perplexity; 2000 resamples, seed 0)", "",
            _table(["figure", entry["to"], entry["model"], "n", "ratio [95% interval]"], rows),
            "",
        ]
    return parts


def _perplexity_lines(results: list[dict]) -> list[str]:
    lines = []
    for label, key in PERPLEXITY:
        figures = results[0]["suites"].get(key)
        if figures:
            lines.append(f"{label.capitalize()}: {figures['source']}, {figures['words']} words"
                         f" in {len(figures.get('windows', [])) or '?'} windows.")
    return lines


def write_markdown(results: list[dict], out: Path, plots: list[Path]) -> Path:
    """eval.md: the headline table, reasoning per task, closed-book per relation, the plots."""
    names = [r["name"] for r in results]
    parts = [
        "# Evaluation", "",
        f"Mode: {results[0]['mode']}. Models: " + ", ".join(f"`{r['model']}`" for r in results),
        "", "## Headline", "", _table(["figure", *names], _headline_rows(results)), "",
        *_ratio_sections(results),
        "## Reasoning tasks (log-likelihood multiple choice; * = in the headline mean)", "",
        _table(["task", "chance", *names], _reasoning_rows(results)), "",
        "## Closed-book heldout accuracy per relation", "",
        _table(["relation", "n", *names], _relation_rows(results)), "",
        *_paraphrase_section(results),
        *_perplexity_lines(results), "",
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
         lambda r: [_get(r, ("suites", "reasoning", "tasks", t, "accuracy"))
                    for t in results[0]["suites"]["reasoning"]["tasks"]],
         [t["chance"] for t in results[0]["suites"]["reasoning"]["tasks"].values()]),
    )
    for stem, labels, values, chance in panels:
        fig, ax = plt.subplots(figsize=(10, 4.5))
        for i, result in enumerate(results):
            xs = [x + i * width for x in range(len(labels))]
            ax.bar(xs, [0.0 if math.isnan(v) else v for v in values(result)], width,
               label=result["name"])
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
