"""The smoke chat turn on the tiny fixtures."""

from __future__ import annotations

from pathlib import Path

from cogcore.checkpoint import load_causal_lm
from evaluation.generation import chat_once


def test_greedy_chat_is_deterministic(tiny_checkpoint: Path) -> None:
    model, tokenizer = load_causal_lm(tiny_checkpoint)
    first = chat_once(model, tokenizer, "a b c", max_new_tokens=5)
    second = chat_once(model, tokenizer, "a b c", max_new_tokens=5)
    assert first == second


def test_sampling_depends_on_seed(tiny_llama_dir: Path) -> None:
    model, tokenizer = load_causal_lm(tiny_llama_dir)
    runs = {
        chat_once(model, tokenizer, "a b", max_new_tokens=12, temperature=5.0, seed=seed)
        for seed in range(4)
    }
    assert len(runs) > 1
