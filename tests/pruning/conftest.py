"""Fixtures shared by the pruning tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from pruning.calibration import CalibrationSets, calibration_sets


@pytest.fixture(scope="module")
def tiny_sets(tiny_llama_dir: Path) -> CalibrationSets:
    """Four examples per calibration set, from the real evaluation data, tokenized."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    return calibration_sets(tokenizer, 4, batch_size=4, max_tokens=96)
