"""Perplexity scores every token once and is per word, so different tokenizers compare."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from evaluation.data import general_text
from evaluation.scoring import WINDOW_CHARS, perplexity_span, text_nll
from evaluation.suites import perplexity_figures
from tests.pruning.tiny import load_fp32, one_thread  # noqa: F401 (autouse fixture)


def test_windows_overlap_so_every_token_after_the_first_is_scored_once(
    tiny_llama_dir: Path,
) -> None:
    model, tokenizer = load_fp32(tiny_llama_dir), AutoTokenizer.from_pretrained(tiny_llama_dir)
    text = perplexity_span(general_text(), 1)[:600]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    whole, count = text_nll(model, tokenizer, text, window=len(ids) + 5)
    assert count == len(ids) - 1
    with torch.no_grad():
        loss = model(torch.tensor([ids]), labels=torch.tensor([ids])).loss
    assert whole == pytest.approx(float(loss) * (len(ids) - 1), rel=1e-5)
    windowed, windowed_count = text_nll(model, tokenizer, text, window=16)
    assert windowed_count == count and windowed != pytest.approx(whole, rel=1e-6)


def test_the_span_is_whole_paragraphs_of_a_fixed_length_in_characters() -> None:
    span = perplexity_span(general_text(), 4)
    assert general_text().startswith(span) and general_text()[len(span):].startswith("\n\n")
    assert 3 * WINDOW_CHARS < len(span) <= 4 * WINDOW_CHARS
    assert len(perplexity_span(general_text(), 8)) > len(span)


class _Nats:
    """An eval model whose text costs a fixed number of nats per word."""

    def __init__(self, per_word: float) -> None:
        self.per_word = per_word

    def text_nll(self, text: str, on_batch=None) -> tuple[float, int]:
        return self.per_word * len(text.split()), 2 * len(text.split())


def test_headline_perplexity_is_per_word() -> None:
    figures = perplexity_figures(_Nats(2.0), 2, lambda label, total: None)
    assert figures["value"] == pytest.approx(math.exp(2.0))
    assert figures["token_perplexity"] == pytest.approx(math.exp(1.0))
    assert figures["unit"] == "word" and figures["words"] > 100
