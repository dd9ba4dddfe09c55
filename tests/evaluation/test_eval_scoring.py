"""Scoring: a perfect model scores 1.0, a constant one scores chance; the HF paths are exact."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from cogcore.checkpoint import load_causal_lm
from cogcore.prompts import Prompt
from evaluation.data import reading_items
from evaluation.generation import greedy_generate
from evaluation.scoring import choice_logliks, choose, split_options
from evaluation.suites import Sizes, run_suites

SIZES = Sizes(calibration=8, heldout=8, reading=8, reasoning=12, perplexity_windows=1)
ITEMS_BY_PROMPT = {
    repr(item.prompt): item
    for kind in ("open_book", "counterfactual", "fictional")
    for item in reading_items(kind)[: SIZES.reading]
}


class FakeModel:
    """An `EvalModel` that answers perfectly, or always the same thing."""

    def __init__(self, perfect: bool) -> None:
        self.perfect = perfect
        self.answers: dict[str, str] = {}  # by repr(prompt): a prompt holds dicts
        self.right: dict[str, str] = {}

    def generate(self, prompts: Sequence[Prompt], max_new_tokens: int, on_batch=None) -> list:
        if not self.perfect:
            return ["" for _ in prompts]
        return [self.answers.get(repr(p), "") for p in prompts]

    def choice_logliks(self, questions: Sequence[tuple[str, Sequence[str]]], on_batch=None):
        if not self.perfect:
            return [[0.0] * len(options) for _, options in questions]
        return [[0.0 if o == self.right[c] else -1.0 for o in options] for c, options in questions]

    def text_nll(self, text: str, on_batch=None) -> tuple[float, int]:
        return (0.0, 10) if self.perfect else (10 * math.log(50), 10)


def _perfect() -> FakeModel:
    from evaluation.data import REASONING_TASKS, closed_book_items, reasoning_items

    fake = FakeModel(perfect=True)
    for split in ("calibration", "heldout"):
        fake.answers |= {repr(i.prompt): f" {i.answer}." for i in closed_book_items(split)[:8]}
    fake.answers |= {p: f" {i.answer}." for p, i in ITEMS_BY_PROMPT.items()}
    fake.right = {i.context: i.answer for t in REASONING_TASKS
                  for i in reasoning_items(t, count=SIZES.reasoning)}
    return fake


def _no_track(label: str, total: int):
    return lambda n: None


def test_a_perfect_model_scores_one() -> None:
    suites = run_suites(_perfect(), SIZES, _no_track)
    assert suites["closed_book"]["heldout"]["accuracy"] == 1.0
    assert suites["closed_book"]["calibration"]["n"] == 8
    assert suites["open_book"]["accuracy"] == suites["fictional"]["accuracy"] == 1.0
    assert suites["counterfactual"]["faithfulness"] == 1.0
    assert suites["counterfactual"]["memory_override"] == 0.0
    assert suites["reasoning"]["accuracy"] == 1.0
    assert all(t["accuracy"] == 1.0 and t["n"] == 12 for t in suites["reasoning"]["tasks"].values())


def test_a_constant_model_scores_chance() -> None:
    suites = run_suites(FakeModel(perfect=False), SIZES, _no_track)
    assert suites["closed_book"]["heldout"]["accuracy"] == 0.0  # open answers: chance is zero
    assert suites["counterfactual"]["faithfulness"] == 0.0
    for task in suites["reasoning"]["tasks"].values():
        assert task["accuracy"] == pytest.approx(task["chance"])


def test_choose_takes_the_first_of_equals() -> None:
    assert choose([-1.0, -0.5, -0.5]) == 1


def test_cached_choice_logliks_equal_scoring_each_row(tiny_checkpoint: Path) -> None:
    model, tokenizer = load_causal_lm(tiny_checkpoint)
    questions = [("Q: 7 is greater than 3?\nA:", [" yes", " no"]),
                 ("All blickets are daxes. Is", [" every dax a wug", " No", " True"]),
                 ("a b c", [" d", " e f g h"]),
                 ("x y", [" z", " w", " v"])]
    # Batches of 3 over option counts 2, 2, 3, 3: no batch may mix counts (every option scored).
    cached = choice_logliks(model, tokenizer, questions, batch_size=3)
    for (context, options), scores in zip(questions, cached, strict=True):
        ctx, conts = split_options(tokenizer, context, options)
        for cont, score in zip(conts, scores, strict=True):
            ids = torch.tensor([ctx + cont])
            with torch.inference_mode():
                logprobs = torch.log_softmax(model(input_ids=ids).logits[0, :-1], dim=-1)
            expected = sum(float(logprobs[len(ctx) - 1 + k, t]) for k, t in enumerate(cont))
            assert score == pytest.approx(expected, abs=1e-4)


def test_batched_left_padded_generation_equals_one_by_one(tiny_checkpoint: Path) -> None:
    model, tokenizer = load_causal_lm(tiny_checkpoint)
    texts = [i.prompt.render(tokenizer) for i in reading_items("fictional")[:3]]
    texts.append(Prompt(({"role": "user", "content": "a b"},)).render(tokenizer))
    batched = greedy_generate(model, tokenizer, texts, max_new_tokens=6, batch_size=4)
    alone = [greedy_generate(model, tokenizer, [t], max_new_tokens=6)[0] for t in texts]
    assert batched == alone
    assert all("\n" not in reply for reply in batched)


def test_partial_runs_the_named_suites_and_pairs_with_itself(tiny_checkpoint: Path,
                                                             tmp_path: Path) -> None:
    """`evaluation.partial` writes only the suites asked, with per-item results that pair."""
    from evaluation.compare import paired_ratios
    from evaluation.partial import run

    out = tmp_path / "partial.json"
    result = run(tiny_checkpoint, out, ["fictional"], sizes=SIZES)
    assert list(result["suites"]) == ["fictional"]
    assert json.loads(out.read_text())["suites"]["fictional"]["n"] == SIZES.reading
    ratios = paired_ratios(result, result)
    assert list(ratios) == ["fictional"]
    with pytest.raises(ValueError, match="unknown suites"):
        run(tiny_checkpoint, out, ["no_such_suite"])
