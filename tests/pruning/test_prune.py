"""Every pruning method on the tiny Llama and Qwen2: smaller, and stock transformers loads it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pruning.calibration import CalibrationSets, calibration_sets
from pruning.compact import save_checkpoint
from pruning.pipeline import METHODS, PruneConfig, PruneConfigError, prune


@pytest.fixture(scope="module")
def tiny_sets(tiny_llama_dir: Path) -> CalibrationSets:
    """Four examples per calibration set, from the real evaluation data, tokenized."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    return calibration_sets(tokenizer, 4, batch_size=4, max_tokens=96)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny matrices gain nothing from threads, and on a busy 2-core machine they lose a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _load(directory: Path) -> AutoModelForCausalLM:
    return AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()


@pytest.mark.parametrize("method", METHODS)
def test_every_method_prunes_and_reloads(
    method: str, tiny_checkpoint: Path, tiny_sets: CalibrationSets, tmp_path: Path
) -> None:
    base = _load(tiny_checkpoint)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    width = None if method == "kfac" else 96
    result = prune(base, tiny_sets, PruneConfig(method=method, width=width, heal_steps=1))
    assert all(torch.equal(v, before[k]) for k, v in base.state_dict().items()), "base changed"
    save_checkpoint(result.model, AutoTokenizer.from_pretrained(tiny_checkpoint), tmp_path)
    core = _load(tmp_path)
    assert core.config.intermediate_size == (width or 128)
    if width is None:
        assert result.params_after == result.params_before
    else:
        assert result.params_after < result.params_before
        assert len(result.details["refit_residual"]) == core.config.num_hidden_layers
    ids = torch.randint(0, core.config.vocab_size, (1, 12))
    with torch.no_grad():
        assert torch.isfinite(core(ids).logits).all()


def test_config_errors_are_explicit(tiny_llama_dir: Path, tiny_sets: CalibrationSets) -> None:
    base = _load(tiny_llama_dir)
    with pytest.raises(PruneConfigError, match="unknown method"):
        prune(base, tiny_sets, PruneConfig(method="nope", width=64))
    with pytest.raises(PruneConfigError, match="kfac edits without cutting"):
        prune(base, tiny_sets, PruneConfig(method="kfac", width=64))
    with pytest.raises(PruneConfigError, match="needs a width"):
        prune(base, tiny_sets, PruneConfig(method="random"))
