"""The one evaluation front-end: every suite and cost figure of a model, one progress display.

`evaluate_model` measures a model already in memory (what pruning runs use on base and core);
`evaluate_checkpoint` loads a checkpoint directory and adds what the disk says about it (what
`cogcore eval` writes to eval.json); `headline` flattens either into the figures targets use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cogcore.progress import progress_lines
from evaluation.cost import checkpoint_bytes, measure_speed, parameter_counts, peak_rss_bytes
from evaluation.data import closed_book_items
from evaluation.generation import OnBatch
from evaluation.lm import EvalModel, HFEvalModel
from evaluation.suites import FULL, QUICK, Sizes, run_suites

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

SPEED_TOKENS = {"full": 32, "quick": 8}
SPEED_PROMPTS = 32


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console,
    )


def _measure(lm: EvalModel, speed: Callable[[list[str], OnBatch], dict[str, Any]],
             tokenizer: PreTrainedTokenizerBase, sizes: Sizes, label: str,
             console: Console | None) -> dict[str, Any]:
    """Every suite on `lm`, then `speed(texts, on_batch)` on the speed prompts, one display (on
    a terminal; progress lines in a log)."""

    def steps(track: Callable[[str, int], OnBatch]) -> dict[str, Any]:
        suites = run_suites(lm, sizes, track)
        texts = [i.prompt.render(tokenizer)
                 for i in closed_book_items("heldout")[:SPEED_PROMPTS]]
        return {"suites": suites, "speed": speed(texts, track("speed (batch 1, 32)", 2))}

    console = console or Console(stderr=True)
    if not console.is_terminal:
        return steps(lambda step, total: progress_lines(f"{label}: {step}", total))
    with _progress(console) as progress:

        def track(step: str, total: int) -> OnBatch:
            task = progress.add_task(f"{label}: {step}", total=total)
            return lambda n: progress.advance(task, n)

        return steps(track)


def evaluate_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    sizes: Sizes,
    label: str,
    *,
    batch_size: int = 32,
    speed_tokens: int = SPEED_TOKENS["full"],
    console: Console | None = None,
) -> dict[str, Any]:
    """Every suite and the generation speed (batch 1 and 32) of a loaded model."""
    import torch

    # The suites build their tensors with torch factories: make those land on the model's device.
    with torch.device(model.device):
        return _measure(HFEvalModel(model, tokenizer, batch_size),
                        lambda texts, done: measure_speed(model, tokenizer, texts, speed_tokens,
                                                          done),
                        tokenizer, sizes, label, console)


def evaluate_gguf(
    directory: Path,
    tokenizer: PreTrainedTokenizerBase,
    eos_ids: set[int],
    gguf_type: str,
    sizes: Sizes,
    *,
    batch_size: int = 32,
    speed_tokens: int = SPEED_TOKENS["full"],
    console: Console | None = None,
) -> dict[str, Any]:
    """Every suite and the speed of the checkpoint's GGUF export at `gguf_type`, on llama.cpp
    in-process (exported once into artifacts/cache/gguf/)."""
    from cogcore.gguf_export import cached_export
    from evaluation.lm_llamacpp import LlamaCppEvalModel

    gguf = cached_export(directory, gguf_type)
    model = LlamaCppEvalModel(gguf, tokenizer, eos_ids, batch_size=batch_size)
    try:
        measured = _measure(model, lambda texts, done: model.speed(texts, speed_tokens, done),
                            tokenizer, sizes, f"{directory.name} {gguf_type}", console)
    finally:
        model.close()
    return {**measured, "gguf": {"type": gguf_type, "path": str(gguf),
                                 "bytes": gguf.stat().st_size}}


def evaluate_checkpoint(
    directory: Path,
    *,
    quick: bool = False,
    batch_size: int = 32,
    sizes: Sizes | None = None,
    gguf_type: str | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Every suite and cost figure of the checkpoint in `directory`, as eval.json holds them;
    with `gguf_type`, of its GGUF export at that type on llama.cpp (the `llamacpp` extra)."""
    import torch

    from cogcore.checkpoint import load_causal_lm

    started = time.perf_counter()
    torch.manual_seed(0)
    model, tokenizer = load_causal_lm(directory)
    sizes = sizes or (QUICK if quick else FULL)
    speed_tokens = SPEED_TOKENS["quick" if quick else "full"]
    if gguf_type is None:
        measured = evaluate_model(model, tokenizer, sizes, directory.name, batch_size=batch_size,
                                  speed_tokens=speed_tokens, console=console)
    else:
        eos = model.generation_config.eos_token_id  # what `generate` stops at
        eos = eos if eos is not None else tokenizer.eos_token_id
        measured = evaluate_gguf(
            directory, tokenizer, set(eos) if isinstance(eos, list) else {int(eos)}, gguf_type,
            sizes, batch_size=batch_size, speed_tokens=speed_tokens, console=console)
    params, non_embedding = parameter_counts(model)
    return {
        "model": str(directory),
        "name": directory.name if gguf_type is None else f"{directory.name} ({gguf_type})",
        "mode": "quick" if quick else "full",
        "sizes": asdict(sizes),
        "params": params,
        "non_embedding_params": non_embedding,
        "checkpoint_bytes": checkpoint_bytes(directory),
        **measured,
        "peak_rss_bytes": peak_rss_bytes(),
        "seconds": time.perf_counter() - started,
        "threads": torch.get_num_threads(),
    }


def headline(result: dict[str, Any]) -> dict[str, float]:
    """The figures targets speak of, flat, from `evaluate_model` or `evaluate_checkpoint`."""
    suites, speed = result["suites"], result["speed"]
    return {
        "closed_book_heldout": suites["closed_book"]["heldout"]["accuracy"],
        "closed_book_calibration": suites["closed_book"]["calibration"]["accuracy"],
        "closed_book_paraphrase": suites["closed_book"]["paraphrase"]["accuracy"],
        "open_book": suites["open_book"]["accuracy"],
        "counterfactual": suites["counterfactual"]["faithfulness"],
        "fictional": suites["fictional"]["accuracy"],
        "reasoning": suites["reasoning"]["accuracy"],
        "perplexity": suites["perplexity"]["value"],
        "perplexity_second": suites["perplexity_second"]["value"],
        "perplexity_third": suites["perplexity_third"]["value"],
        "tokens_per_s_batch_1": speed["tokens_per_s_batch1"],
        "tokens_per_s_batch_32": speed["tokens_per_s_batch32"],
    }
