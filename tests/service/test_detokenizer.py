"""Incremental detokenization: the streamed text is the reply's full decode, in linear time."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from service.detokenizer import TextStream

TEXTS = [
    "The capital of France is Paris. It lies on the Seine, and 2,165,423 people live there.",
    "Naïve café owners in Zürich serve crème brûlée — 5 € a plate.",
    "東京は日本の首都です。 Привет, мир! مرحبا 😀👍🏽 ok",
    "def f(x):\n    return {'a': [1, 2]}  # tabs\tand  double  spaces\n\n",
]


def stream(tokenizer: object, ids: list[int], stop: tuple[str, ...] = ()) -> tuple[str, bool]:
    """The text a TextStream sends for `ids`, one token at a time, then flushed."""
    text = TextStream(tokenizer, stop)
    out = [text.push(i) for i in ids]
    return "".join(out) + text.flush(), text.stopped


@pytest.fixture(scope="module")
def real_tokenizer(default_base_dir: Path) -> object:
    """The default model's own tokenizer (byte-level BPE)."""
    return AutoTokenizer.from_pretrained(default_base_dir)


@pytest.mark.real_model
@pytest.mark.parametrize("text", TEXTS)
def test_streamed_text_equals_the_full_decode(real_tokenizer: object, text: str) -> None:
    ids = real_tokenizer(text, add_special_tokens=False)["input_ids"]
    full = real_tokenizer.decode(ids, skip_special_tokens=True)
    assert stream(real_tokenizer, ids) == (full, False)


@pytest.mark.real_model
def test_a_character_split_across_tokens_is_held_until_whole(real_tokenizer: object) -> None:
    """An emoji's bytes span tokens: no piece sent is a broken character, and a reply cut in
    the middle of one ends as its full decode shows it."""
    ids = real_tokenizer("😀👍🏽", add_special_tokens=False)["input_ids"]
    assert len(ids) > 2  # byte-level pieces
    text = TextStream(real_tokenizer)
    pieces = [text.push(i) for i in ids]
    assert "\ufffd" not in "".join(pieces) and "".join(pieces) == "😀👍🏽"
    cut = TextStream(real_tokenizer)
    sent = "".join(cut.push(i) for i in ids[:-1]) + cut.flush()
    assert sent == real_tokenizer.decode(ids[:-1], skip_special_tokens=True)


@pytest.mark.real_model
@pytest.mark.parametrize("stop", ["東京", "首都", "Привет", "!"])
def test_stop_strings_cut_the_text_where_a_full_decode_finds_them(
        real_tokenizer: object, stop: str) -> None:
    ids = real_tokenizer(TEXTS[2], add_special_tokens=False)["input_ids"]
    full = real_tokenizer.decode(ids, skip_special_tokens=True)
    assert stream(real_tokenizer, ids, (stop, "never there")) == (full[:full.index(stop)], True)


@pytest.mark.real_model
def test_no_full_decode_per_token(real_tokenizer: object, monkeypatch: pytest.MonkeyPatch
                                  ) -> None:
    """The model thread never decodes the whole reply again: the tokenizer's `decode` is not
    called while tokens are pushed (the quadratic cost of a long reply)."""
    calls = []
    real_decode = real_tokenizer.decode
    monkeypatch.setattr(real_tokenizer, "decode",
                        lambda *a, **k: calls.append(1) or real_decode(*a, **k))
    ids = real_tokenizer(" ".join(TEXTS) * 4, add_special_tokens=False)["input_ids"]
    text = TextStream(real_tokenizer, ("never there",))
    for i in ids:
        text.push(i)
    assert calls == []


def test_tiny_tokenizers_stream_their_full_decode(tiny_checkpoint: Path) -> None:
    """The engine tests' tiny Llama and Qwen2 tokenizers too."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    for text in TEXTS:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert stream(tokenizer, ids)[0] == tokenizer.decode(ids, skip_special_tokens=True)
