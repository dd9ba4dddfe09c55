"""Evaluate one checkpoint: every suite, the cost figures, one progress display."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pruning.evaluation.cost import (
    checkpoint_bytes,
    measure_speed,
    parameter_counts,
    peak_rss_bytes,
)
from pruning.evaluation.data import closed_book_items
from pruning.evaluation.generation import OnBatch
from pruning.evaluation.lm import HFEvalModel
from pruning.evaluation.suites import FULL, QUICK, Sizes, run_suites

SPEED_TOKENS = {"full": 32, "quick": 8}


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console,
    )


def evaluate_checkpoint(
    directory: Path,
    *,
    quick: bool = False,
    batch_size: int = 32,
    sizes: Sizes | None = None,
    console: Console | None = None,
) -> dict:
    """Every suite and cost figure of the checkpoint in `directory`, as eval.json holds them."""
    import torch

    from pruning.chat import load_causal_lm

    started = time.perf_counter()
    torch.manual_seed(0)
    model, tokenizer = load_causal_lm(directory)
    lm = HFEvalModel(model, tokenizer, batch_size=batch_size)
    sizes = sizes or (QUICK if quick else FULL)
    with _progress(console or Console(stderr=True)) as progress:

        def track(label: str, total: int) -> OnBatch:
            task = progress.add_task(f"{directory.name}: {label}", total=total)
            return lambda n: progress.advance(task, n)

        suites = run_suites(lm, sizes, track)
        texts = [i.prompt.render(tokenizer) for i in closed_book_items("heldout")[:32]]
        speed = measure_speed(model, tokenizer, texts, SPEED_TOKENS["quick" if quick else "full"],
                              track("speed (batch 1, 32)", 2))
    params, non_embedding = parameter_counts(model)
    return {
        "model": str(directory),
        "name": directory.name,
        "mode": "quick" if quick else "full",
        "sizes": asdict(sizes),
        "params": params,
        "non_embedding_params": non_embedding,
        "checkpoint_bytes": checkpoint_bytes(directory),
        "suites": suites,
        "speed": speed,
        "peak_rss_bytes": peak_rss_bytes(),
        "seconds": time.perf_counter() - started,
        "threads": torch.get_num_threads(),
    }
