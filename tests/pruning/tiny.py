"""Shared helpers of the pruning tests on the tiny fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pruning.pipeline import PruneConfig

# A random cut without refit and a trim to 300 tokens by rank: the fastest run that trims.
QUICK_TRIM = PruneConfig(method="random", width=96, refit=False, vocab_size=300,
                         vocab_selection="rank")


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny matrices gain nothing from threads, and on a busy 2-core machine they lose a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_fp32(directory: Path) -> AutoModelForCausalLM:
    """A checkpoint in float32, in eval mode."""
    return AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()


def base_and_tokenizer(directory: Path):  # noqa: ANN201 - a model and its tokenizer
    """The checkpoint in float32 and its tokenizer."""
    return load_fp32(directory), AutoTokenizer.from_pretrained(directory)


def kl_to_targets(student, targets, batches) -> float:  # noqa: ANN001 - a model and a Targets
    """Summed KL(target ‖ student) over the scored positions of `batches` (`pruning.heal`)."""
    total = 0.0
    with torch.no_grad():
        for batch in batches:
            ids, mask, where, probs = targets(batch)
            logp = student(input_ids=ids, attention_mask=mask).logits[where].log_softmax(-1)
            total += float((torch.xlogy(probs, probs) - probs * logp).sum())
    return total
