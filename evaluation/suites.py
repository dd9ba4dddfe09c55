"""The suites: run fixed item sets through an `EvalModel` and turn its outputs into figures."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from evaluation.compare import bits, digest
from evaluation.data import (
    PERPLEXITY_SOURCES,
    REASONING_TASKS,
    closed_book_items,
    closed_book_paraphrase_items,
    perplexity_texts,
    reading_items,
    reasoning_items,
)
from evaluation.generation import OnBatch
from evaluation.items import ChoiceItem, QAItem
from evaluation.lm import EvalModel
from evaluation.reasoning_tasks import chance
from evaluation.scoring import choose, perplexity_span, perplexity_windows

# The tasks on which the default base model scores at least 15 points above chance, measured
# by the full `cogcore eval` on the base at n=400 each (docs/eval-base.md).
HEADLINE_TASKS = ("addition", "multiplication", "next_number")
CLOSED_BOOK_TOKENS = 10  # the statement prefix is given: the answer is a few tokens
READER_TOKENS = 32  # "According to the context," then one sentence
EXAMPLES = 5
PERPLEXITY_SOURCE = PERPLEXITY_SOURCES["general"]

Tracker = Callable[[str, int], OnBatch]


@dataclass(frozen=True)
class Sizes:
    """How many items each suite takes from the front of its fixed order."""

    calibration: int
    heldout: int
    reading: int  # each of open_book, counterfactual, fictional
    reasoning: int  # per task
    perplexity_windows: int  # windows of about 512 tokens (2048 characters), on each text
    paraphrase: int | None = None  # the second held-out set; None: as many as `heldout`
    headline_reasoning: int | None = None  # per headline task; None: as `reasoning`

    def paraphrase_count(self) -> int:
        """How many items the paraphrased held-out set takes."""
        return self.heldout if self.paraphrase is None else self.paraphrase

    def reasoning_count(self, task: str) -> int:
        """How many items one reasoning task takes (the headline tasks may take more)."""
        if task in HEADLINE_TASKS and self.headline_reasoning is not None:
            return max(self.reasoning, self.headline_reasoning)
        return self.reasoning


FULL = Sizes(calibration=200, heldout=300, reading=200, reasoning=100, perplexity_windows=16,
             paraphrase=300, headline_reasoning=400)
QUICK = Sizes(calibration=30, heldout=50, reading=30, reasoning=20, perplexity_windows=2,
              paraphrase=30)


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
        "items": digest(i.id for i in items),
        "correct": bits(i.expected.accepts(r) for i, r in zip(items, replies, strict=True)),
        "per_relation": {
            r: {"accuracy": _ratio(h, n), "n": n} for r, (h, n) in sorted(per.items())
        },
        "examples": [_example(i, r) for i, r in zip(items[:EXAMPLES], replies, strict=False)],
    }


def counterfactual_figures(items: Sequence[QAItem], replies: Sequence[str]) -> dict:
    """Faithfulness (follows the evidence) and memory override (gives the true fact instead)."""
    figures = answer_figures(items, replies)
    override = [
        bool(i.memorized and i.memorized.accepts(r)) for i, r in zip(items, replies, strict=True)
    ]
    figures["faithfulness"] = figures.pop("accuracy")
    figures["memory_override"] = _ratio(sum(override), len(items))
    figures["override"] = bits(override)
    return figures


def reasoning_figures(items: Sequence[ChoiceItem], logliks: Sequence[Sequence[float]]) -> dict:
    """Per-task accuracy beside chance, and the headline mean over `HEADLINE_TASKS`."""
    per: dict[str, list[bool]] = defaultdict(list)
    for item, scores in zip(items, logliks, strict=True):
        per[item.task].append(choose(scores) == item.label)
    tasks = {
        t: {"accuracy": _ratio(sum(c), len(c)), "chance": chance(t), "n": len(c)}
        for t, c in per.items()
    }
    # Per task, one 0/1 per item in item order: the paired comparison resamples these.
    return _with_headline(tasks, {t: bits(c) for t, c in per.items()})


def merged_reasoning(parts: Sequence[dict]) -> dict:
    """Reasoning figures measured on different tasks (`reasoning_figures` outputs) as one, the
    headline over every headline task among them; a task measured twice keeps its last run."""
    return _with_headline({t: v for part in parts for t, v in part["tasks"].items()},
                          {t: v for part in parts for t, v in part["correct"].items()})


def _with_headline(tasks: dict[str, dict], correct: dict[str, str]) -> dict:
    """Per-task figures with the headline mean over the `HEADLINE_TASKS` among them."""
    headline = [t for t in HEADLINE_TASKS if t in tasks]
    return {
        "accuracy": (sum(tasks[t]["accuracy"] for t in headline) / len(headline)
                     if headline else 0.0),
        "n": sum(tasks[t]["n"] for t in headline),
        "headline_tasks": headline,
        "tasks": tasks,
        "correct": correct,
    }


def perplexity_figures(lm: EvalModel, windows: int, track: Tracker,
                       text: str = "general") -> dict:
    """Perplexity per word (the headline: it compares across tokenizers), per token, per byte,
    on one of `perplexity_texts()`.

    The span is cut into windows of whole paragraphs (about 2048 characters each), each scored
    on its own; `windows` keeps each one's [nll, words] so that two models compare over the same
    windows with a bootstrap interval.
    """
    span = perplexity_span(perplexity_texts()[text], windows)
    pieces = perplexity_windows(span)
    on_batch = track("perplexity" if text == "general" else f"perplexity {text}", len(pieces))
    scored = []
    for piece in pieces:
        scored.append(lm.text_nll(piece))
        if on_batch is not None:
            on_batch(1)
    nll, tokens = sum(n for n, _ in scored), sum(t for _, t in scored)
    words = sum(len(piece.split()) for piece in pieces)
    return {
        "value": math.exp(nll / words), "unit": "word", "words": words, "tokens": tokens,
        "token_perplexity": math.exp(nll / tokens) if tokens else math.inf,
        "bits_per_byte": nll / (len(span.encode()) * math.log(2)),
        "source": PERPLEXITY_SOURCES[text],
        "windows": [[round(n, 4), len(piece.split())]
                    for (n, _), piece in zip(scored, pieces, strict=True)],
    }


def _generate(lm: EvalModel, items: Sequence[QAItem], tokens: int, track: Tracker,
              label: str) -> list[str]:
    return lm.generate([i.prompt for i in items], tokens, track(label, len(items)))


def closed_book_suite(lm: EvalModel, sizes: Sizes, track: Tracker) -> dict:
    """Closed-book recall: the calibration entities, the held-out ones, and the held-out ones
    asked with other templates, forms and relations."""
    out = {}
    for split in ("calibration", "heldout"):
        items = closed_book_items(split)[: getattr(sizes, split)]
        replies = _generate(lm, items, CLOSED_BOOK_TOKENS, track, f"closed_book {split}")
        out[split] = answer_figures(items, replies)
    items = closed_book_paraphrase_items()[: sizes.paraphrase_count()]
    replies = _generate(lm, items, CLOSED_BOOK_TOKENS, track, "closed_book paraphrase")
    out["paraphrase"] = answer_figures(items, replies)
    return out


def reading_suite(lm: EvalModel, sizes: Sizes, track: Tracker, kind: str) -> dict:
    """Answers read from a context: open_book, counterfactual or fictional."""
    items = reading_items(kind, "heldout")[: sizes.reading]
    replies = _generate(lm, items, READER_TOKENS, track, kind)
    figures = counterfactual_figures if kind == "counterfactual" else answer_figures
    return figures(items, replies)


def reasoning_suite(lm: EvalModel, sizes: Sizes, track: Tracker) -> dict:
    """Every reasoning task, scored by the log-likelihood of each choice."""
    choice_items = [
        item
        for task in REASONING_TASKS
        for item in reasoning_items(task, "heldout", sizes.reasoning_count(task))
    ]
    questions = [(item.context, item.choices) for item in choice_items]
    logliks = lm.choice_logliks(questions, track("reasoning", len(questions)))
    return reasoning_figures(choice_items, logliks)


# Each suite of the full evaluation, in the order `run_suites` runs them, under its result key.
SUITES: dict[str, Callable[[EvalModel, Sizes, Tracker], dict]] = {
    "closed_book": closed_book_suite,
    "open_book": lambda lm, sizes, track: reading_suite(lm, sizes, track, "open_book"),
    "counterfactual": lambda lm, sizes, track: reading_suite(lm, sizes, track, "counterfactual"),
    "fictional": lambda lm, sizes, track: reading_suite(lm, sizes, track, "fictional"),
    "reasoning": reasoning_suite,
    "perplexity": lambda lm, sizes, track: perplexity_figures(
        lm, sizes.perplexity_windows, track),
    "perplexity_second": lambda lm, sizes, track: perplexity_figures(
        lm, sizes.perplexity_windows, track, "everyday"),
    "perplexity_third": lambda lm, sizes, track: perplexity_figures(
        lm, sizes.perplexity_windows, track, "practical"),
}


def run_suites(lm: EvalModel, sizes: Sizes, track: Tracker,
               names: Sequence[str] = tuple(SUITES)) -> dict:
    """The suites `names` (default: every one) on `lm`; `track(label, total)` gives the
    progress callback of each step."""
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise ValueError(f"unknown suites {unknown}; choose from {list(SUITES)}")
    return {name: SUITES[name](lm, sizes, track) for name in names}
