"""Which evidence sentences could answer a question: the entity a page is about (its metadata
`name` and `aliases`) against the names and values the question gives (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.embedder import CachedEncoder, Embedder
from retrieval.knowledge_base import Hit, KnowledgeBase
from service.conversation import value_names
from service.evidence_sentences import answering, holding, pieces, unanchored
from service.grounding import Grounding
from service.routing.router import Router, load_or_fit_router
from service.settings import GroundingSettings

KENYA = ("Kenya is also called Republic of Kenya. The capital of Kenya is Nairobi. A person "
         "from Kenya is called Kenyan. The currency code of Kenya is KES. The population of "
         "Kenya is 41,800,000. The area of Kenya is 580,367 square kilometres.")
TANZANIA = ("The capital of Tanzania is Dodoma. The currency code of Tanzania is TZS. Tanzania "
            "borders Kenya and Uganda. The density of Tanzania is 14 g/cm3.")
DJIBOUTI = ("A person from Djibouti is called Djibouti. The area of Djibouti is 23,200 square "
            "kilometres.")
ISLAND = "The capital of Christmas Island is Flying Fish Cove. The area of it is 135."


def _hit(document_id: str, text: str, name: str | None, aliases: list[str] | None = None
         ) -> Hit:
    metadata: dict = {} if name is None else {"name": name, "kind": "country"}
    if aliases:
        metadata["aliases"] = aliases
    return Hit(chunk_id=0, document_id=document_id, text=text, score=1.0, metadata=metadata)


def _answering(query: str, hits: list[Hit]) -> list[str]:
    cut = pieces(hits)
    return [text for (_, text), ok in zip(cut, answering(query, hits, cut), strict=True) if ok]


def kenya() -> Hit:
    return _hit("ke", KENYA, "Kenya", ["Republic of Kenya"])


def tanzania() -> Hit:
    return _hit("tz", TANZANIA, "Tanzania")


def test_a_question_that_names_its_entity_reads_only_that_entitys_page() -> None:
    kept = _answering("Which currency does Kenya use?", [tanzania(), kenya()])
    assert kept and all("Kenya" in s and "Tanzania" not in s for s in kept)
    # Another name counts as the name; a name inside a longer one does not.
    assert _answering("What money does Republic of Kenya use?", [tanzania(), kenya()]) == kept
    papua = _hit("pg", "The capital of Papua New Guinea is Port Moresby.", "Papua New Guinea")
    guinea = _hit("gn", "The capital of Guinea is Conakry.", "Guinea")
    assert _answering("What is the capital of Papua New Guinea?", [guinea, papua]) == [
        "The capital of Papua New Guinea is Port Moresby."]
    france = _hit("fr", "The capital of France is Paris.", "France")
    martinique = _hit("mq", "The capital of Martinique is Fort-de-France.", "Martinique")
    assert _answering("Which country's capital is Fort-de-France?", [france, martinique]) == [
        "The capital of Martinique is Fort-de-France."], "a hyphenated name is not France"


def test_a_forward_question_needs_a_sentence_stating_a_value_it_does_not_give() -> None:
    kept = _answering("How are the people of Kenya called?", [kenya()])
    assert "Kenya is also called Republic of Kenya." not in kept, "its own other names only"
    assert "A person from Kenya is called Kenyan." in kept
    djibouti = _hit("dj", DJIBOUTI, "Djibouti")
    assert _answering("What do you call a person from Djibouti?", [djibouti]) == [
        "The area of Djibouti is 23,200 square kilometres."], "the demonym is the name itself"
    # An amount asked for: only sentences that state a number.
    assert _answering("How big is Kenya?", [kenya()]) == [
        "The population of Kenya is 41,800,000.",
        "The area of Kenya is 580,367 square kilometres."]


def test_an_entity_described_by_another_fact_is_asked_for_another_value() -> None:
    kept = _answering("What is the money code of the country whose capital is Nairobi?",
                      [tanzania(), kenya()])
    assert "The currency code of Kenya is KES." in kept
    assert "The capital of Kenya is Nairobi." not in kept, "it restates what was given"
    assert not any("Tanzania" in s for s in kept), "Tanzania's page does not hold Nairobi"
    # The same page asked for the entity: the sentence holding the given value answers.
    assert _answering("Which country's capital is Nairobi?", [tanzania(), kenya()]) == [
        "The capital of Kenya is Nairobi."]


def test_an_inverse_question_reads_the_page_holding_its_value_on_the_asked_relation() -> None:
    silicon = _hit("si", "The atomic number of Silicon is 14. The density of Silicon is 2.33.",
                   "Silicon")
    berkelium = _hit("bk", "The atomic number of Berkelium is 97. The density of Berkelium is 14.",
                     "Berkelium")
    assert _answering("Which element has the atomic number 14?", [berkelium, silicon]) == [
        "The atomic number of Silicon is 14."]
    assert _answering("Which element has the atomic number 1,014?", [silicon]) == [], (
        "a number inside another is not held; no page holds it: nothing answers")


def test_pages_that_name_no_entity_are_never_ruled_out() -> None:
    section = _hit("file#1", "The station director is Oskar Veldane.", None)
    assert _answering("Who directs the station on Kerrin Island?", [section]) == [
        "The station director is Oskar Veldane."]
    assert _answering("Which currency does Kenya use?", [section, kenya()])[0] == (
        "The station director is Oskar Veldane.")


def test_a_search_that_found_nothing_the_question_gives_is_unanchored() -> None:
    island = _hit("cx", ISLAND, "Christmas Island")
    assert unanchored("West Island is the capital of what nation?", [island]) == ["West Island"]
    assert unanchored("Which country's capital is Flying Fish Cove?", [island]) == []
    assert unanchored("What is the capital of Christmas Island?", [island]) == []
    cocos = _hit("cc", "The capital of Cocos (Keeling) Islands is West Island.",
                 "Cocos (Keeling) Islands")
    assert holding(["West Island"], [island, cocos]) == [cocos]


@pytest.fixture(scope="module")
def real_grounding(default_kb_dir: Path):  # noqa: ANN201 - a generator fixture
    embedder = CachedEncoder(Embedder(), max_entries=10_000)
    settings = GroundingSettings()
    router = Router(embedder, threshold=settings.route_threshold,
                    retrieval_threshold=settings.route_retrieval_threshold,
                    model=load_or_fit_router(default_kb_dir, embedder, save=False))
    with KnowledgeBase.open(default_kb_dir, embedder=embedder, readonly=True) as kb:
        yield Grounding(kb, router, settings)


@pytest.mark.parametrize(("question", "document", "answer"), [
    ("What is the money code of the country whose capital is Funafuti?", "country:tuvalu",
     "AUD"),
    ("West Island is the capital of what nation?", "country:cocos-keeling-islands",
     "Cocos (Keeling) Islands"),
    ("Which symbol belongs to the element with atomic number 14?", "element:silicon", "Si"),
    ("How big is Djibouti?", "country:djibouti", "23,200"),
    ("Which nation does the ISO abbreviate as MAR?", "country:morocco", "MAR"),
])
def test_the_default_store_reads_the_answering_sentence(
        real_grounding: Grounding, question: str, document: str, answer: str) -> None:
    grounded = real_grounding.ground([question])
    assert not grounded.abstained and grounded.route == "facts"
    assert [h.document_id for h in grounded.sources] == [document]
    assert answer in grounded.sources[0].text


def test_the_default_store_abstains_rather_than_cite_another_page(
        real_grounding: Grounding) -> None:
    grounded = real_grounding.ground(["Which country do you reach by dialling +99999?"])
    assert grounded.abstained or all("99999" in h.text for h in grounded.sources)


def test_a_nation_is_asked_for_as_a_country() -> None:
    metadata = {"kind": "country", "name": "East Timor"}
    assert value_names("Dili is the capital of what nation?", "The capital of East Timor is "
                       "Dili.", metadata) == ["Dili"]
    assert value_names("Dili is the capital of what?", "The capital of East Timor is Dili.",
                       metadata) == [], "no kind asked for"
