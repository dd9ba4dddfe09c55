"""Calibration sets: arithmetic gets retain sets of its own, general text is never the
perplexity text, and the refit can take prose beyond the retain sets."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from evaluation.data import perplexity_texts
from evaluation.suites import HEADLINE_TASKS
from pruning.calibration import calibration_examples, calibration_sets, token_count


@pytest.fixture(scope="module")
def tokenizer(tiny_llama_dir: Path):  # noqa: ANN201
    return AutoTokenizer.from_pretrained(tiny_llama_dir)


def test_every_headline_task_has_its_own_full_retain_set(tokenizer) -> None:  # noqa: ANN001
    examples = calibration_examples(tokenizer, 8)
    for task in HEADLINE_TASKS:
        assert len(examples[f"reasoning.{task}"]) == 8, task
    shared = {e.prompt for e in examples["reasoning"]}
    for task in HEADLINE_TASKS:
        assert not shared & {e.prompt for e in examples[f"reasoning.{task}"]}


def test_general_retain_text_is_not_a_perplexity_text(tokenizer) -> None:  # noqa: ANN001
    general = [e.target for e in calibration_examples(tokenizer, 16)["general"]]
    assert len(general) == 16
    measured = "\n".join(perplexity_texts().values())
    assert not [p for p in general if p[:80] in measured]


def test_refit_batches_add_the_asked_prose_and_refuse_more_than_loaded(tokenizer) -> None:  # noqa: ANN001
    sets = calibration_sets(tokenizer, 4, batch_size=4, max_tokens=96, prose_chars=3000)
    assert sum(len(e.target) for e in sets.prose) >= 3000
    retain = token_count(sets.retain_batches())
    assert token_count(sets.refit_batches(tokenizer, 0)) == retain
    assert token_count(sets.refit_batches(tokenizer, 3000)) > retain
    general = {e.target for e in sets.retain_examples["general"]}
    assert not general & {e.target for e in sets.prose}, "prose repeats the retain paragraphs"
    with pytest.raises(ValueError, match="loaded"):
        sets.refit_batches(tokenizer, 10**9)


def test_everyday_samples_join_as_a_retain_set_and_half_the_refit_prose(tokenizer) -> None:  # noqa: ANN001
    from pruning.everyday import everyday_samples
    from pruning.reading_heal import retain_examples

    samples = everyday_samples()
    sets = calibration_sets(tokenizer, 4, batch_size=4, max_tokens=96, prose_chars=20_000,
                            everyday=True)
    assert [e.target for e in sets.retain_examples["everyday"]] == samples[:4]
    assert "everyday" not in retain_examples(tokenizer, sets), "prose is no reading term"
    from_samples = [e.target for e in sets.prose if e.target in samples]
    assert from_samples == samples[4 : 4 + len(from_samples)]  # in order, after the retain set
    chars = sum(len(t) for t in from_samples)
    total = sum(len(e.target) for e in sets.prose)
    assert 0.4 < chars / total < 0.6
    plain = calibration_sets(tokenizer, 4, batch_size=4, max_tokens=96, prose_chars=20_000)
    assert "everyday" not in plain.retain_examples
    assert not {e.target for e in plain.prose} & set(samples)
