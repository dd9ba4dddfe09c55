"""The second held-out set is phrased otherwise; the perplexity texts are distinct prose."""

from __future__ import annotations

from collections import Counter

from cogcore.facts import COUNTRY_RELATIONS, ELEMENT_RELATIONS, STATE_RELATIONS, split_of
from evaluation.data import (
    SPLITS,
    closed_book_items,
    closed_book_paraphrase_items,
    everyday_text,
    general_text,
    perplexity_texts,
    reasoning_items,
)
from evaluation.paraphrase import FORWARD, INVERSE
from evaluation.scoring import perplexity_span, perplexity_windows

CALIBRATION_QUESTIONS = {
    r.question for rels in (COUNTRY_RELATIONS, ELEMENT_RELATIONS, STATE_RELATIONS)
    for r in rels.values() if r.question
}


def _question(item) -> str:
    return item.prompt.messages[-1]["content"]


def test_paraphrase_set_asks_only_heldout_entities() -> None:
    items = closed_book_paraphrase_items()
    assert len(items) >= 300
    entities = {i.expected.entity_id for i in items}
    calibration = {i.expected.entity_id for i in closed_book_items("calibration")}
    assert not entities & calibration
    assert all(split_of(e, "eval", SPLITS) == "heldout" for e in entities)
    assert len({i.id for i in items}) == len(items)


def test_paraphrase_templates_are_not_the_first_heldout_sets() -> None:
    items = closed_book_paraphrase_items()
    first = closed_book_items("heldout")
    assert not {_question(i) for i in items} & {_question(i) for i in first}
    assert not {i.prompt.assistant_prefix for i in items} & {
        i.prompt.assistant_prefix for i in first}
    templates = {q for forms in FORWARD.values() for q, _ in forms} | {
        q for q, _ in INVERSE.values()}
    assert not templates & CALIBRATION_QUESTIONS


def test_paraphrase_set_mixes_inverse_questions_and_new_relations() -> None:
    items = closed_book_paraphrase_items()[:300]
    relations = Counter(i.relation for i in items)
    assert sum(n for r, n in relations.items() if r.endswith(".inverse")) >= 40
    asked_first = {i.relation for i in closed_book_items("heldout")}
    assert {"country.subregion", "country.borders", "country.iso_alpha3"} <= set(relations)
    assert not {"country.subregion", "country.borders"} & asked_first
    forms = Counter(_question(i).split()[0] for i in items)
    assert forms["Tell"] >= 20 and forms["Which"] >= 20
    assert any(_question(i).startswith(("Fill in", "Complete")) for i in items)


def test_inverse_items_expect_the_entity_and_forward_items_its_value() -> None:
    items = closed_book_paraphrase_items()
    inverse = next(i for i in items if i.id == "paraphrase/country:france/capital/inverse")
    assert "Paris" in _question(inverse) and inverse.expected.accepts("France.")
    forward = next(i for i in items if i.id == "paraphrase/country:france/capital")
    assert forward.expected.accepts(" Paris.") and "France" in _question(forward)
    borders = next(i for i in items if i.id == "paraphrase/country:france/borders")
    assert borders.expected.accepts(" Spain.") and borders.expected.accepts(" Belgium")
    assert not borders.expected.accepts(" Paris")


def test_perplexity_texts_are_distinct_nonempty_prose() -> None:
    texts = perplexity_texts()
    assert set(texts) == {"general", "everyday", "practical"}
    assert texts["general"] == general_text() and texts["everyday"] == everyday_text()
    everyday, practical = texts["everyday"], texts["practical"]
    assert len(everyday.split()) > 2000 and len(practical.split()) > 2000
    paragraphs = [set(texts[name].split("\n\n")) for name in texts]
    assert all(not a & b for i, a in enumerate(paragraphs) for b in paragraphs[i + 1:])
    for name in ("Python", "def ", "class ", ">>>", "import "):
        assert name not in everyday, name
    windows = perplexity_windows(perplexity_span(everyday, 16))
    assert len(windows) >= 6 and "\n\n".join(windows) == everyday


def test_windows_are_whole_paragraphs_that_rejoin_to_the_span() -> None:
    span = perplexity_span(general_text(), 4)
    windows = perplexity_windows(span)
    assert "\n\n".join(windows) == span and len(windows) >= 4
    assert all(len(w) <= 2048 or "\n\n" not in w for w in windows)


def test_multiplication_items_are_right() -> None:
    for item in reasoning_items("multiplication", count=40):
        a, b = item.context.rsplit("What is ", 1)[1].split("?")[0].split(" times ")
        assert int(item.answer) == int(a) * int(b)
        assert item.context.count("Q:") == 6  # five solved examples, then the question


def test_digit_addition_and_next_number_items_are_right() -> None:
    for item in reasoning_items("digit_addition", count=40):
        a, b = item.context.rsplit("What is ", 1)[1].split("?")[0].split(" + ")
        assert int(item.answer) == int(a) + int(b) and int(a) < 10 and int(b) < 10
    for item in reasoning_items("next_number", count=40):
        a = item.context.rsplit("comes right after ", 1)[1].split("?")[0]
        assert int(item.answer) == int(a) + 1
        near = {int(a) + d for d in (-1, 0, 1, 2, 10)}
        assert {int(c) for c in item.choices} <= near  # distractors close to the answer
