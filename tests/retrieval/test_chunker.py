"""Chunking on sentence boundaries, sized in tokens, with overlap."""

from __future__ import annotations

import pytest

from retrieval.chunker import ChunkSettings, chunk_text, sentence_spans


def words(texts):
    """Whitespace words stand in for tokens."""
    return [len(t.split()) for t in texts]


def test_short_document_stays_whole() -> None:
    text = "One sentence.  Two   sentences.\n"
    assert chunk_text(text, words, ChunkSettings(max_tokens=16, overlap_tokens=4)) == [text]


def test_sentences_split_at_ends_but_not_inside_numbers_or_abbreviations() -> None:
    text = "The mass is 55.845 u. The next, e.g. this one, follows! Does it? Yes.\n\nNew para"
    pieces = [text[a:b] for a, b in sentence_spans(text)]
    assert pieces == ["The mass is 55.845 u.", "The next, e.g. this one, follows!", "Does it?",
                      "Yes.", "New para"]


def test_long_document_packs_sentences_with_overlap_within_the_limit() -> None:
    sentences = [f"Sentence number {i} has exactly seven words." for i in range(20)]
    settings = ChunkSettings(max_tokens=24, overlap_tokens=8)
    chunks = chunk_text(" ".join(sentences), words, settings)
    assert len(chunks) > 1
    assert all(len(c.split()) <= settings.max_tokens for c in chunks)
    assert all(c.endswith(".") and c.startswith("Sentence") for c in chunks)
    for before, after in zip(chunks, chunks[1:], strict=False):
        last = before.split(". ")[-1]
        assert after.startswith(last.rstrip(".")), "each passage repeats the previous last one"
    covered = {s for c in chunks for s in sentences if s in c}
    assert covered == set(sentences)


def test_a_sentence_longer_than_a_passage_is_cut_between_words() -> None:
    text = " ".join(f"w{i}" for i in range(50)) + "."
    chunks = chunk_text(text, words, ChunkSettings(max_tokens=16, overlap_tokens=0))
    assert [len(c.split()) for c in chunks] == [16, 16, 16, 2]
    assert " ".join(chunks) == text


def test_settings_refuse_an_overlap_as_large_as_the_passage() -> None:
    with pytest.raises(ValueError):
        ChunkSettings(max_tokens=16, overlap_tokens=16)
