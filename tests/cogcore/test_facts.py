"""The shared fact data: complete, stable ids and splits, honest answer matching."""

from __future__ import annotations

from collections import Counter

from cogcore.facts import load_entities, normalize, split_of


def test_every_package_contributes_entities() -> None:
    kinds = Counter(e.kind for e in load_entities())
    assert kinds["country"] > 200 and kinds["element"] == 118 and kinds["us_state"] == 50


def test_ids_are_unique_and_documents_state_every_fact() -> None:
    entities = load_entities()
    assert len({e.id for e in entities}) == len(entities)
    for entity in entities:
        document = entity.document()
        assert all(fact.statement in document for fact in entity.facts)


def test_statements_are_accepted_and_other_answers_are_not() -> None:
    france = next(e for e in load_entities() if e.id == "country:france")
    for fact in france.facts:
        assert fact.accepts(fact.statement), fact.relation.name
    capital = next(f for f in france.facts if f.relation.name == "capital")
    assert not capital.accepts("Lyon")
    assert not capital.accepts("Parisian"), "a whole word must match, not a prefix"


def test_normalize_folds_case_accents_and_final_punctuation() -> None:
    assert normalize("Côte d'Ivoire.") == "cote d ivoire"
    assert normalize("The domain is .fr.") == "the domain is .fr"
    assert normalize("+33") == "33"


def test_splits_are_stable_and_sized() -> None:
    fractions = {"calibration": 0.4, "heldout": 0.6}
    entities = load_entities()
    first = [split_of(e.id, "eval", fractions) for e in entities]
    assert first == [split_of(e.id, "eval", fractions) for e in entities]
    share = first.count("calibration") / len(first)
    assert 0.3 < share < 0.5
    assert first != [split_of(e.id, "other-salt", fractions) for e in entities]


def test_documents_state_other_names_but_no_two_letter_codes() -> None:
    entities = {e.name: e for e in load_entities()}
    assert "Czechia" in entities["Czech Republic"].aliases
    assert "Great Britain" in entities["United Kingdom"].aliases
    assert entities["United Kingdom"].document().startswith(
        "United Kingdom is also called Great Britain and ")
    for entity in entities.values():
        assert all(len(a) > 2 and a != entity.name for a in entity.aliases)
    # Names are no facts: nothing asks about them, and the evaluation's excerpts do not change.
    assert all(f.relation.name != "aliases" for e in entities.values() for f in e.facts)
