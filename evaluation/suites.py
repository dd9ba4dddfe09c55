"""The suites: run fixed item sets through an `EvalModel` and turn its outputs into figures."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from evaluation.data import (
    REASONING_TASKS,
    closed_book_items,
    general_text,
    reading_items,
    reasoning_items,
)
from evaluation.generation import OnBatch
from evaluation.items import ChoiceItem, QAItem
from evaluation.lm import EvalModel
from evaluation.reasoning_tasks import chance
from evaluation.scoring import choose, perplexity_span

# The tasks on which the default base model scores at least 15 points above chance, measured
# by the full `cogcore eval` on the base (docs/eval-base.md): only addition (0.45 vs 0.25).
HEADLINE_TASKS = ("addition",)
CLOSED_BOOK_TOKENS = 10  # the statement prefix is given: the answer is a few tokens
READER_TOKENS = 32  # "According to the context," then one sentence
EXAMPLES = 5
PERPLEXITY_SOURCE = "Python language reference prose (standard library pydoc_data.topics)"

Tracker = Callable[[str, int], OnBatch]


@dataclass(frozen=True)
class Sizes:
    """How many items each suite takes from the front of its fixed order."""

    calibration: int
    heldout: int
    reading: int  # each of open_book, counterfactual, fictional
    reasoning: int  # per task
    perplexity_windows: int  # windows of about 512 tokens (2048 characters)


FULL = Sizes(calibration=200, heldout=300, reading=200, reasoning=100, perplexity_windows=16)
QUICK = Sizes(calibration=30, heldout=50, reading=30, reasoning=20, perplexity_windows=2)


def _ratio(hits: int, n: int) -> float:
    return hits / n if n else 0.0


def _example(item: QAItem, reply: str) -> dict:
    question = item.prompt.messages[-1]["content"].rsplit("\n", 1)[-1]
    return {"question": question, "expected": item.answer,
            "reply": item.prompt.assistant_prefix + reply, "correct": item.expected.accepts(reply)}


def answer_figures(items: Sequence[QAItem], replies: Sequence[str]) -> dict:
    """Accuracy overall and per relation: a reply is right when it contains the answer."""
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item, reply in zip(items, replies, strict=True):
        per[item.relation][0] += item.expected.accepts(reply)
        per[item.relation][1] += 1
    hits = sum(h for h, _ in per.values())
    return {
        "accuracy": _ratio(hits, len(items)),
        "n": len(items),
        "per_relation": {
            r: {"accuracy": _ratio(h, n), "n": n} for r, (h, n) in sorted(per.items())
        },
        "examples": [_example(i, r) for i, r in zip(items[:EXAMPLES], replies, strict=False)],
    }


def counterfactual_figures(items: Sequence[QAItem], replies: Sequence[str]) -> dict:
    """Faithfulness (follows the evidence) and memory override (gives the true fact instead)."""
    figures = answer_figures(items, replies)
    override = sum(
        bool(i.memorized and i.memorized.accepts(r)) for i, r in zip(items, replies, strict=True)
    )
    figures["faithfulness"] = figures.pop("accuracy")
    figures["memory_override"] = _ratio(override, len(items))
    return figures


def reasoning_figures(items: Sequence[ChoiceItem], logliks: Sequence[Sequence[float]]) -> dict:
    """Per-task accuracy beside chance, and the headline mean over `HEADLINE_TASKS`."""
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item, scores in zip(items, logliks, strict=True):
        per[item.task][0] += choose(scores) == item.label
        per[item.task][1] += 1
    tasks = {
        t: {"accuracy": _ratio(h, n), "chance": chance(t), "n": n} for t, (h, n) in per.items()
    }
    headline = [tasks[t] for t in HEADLINE_TASKS if t in tasks]
    return {
        "accuracy": sum(t["accuracy"] for t in headline) / len(headline) if headline else 0.0,
        "n": sum(t["n"] for t in headline),
        "headline_tasks": [t for t in HEADLINE_TASKS if t in tasks],
        "tasks": tasks,
    }


def perplexity_figures(lm: EvalModel, windows: int, track: Tracker) -> dict:
    """Perplexity per word (the headline: it compares across tokenizers), per token, per byte."""
    span = perplexity_span(general_text(), windows)
    nll, tokens = lm.text_nll(span, track("perplexity", windows))
    words = len(span.split())
    return {
        "value": math.exp(nll / words), "unit": "word", "words": words, "tokens": tokens,
        "token_perplexity": math.exp(nll / tokens) if tokens else math.inf,
        "bits_per_byte": nll / (len(span.encode()) * math.log(2)), "source": PERPLEXITY_SOURCE,
    }


def _generate(lm: EvalModel, items: Sequence[QAItem], tokens: int, track: Tracker,
              label: str) -> list[str]:
    return lm.generate([i.prompt for i in items], tokens, track(label, len(items)))


def run_suites(lm: EvalModel, sizes: Sizes, track: Tracker) -> dict:
    """Every suite on `lm`; `track(label, total)` gives the progress callback of each step."""
    suites: dict[str, dict] = {"closed_book": {}}
    for split in ("calibration", "heldout"):
        items = closed_book_items(split)[: getattr(sizes, split)]
        replies = _generate(lm, items, CLOSED_BOOK_TOKENS, track, f"closed_book {split}")
        suites["closed_book"][split] = answer_figures(items, replies)
    for kind in ("open_book", "counterfactual", "fictional"):
        items = reading_items(kind, "heldout")[: sizes.reading]
        replies = _generate(lm, items, READER_TOKENS, track, kind)
        figures = counterfactual_figures if kind == "counterfactual" else answer_figures
        suites[kind] = figures(items, replies)
    choice_items = [
        item
        for task in REASONING_TASKS
        for item in reasoning_items(task, "heldout", sizes.reasoning)
    ]
    questions = [(item.context, item.choices) for item in choice_items]
    logliks = lm.choice_logliks(questions, track("reasoning", len(questions)))
    suites["reasoning"] = reasoning_figures(choice_items, logliks)
    suites["perplexity"] = perplexity_figures(lm, sizes.perplexity_windows, track)
    return suites
