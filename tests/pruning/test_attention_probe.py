"""`benchmarks/attention_probe.py`: dropping query heads equals silencing them, keeps the
key-value groups even and leaves a checkpoint stock transformers reloads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from tests.conftest import benchmark_module

probe = benchmark_module("attention_probe")


def _gqa_model(attention: str = "sdpa") -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=48, intermediate_size=40, num_hidden_layers=2,
                         num_attention_heads=6, num_key_value_heads=2, head_dim=8,
                         max_position_embeddings=64, tie_word_embeddings=True)
    config._attn_implementation = attention
    return LlamaForCausalLM(config).eval()


# Eager attention repeats the key-value heads by the module's group count, as a padded batch
# through SDPA does: both must see the group count the cut leaves.
@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@torch.no_grad()
def test_dropped_heads_equal_silenced_heads_and_reload(attention: str, tmp_path: Path) -> None:
    model = _gqa_model(attention)
    ids = torch.randint(0, 97, (2, 11))
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # a left-padded row
    drop = [[1, 5], [0, 3]]  # one head from each group of three, per layer
    silenced = _gqa_model(attention)
    for layer, gone in zip(silenced.model.layers, drop, strict=True):
        for h in gone:
            layer.self_attn.o_proj.weight[:, h * 8 : (h + 1) * 8] = 0
    probe.drop_heads(model, drop)
    assert model.config.num_attention_heads == 4
    assert model.model.layers[0].self_attn.q_proj.weight.shape == (32, 48)
    expected = silenced(ids, attention_mask=mask).logits
    torch.testing.assert_close(model(ids, attention_mask=mask).logits, expected)
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path,
                                                    attn_implementation=attention).eval()
    torch.testing.assert_close(reloaded(ids, attention_mask=mask).logits, expected)


def test_uneven_groups_are_refused() -> None:
    with pytest.raises(ValueError, match="uneven"):
        probe.drop_heads(_gqa_model(), [[0, 1], [0, 3]])


def test_weakest_head_of_each_group() -> None:
    scores = torch.tensor([0.5, 0.1, 0.9, 0.3, 0.8, 0.2])
    assert probe.weakest_per_group(scores, 2) == [1, 5]
