"""The evaluation data: seeded splits, honest reading evidence, valid reasoning items."""

from __future__ import annotations

from collections import Counter

import pytest

from cogcore.facts import load_entities, normalize
from cogcore.prompts import READER_PREFIX, READER_SYSTEM, closed_book_prompt, reader_prompt
from evaluation.data import (
    REASONING_TASKS,
    closed_book_items,
    general_text,
    reading_items,
    reasoning_items,
)
from evaluation.fictional import fictional_entities
from evaluation.reasoning_tasks import chance


def _entities(items: tuple) -> set[str]:
    return {i.expected.entity_id for i in items}


def test_closed_book_splits_are_disjoint_stable_and_large_enough() -> None:
    calibration, heldout = closed_book_items("calibration"), closed_book_items("heldout")
    assert not _entities(calibration) & _entities(heldout)
    assert len(heldout) >= 300 and len(calibration) >= 200
    assert [i.id for i in closed_book_items.__wrapped__("heldout")] == [i.id for i in heldout]
    first = heldout[0]
    assert first.prompt.assistant_prefix == first.expected.relation.prefix(first.expected.entity)
    assert first.expected.accepts(first.target)


def test_reading_suites_have_200_items_and_evidence_that_answers() -> None:
    for kind in ("open_book", "counterfactual", "fictional"):
        items = reading_items(kind)
        assert len(items) >= 200
        item = items[0]
        assert item.prompt.messages[0]["content"] == READER_SYSTEM
        assert item.prompt.assistant_prefix == READER_PREFIX
        assert item.expected.statement in item.prompt.messages[1]["content"]


def test_counterfactual_evidence_contradicts_the_true_fact() -> None:
    for item in reading_items("counterfactual")[:50]:
        assert item.memorized is not None
        context = item.prompt.messages[1]["content"]
        assert item.memorized.statement not in context
        assert not item.expected.accepts(item.memorized.answer)
        assert not item.memorized.accepts(item.expected.answer)
    # Plausible: the wrong answer is a real value of the same relation.
    item = reading_items("counterfactual")[0]
    values = {f.answer for e in load_entities() for f in e.facts
              if f.relation == item.memorized.relation}
    assert item.expected.answer in values


def test_fictional_entities_are_invented_and_deterministic() -> None:
    real = {normalize(e.name) for e in load_entities()}
    names = [normalize(e.name) for e in fictional_entities()]
    assert not real & set(names) and len(set(names)) == len(names)
    assert [e.id for e in fictional_entities.__wrapped__()] == [e.id for e in fictional_entities()]


@pytest.mark.parametrize("task", REASONING_TASKS)
def test_reasoning_items_are_balanced_and_correct(task: str) -> None:
    items = reasoning_items(task, count=100)
    assert len(items) == 100 and len(REASONING_TASKS) >= 5
    n = len(items[0].choices)
    assert chance(task) == 1 / n
    assert Counter(i.label for i in items) == {slot: 100 // n for slot in range(n)}
    assert all(len(set(i.choices)) == n for i in items)
    assert reasoning_items(task, "calibration", 5)[0].context != items[0].context


def test_reasoning_answers_are_right() -> None:
    for item in reasoning_items("number_comparison", count=20):
        assert int(item.answer) == max(int(c) for c in item.choices)
    for item in reasoning_items("boolean_expression", count=20):
        expression = item.context.rsplit("value of: ", 1)[1].split("?")[0]
        assert str(eval(expression)) == item.answer.strip()  # generated, trusted text
    for item in reasoning_items("addition", count=20):
        a, b = item.context.rsplit("What is ", 1)[1].split("?")[0].split(" + ")
        assert int(item.answer) == int(a) + int(b)


def test_general_text_is_prose() -> None:
    text = general_text()
    assert len(text.split()) > 20_000
    assert not any(p.startswith(" ") for p in text.split("\n\n"))


def test_prompts_number_passages_and_start_the_reply() -> None:
    prompt = reader_prompt("Q?", ["first", "second"])
    assert "[1] first\n[2] second" in prompt.messages[1]["content"]
    closed = closed_book_prompt("What is the capital of Peru?", "The capital of Peru is")
    assert closed.messages == ({"role": "user", "content": "What is the capital of Peru?"},)
    assert closed.assistant_prefix == "The capital of Peru is"
