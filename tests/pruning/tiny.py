"""Shared helpers of the pruning tests on the tiny fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM


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
