"""Compaction removes whole neurons: same logits as masking, and stock transformers reloads it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from cogcore.checkpoint import save_checkpoint
from evaluation.cost import parameter_counts
from pruning.compact import (
    CompactionError,
    compact_mlp,
    keep_top,
    mask_mlp,
    width_for_sparsity,
)
from pruning.scoring import score_random
from tests.pruning.tiny import load_fp32, one_thread  # noqa: F401 (autouse fixture)


def test_compacted_logits_equal_masked_and_reload(tiny_checkpoint: Path, tmp_path: Path) -> None:
    masked, compacted = load_fp32(tiny_checkpoint), load_fp32(tiny_checkpoint)
    keep = keep_top(score_random(masked, seed=3), width=80)
    mask_mlp(masked, keep)
    compact_mlp(compacted, keep)
    ids = torch.randint(0, compacted.config.vocab_size, (2, 17))
    with torch.no_grad():
        expected, got = masked(ids).logits, compacted(ids).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    save_checkpoint(compacted, tokenizer, tmp_path / "core")
    reloaded = load_fp32(tmp_path / "core")
    assert reloaded.config.intermediate_size == 80
    assert parameter_counts(reloaded)[0] == parameter_counts(compacted)[0] \
        < parameter_counts(masked)[0]
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, expected, rtol=1e-5, atol=1e-5)
    assert (tmp_path / "core" / "model.safetensors").is_file()
    assert (tmp_path / "core" / "generation_config.json").is_file()


def test_kept_rows_are_the_kept_neurons(tiny_qwen2_dir: Path) -> None:
    model = load_fp32(tiny_qwen2_dir)
    mlp = model.model.layers[0].mlp
    weight = mlp.up_proj.weight.detach().clone()
    keep = {layer: torch.tensor([5, 9, 100]) for layer in range(len(model.model.layers))}
    compact_mlp(model, keep)
    torch.testing.assert_close(model.model.layers[0].mlp.up_proj.weight, weight[[5, 9, 100]])
    assert model.model.layers[0].mlp.down_proj.weight.shape == (64, 3)


def test_mlp_biases_follow_their_neurons() -> None:
    config = LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=12, num_hidden_layers=1,
                         num_attention_heads=2, mlp_bias=True)
    masked = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in masked.parameters():
            p.normal_()
    compacted = LlamaForCausalLM(config).eval()
    compacted.load_state_dict(masked.state_dict())
    keep = {0: torch.tensor([0, 3, 7, 11])}
    compact_mlp(compacted, keep)
    mask_mlp(masked, keep)
    ids = torch.randint(0, 50, (1, 9))
    with torch.no_grad():
        torch.testing.assert_close(compacted(ids).logits, masked(ids).logits)


def test_uneven_widths_are_refused(tiny_llama_dir: Path) -> None:
    model = load_fp32(tiny_llama_dir)
    keep = {0: torch.arange(10), 1: torch.arange(11)}
    with pytest.raises(CompactionError, match="same count"):
        compact_mlp(model, keep)


def test_width_for_sparsity(tiny_llama_dir: Path) -> None:
    model = load_fp32(tiny_llama_dir)
    assert width_for_sparsity(model, 0.25) == 96
    with pytest.raises(CompactionError):
        width_for_sparsity(model, 1.0)
