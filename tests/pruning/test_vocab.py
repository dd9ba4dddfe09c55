"""Vocabulary trimming keeps token ids, logits and round trips, and reloads with stock classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from cogcore.checkpoint import save_checkpoint
from pruning.vocab import VocabTrimError, trim_vocabulary, trimmed_spec
from tests.pruning.tiny import load_fp32, one_thread  # noqa: F401 (autouse fixture)

TEXT = "The capital of the Zorblax Republic is Quenton, on the river Wemble."


def test_trimmed_model_keeps_ids_and_logits_and_reloads(tiny_checkpoint: Path,
                                                        tmp_path: Path) -> None:
    model, tokenizer = load_fp32(tiny_checkpoint), AutoTokenizer.from_pretrained(tiny_checkpoint)
    full_ids = tokenizer(TEXT)["input_ids"]
    size = len(tokenizer) - 30
    trimmed_model = load_fp32(tiny_checkpoint)
    trimmed = trim_vocabulary(trimmed_model, tokenizer, size)
    ids = trimmed(TEXT)["input_ids"]
    assert len(ids) > len(full_ids), "the trimmed vocabulary splits some words further"
    assert max(ids) < size and trimmed.decode(ids) == TEXT
    with torch.no_grad():
        before = model(torch.tensor([ids])).logits[..., :size]
        after = trimmed_model(torch.tensor([ids])).logits
    torch.testing.assert_close(after, before)

    save_checkpoint(trimmed_model, trimmed, tmp_path / "core")
    reloaded, reloaded_tok = load_fp32(tmp_path / "core"), AutoTokenizer.from_pretrained(
        tmp_path / "core")
    assert reloaded.config.vocab_size == size == len(reloaded_tok)
    assert reloaded.get_input_embeddings().weight.shape[0] == size
    assert reloaded_tok(TEXT)["input_ids"] == ids
    chat = reloaded_tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert reloaded_tok(chat, add_special_tokens=False)["input_ids"][0] < size


def test_sizes_that_would_drop_the_alphabet_or_grow_the_vocab_are_refused(
    tiny_llama_dir: Path,
) -> None:
    spec = json.loads(AutoTokenizer.from_pretrained(tiny_llama_dir).backend_tokenizer.to_str())
    full = len(spec["model"]["vocab"])
    for size in (10, full + 1):
        with pytest.raises(VocabTrimError):
            trimmed_spec(spec, size)
    assert len(trimmed_spec(spec, full)["model"]["merges"]) == len(spec["model"]["merges"])


def test_a_vocabulary_not_in_merge_order_is_refused(tiny_llama_dir: Path) -> None:
    spec = json.loads(AutoTokenizer.from_pretrained(tiny_llama_dir).backend_tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    merges = spec["model"]["merges"][:2]
    a, b = ("".join(m if isinstance(m, list) else m.split(" ")) for m in merges)
    vocab[a], vocab[b] = vocab[b], vocab[a]
    with pytest.raises(VocabTrimError, match="merge order"):
        trimmed_spec(spec, len(vocab) - 5)
