"""Base and core side by side: the evaluation suites, throughput, and the done-when checks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
from rich.console import Console
from rich.progress import Progress

from pruning.evaluation.generation import OnBatch
from pruning.evaluation.lm import HFEvalModel
from pruning.evaluation.suites import Sizes, run_suites

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

console = Console(stderr=True)
THROUGHPUT_TOKENS = 32
THROUGHPUT_PROMPT = "Explain in a few sentences why the sky is blue."


@contextmanager
def progress_tracker(prefix: str) -> Iterator:
    """A `Tracker` for `run_suites`: one rich progress bar per suite step."""
    with Progress(console=console, transient=True) as progress:

        def track(label: str, total: int) -> OnBatch:
            task = progress.add_task(f"{prefix} {label}", total=total)
            return lambda done: progress.advance(task, done)

        yield track


@torch.inference_mode()
def tokens_per_second(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch: int, repeats: int = 2
) -> float:
    """Generated tokens per second, greedy, `THROUGHPUT_TOKENS` new tokens per row, best of N."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": THROUGHPUT_PROMPT}], add_generation_prompt=True,
        tokenize=False,
    )
    ids = tokenizer([text] * batch, return_tensors="pt", add_special_tokens=False)
    ids = {k: v.to(model.device) for k, v in ids.items()}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    best = 0.0
    for _ in range(repeats):
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model.generate(**ids, max_new_tokens=THROUGHPUT_TOKENS, min_new_tokens=THROUGHPUT_TOKENS,
                       do_sample=False, pad_token_id=pad)
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, batch * THROUGHPUT_TOKENS / (time.perf_counter() - start))
    return best


def evaluate(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, sizes: Sizes, label: str,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Every suite plus generation throughput at batch 1 and 32."""
    # The suites build their tensors with torch factories: make those land on the model's device.
    with progress_tracker(label) as track, torch.device(model.device):
        suites = run_suites(HFEvalModel(model, tokenizer, batch_size), sizes, track)
    suites["throughput"] = {
        f"batch_{b}": tokens_per_second(model, tokenizer, b) for b in (1, 32)
    }
    return suites


def headline(suites: dict[str, Any]) -> dict[str, float]:
    """The figures the done-when targets speak of, flat."""
    return {
        "closed_book_heldout": suites["closed_book"]["heldout"]["accuracy"],
        "closed_book_calibration": suites["closed_book"]["calibration"]["accuracy"],
        "open_book": suites["open_book"]["accuracy"],
        "counterfactual": suites["counterfactual"]["faithfulness"],
        "fictional": suites["fictional"]["accuracy"],
        "reasoning": suites["reasoning"]["accuracy"],
        "perplexity": suites["perplexity"]["value"],
        "tokens_per_s_batch_1": suites["throughput"]["batch_1"],
        "tokens_per_s_batch_32": suites["throughput"]["batch_32"],
    }


def done_when(base: dict[str, float], core: dict[str, float], params: float) -> dict[str, bool]:
    """Each target of issue 5, checked on the flat headline figures of base and core."""
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
