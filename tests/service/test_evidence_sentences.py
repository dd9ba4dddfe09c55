"""The evidence sentence a question reads: its relation's words against the sentence's, the
sentence's stated values aside; and the opening words of a question that name nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.documents import Document
from retrieval.embedder import CachedEncoder, Embedder
from retrieval.knowledge_base import Hit, KnowledgeBase
from service.evidence_sentences import (
    closest_sentences,
    sentence_texts,
    value_free_texts,
    without_values,
)
from service.grounding import Grounding, names
from service.routing.router import Router
from service.settings import GroundingSettings
from tests.retrieval.fakes import HashingEncoder

PORTUGAL = ("Portugal is also called Portuguese Republic. The capital of Portugal is Lisbon. "
            "Portugal lies in the world region Europe. The subregion of Portugal is Southern "
            "Europe. A person from Portugal is called Portuguese. The population of Portugal "
            "is 10,477,800. The internet domain of Portugal is .pt.")


def _hit(document_id: str, text: str) -> Hit:
    return Hit(chunk_id=0, document_id=document_id, text=text, score=1.0, metadata={})


def test_a_sentence_without_its_values_keeps_the_entity_and_the_relation() -> None:
    asked = "Which part of its continent is Portugal in?"
    assert without_values("The subregion of Portugal is Southern Europe.", asked) == (
        "The subregion of Portugal is .")
    assert without_values("Portugal lies in the world region Europe.", asked) == (
        "Portugal lies in the world region .")
    assert without_values("The population of Portugal is 10,477,800.", asked) == (
        "The population of Portugal is .")
    assert without_values("The internet domain of Portugal is .pt.", asked) == (
        "The internet domain of Portugal is .")
    # An inverse question gives the value: it stays, the entity asked for goes.
    assert without_values("The capital of Fiji is Suva.", "Which country is governed from Suva?"
                          ) == "The capital of is Suva."
    # A longer name the question does not give is a value, though it holds the question's name.
    assert without_values("The population of Democratic Republic of the Congo is 69,360,000.",
                          "How many people live in Republic of the Congo?") == (
        "The population of is .")
    assert without_values("PEN.", "Which country uses PEN?") == "PEN.", "nothing else left"


def test_the_value_free_view_decides_between_look_alike_sentences() -> None:
    """A fake embedding: the whole sentences favour the world region ("Europe" ~ "continent"),
    the sentences without their values favour the subregion."""
    asked = "Which part of its continent is Portugal in?"
    region, subregion = ("Portugal lies in the world region Europe.",
                         "The subregion of Portugal is Southern Europe.")
    cosine = {asked: 1.0, region: 0.80, subregion: 0.78,
              without_values(region, asked): 0.70, without_values(subregion, asked): 0.80}

    def encode(texts: list[str]) -> np.ndarray:
        return np.array([[cosine[t]] for t in texts])

    hits = [_hit("portugal", f"{region} {subregion}")]
    assert closest_sentences(asked, hits, encode, 1, 0.0, value_weight=0.0)[0].text == region
    assert closest_sentences(asked, hits, encode, 1, 0.0, value_weight=1.0)[0].text == subregion
    assert sentence_texts(asked, hits) == [asked, region, subregion]
    assert value_free_texts(asked, hits, encode, 1, 0.0) == [
        without_values(region, asked), without_values(subregion, asked)]


def test_an_opening_word_or_its_contraction_is_not_a_name() -> None:
    assert names("What's the currency code of Vietnam?") == ["Vietnam"]
    assert names("I'm looking for the capital of Fiji.") == ["Fiji"]
    assert names("Let's see, the capital of Fiji?") == ["Fiji"]
    assert names("Fiji's capital?") == ["Fiji's"], "a name opening the question stays"


def test_a_contracted_opener_is_not_refused_as_an_unknown_name(tmp_path: Path) -> None:
    encoder = HashingEncoder()
    with KnowledgeBase.open(tmp_path / "kb", embedder=encoder) as kb:
        kb.upsert([Document("fiji", "The capital of Fiji is Suva.", {"kind": "country"})])
        # Every question routes to facts and passes the embedding bar: only names decide.
        grounding = Grounding(kb, Router(encoder, threshold=0.0),
                              GroundingSettings(abstain_min_score=-1.0))
        assert not grounding.ground(["What's the capital of Fiji?"]).abstained
        assert grounding.ground(["What's the capital of Zorblaxia?"]).abstained


@pytest.mark.real_model
def test_the_real_embedder_reads_the_subregion_for_a_part_of_the_continent() -> None:
    """The default embedder, on the default store's wording: the whole sentences alone pick
    the world region; with the value-free view, the subregion."""
    encode = CachedEncoder(Embedder()).encode
    asked = "Which part of its continent is Portugal in?"
    hits = [_hit("portugal", PORTUGAL)]
    before = closest_sentences(asked, hits, encode, 1, 0.25, value_weight=0.0)[0].text
    after = closest_sentences(asked, hits, encode, 1, 0.25)[0].text
    assert before == "Portugal lies in the world region Europe."
    assert after == "The subregion of Portugal is Southern Europe."
    people = closest_sentences("How are the people of Portugal called?",
                               [_hit("portugal", PORTUGAL)], encode, 1, 0.25)[0].text
    assert people == "A person from Portugal is called Portuguese."


def test_a_sentence_two_passages_hold_is_one_finalist() -> None:
    """Overlapping chunks repeat sentences; the value-free view still weighs four others."""
    asked = "Where is the government of Nauru based?"
    repeated = "The population of Nauru is 10,084."
    hits = [_hit("nauru", f"{repeated} The capital of Nauru is Yaren. A. B. C."),
            _hit("nauru", f"{repeated} D.")]
    whole = {asked: 1.0, repeated: 0.9, "The capital of Nauru is Yaren.": 0.5,
             "A.": 0.8, "B.": 0.7, "C.": 0.1, "D.": 0.6}

    def encode(texts: list[str]) -> np.ndarray:
        return np.array([[whole.get(t, 0.0)] for t in texts])

    views = value_free_texts(asked, hits, encode, 1, 0.0)
    assert views == [without_values(t, asked) for t in (repeated, "A.", "B.", "D.")]
