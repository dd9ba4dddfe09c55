"""Inverse questions that give a name as the value ("Which country is governed from Suva?"):
looked up though the embedding is far, without answering what the page does not hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.documents import Document
from retrieval.knowledge_base import KnowledgeBase
from service.conversation import value_names
from service.grounding import Grounding
from service.routing.router import Router
from service.settings import GroundingSettings
from tests.retrieval.fakes import HashingEncoder

FIJI = {"kind": "country", "name": "Fiji", "aliases": ["Republic of Fiji"]}


def test_a_value_counts_only_when_the_question_asks_for_the_kind() -> None:
    text = "The capital of Fiji is Suva. A person from Fiji is called Fijian."
    assert value_names("Which country is governed from Suva?", text, FIJI) == ["Suva"]
    assert value_names("Which COUNTRY are Fijian people from?", text, FIJI) == ["Fijian"]
    assert value_names("What is the population of Suva?", text, FIJI) == [], "no kind asked"
    assert value_names("Which country is Republic of Fiji?", text, FIJI) == [], "its own name"
    assert value_names("Which country is governed from Lautoka?", text, FIJI) == [], (
        "a name the page does not hold")
    assert value_names("Which country is governed from Suva?", text, {"name": "Fiji"}) == [], (
        "a document of no kind")
    state = {"kind": "us_state", "name": "Illinois"}
    assert value_names("Which state has Springfield as its capital?",
                       "The capital of Illinois is Springfield.", state) == ["Springfield"]


@pytest.fixture
def grounding(tmp_path: Path):
    encoder = HashingEncoder()
    with KnowledgeBase.open(tmp_path / "kb", embedder=encoder) as kb:
        kb.upsert([
            Document("fiji", "The capital of Fiji is Suva.", FIJI),
            Document("japan", "The capital of Japan is Tokyo.", {"kind": "country"}),
            Document("ohio", "Ohio joined the Union in 1803.", {"kind": "us_state"}),
            Document("iowa", "Iowa joined the Union in 1846.", {"kind": "us_state"}),
        ])
        router = Router(encoder, threshold=0.0)  # every question routes to facts
        # A bar no question reaches by its embedding: only exact lookups pass it.
        yield Grounding(kb, router, GroundingSettings(abstain_min_score=0.99))


def test_a_value_one_document_holds_is_looked_up(grounding: Grounding) -> None:
    found = grounding.ground(["Which country is governed from Suva?"])
    assert not found.abstained
    assert [h.document_id for h in found.sources] == ["fiji"]
    assert found.sources[0].text == "The capital of Fiji is Suva."


@pytest.mark.parametrize("question", [
    "What is the population of Tokyo?",  # a value of Japan's page, but no kind asked for
    "Which state joined the Union first?",  # "Union": a name two pages hold
    "Which country is Fiji?",  # the entity's own name is held to the bar as before
])
def test_other_questions_are_held_to_the_bar(grounding: Grounding, question: str) -> None:
    assert grounding.ground([question]).abstained
