"""Some suites of the full evaluation on one checkpoint, when the whole run does not fit.

    python -m evaluation.partial CHECKPOINT OUT.json [--suites a,b,...] [--tasks t1,t2,...]
        [--against EVAL.json]

runs the suites named (`evaluation.suites.SUITES`; default: closed_book, open_book,
counterfactual, fictional) at the full mode's sizes, writing OUT.json after each one. The
reasoning suite takes `--tasks` (default: `HEADLINE_TASKS`) at `FULL.reasoning_count(task)`
items each, one task at a time. Same code path as `cogcore eval`, so the figures equal the full
run's for those suites, per-item vectors included: `evaluation.compare.paired_ratios` pairs
them with a full run's result (suites absent from either side are left out), and `--against`
prints those ratios with their 95% intervals.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

from cogcore.progress import progress_lines
from evaluation.compare import paired_ratios
from evaluation.data import reasoning_items
from evaluation.lm import EvalModel, HFEvalModel
from evaluation.suites import FULL, HEADLINE_TASKS, SUITES, Sizes, reasoning_figures

FORGETTING_AND_READING = ("closed_book", "open_book", "counterfactual", "fictional")


def with_suites_of(full: dict, partials: Sequence[Path]) -> dict:
    """`full` (a run's result) with the suites it lacks taken from `partials`, partial runs of
    the same model: a suite added after the full run (the held-out perplexity text)."""
    suites = {}
    for path in partials:
        suites.update(json.loads(path.read_text())["suites"])
    return {**full, "suites": {**suites, **full["suites"]}}


def _reasoning(lm: EvalModel, tasks: Sequence[str], sizes: Sizes) -> dict:
    items, logliks = [], []
    for task in tasks:
        done = reasoning_items(task, "heldout", sizes.reasoning_count(task))
        logliks += lm.choice_logliks([(i.context, i.choices) for i in done],
                                     progress_lines(f"reasoning {task}", len(done)))
        items += done
    return reasoning_figures(items, logliks)


def _check(suites: Sequence[str]) -> None:
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise ValueError(f"unknown suites {unknown}; choose from {', '.join(SUITES)}")


def run(checkpoint: Path, out: Path, suites: Sequence[str] = FORGETTING_AND_READING,
        tasks: Sequence[str] = HEADLINE_TASKS, sizes: Sizes = FULL) -> dict:
    """Run `suites` on `checkpoint` at `sizes` and write their figures (with per-item results)
    to `out`."""
    import torch

    from cogcore.checkpoint import load_causal_lm

    _check(suites)
    torch.manual_seed(0)
    model, tokenizer = load_causal_lm(checkpoint)
    return run_model(model, tokenizer, str(checkpoint), out, suites, tasks, sizes)


def run_model(model, tokenizer, name: str, out: Path,  # noqa: ANN001 - any causal LM
              suites: Sequence[str] = FORGETTING_AND_READING,
              tasks: Sequence[str] = HEADLINE_TASKS, sizes: Sizes = FULL) -> dict:
    """`run` on a model already in memory (for example one trimmed for a measurement)."""
    import torch

    _check(suites)
    started = time.perf_counter()
    lm = HFEvalModel(model, tokenizer, 32)
    result: dict = {"model": name, "mode": "full (partial: evaluation.partial)",
                    "suites": {}, "threads": torch.get_num_threads()}
    for suite in suites:
        result["suites"][suite] = (_reasoning(lm, tasks, sizes) if suite == "reasoning"
                                   else SUITES[suite](lm, sizes, progress_lines))
        result["seconds"] = time.perf_counter() - started
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m evaluation.partial")
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--suites", default=",".join(FORGETTING_AND_READING),
                        help=f"comma-separated, from {', '.join(SUITES)}")
    parser.add_argument("--tasks", default=",".join(HEADLINE_TASKS),
                        help="the reasoning tasks, comma-separated")
    parser.add_argument("--against", type=Path, default=None,
                        help="a full run's eval.json: print the paired ratios to its model")
    parser.add_argument("--against-extra", type=Path, action="append", default=[],
                        help="a partial run of --against's model on suites its full run lacks "
                        "(repeatable)")
    args = parser.parse_args(argv)
    try:
        result = run(args.checkpoint, args.out, args.suites.split(","), args.tasks.split(","))
    except ValueError as error:
        parser.error(str(error))
    if args.against is not None:
        base = with_suites_of(json.loads(args.against.read_text()), args.against_extra)
        print(f"against {base['model']} (95% paired bootstrap intervals):")
        for label, entry in paired_ratios(base, result).items():
            print(f"  {label}: {entry['ratio']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]")


if __name__ == "__main__":
    main()
