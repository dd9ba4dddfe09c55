"""`cogcore eval`: measure memorization against reading and reasoning on any checkpoint."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import typer
from rich.console import Console

from cli.export import GGUFType
from cogcore.errors import CogcoreError
from cogcore.paths import default_base_dir

console = Console(stderr=True)


class EvalError(CogcoreError):
    """A checkpoint or an earlier report that the evaluation cannot use."""


def _earlier_result(directory: Path) -> dict | None:
    """The first model's figures of an earlier `cogcore eval --out DIR`, when DIR is one."""
    report = directory / "eval.json"
    if not report.is_file():
        return None
    result = json.loads(report.read_text())
    result.pop("compare", None)
    result.pop("ratios", None)  # ratios are recomputed against this run's first model
    return result


def _evaluate(directory: Path, isolated: bool, **options) -> dict:
    from evaluation.run import evaluate_checkpoint

    if not (directory / "config.json").is_file():
        raise EvalError(f"{directory} is neither a checkpoint nor an earlier eval output")
    if not isolated:
        return evaluate_checkpoint(directory, **options)
    # Each checkpoint in its own process, so that its peak memory is its own.
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(evaluate_checkpoint, directory, **options).result()


def evaluate(
    model: Path = typer.Option(None, help="Checkpoint directory [default: the imported base]"),
    compare: list[Path] = typer.Option(
        None, help="More checkpoints (or earlier eval output dirs) to put side by side"
    ),
    quick: bool = typer.Option(False, help="A fixed small subset (what CI runs)"),
    out: Path = typer.Option(..., help="Directory for eval.json, eval.md and the plots"),
    batch_size: int = typer.Option(32, min=1, help="Generation batch size"),
    gguf: GGUFType = typer.Option(
        None, help="Measure each checkpoint's GGUF export at this type on llama.cpp in-process "
        "(the llamacpp extra) instead of the checkpoint on torch"),
) -> None:
    """Closed-book, open-book, counterfactual, fictional, reasoning, perplexity and cost."""
    from evaluation.report import write_report

    if gguf is not None:
        from cogcore.llamacpp import import_llama_cpp

        import_llama_cpp()  # without the extra: one clear line now, not after loading
    directories = [model or default_base_dir(), *(compare or [])]
    earlier = [_earlier_result(d) for d in directories]
    isolated = sum(e is None for e in earlier) > 1
    results = []
    for directory, result in zip(directories, earlier, strict=True):
        if result is None:
            result = _evaluate(directory, isolated, quick=quick, batch_size=batch_size,
                               gguf_type=gguf and gguf.value)
        else:
            console.print(f"reusing the figures of {result['model']} from {directory}/eval.json")
        results.append(result)
    for path in write_report(results, out):
        typer.echo(str(path))
