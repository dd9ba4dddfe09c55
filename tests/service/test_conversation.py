"""Follow-up questions are rewritten to stand alone from the names earlier turns gave."""

from __future__ import annotations

import pytest

from service.conversation import canonical_names, name_spans, standalone_question

KNOWN = {"Egypt", "Peru", "Curium", "Ohio", "US", "Bosnia and Herzegovina", "Cairo",
         "New Hampshire"}


def known(name: str) -> bool:
    return name in KNOWN


@pytest.mark.parametrize(("turns", "standalone"), [
    (["What is the capital of Egypt?", "Which currency code does it use?"],
     "What is the currency code of Egypt?"),
    (["What is the capital of Egypt?", "What is its currency code?"],
     "What is the currency code of Egypt?"),
    (["What is the capital of Egypt?", "Tell me its capital too."],
     "Tell me the capital of Egypt."),
    (["What is the capital of Egypt?", "Is its capital larger than Lima?"],
     "Is Egypt's capital larger than Lima?"),
    (["What is the capital of Egypt?", "Does it border Peru?"], "Does it border Peru?"),
    (["In which year did New Hampshire become a US state?", "What is its postal code?",
      "Which capital does it have?"], "What is the capital of New Hampshire?"),
    (["What is the capital of Egypt?", "What about Peru?"], "What is the capital of Peru?"),
    (["What is the capital of Egypt?", "And Peru?"], "What is the capital of Peru?"),
    (["What is the capital of Egypt?", "What language do people speak there?"],
     "What language do people speak in Egypt?"),
    (["What is the atomic number of Curium?", "What is its symbol?", "And its mass?"],
     "What is the mass of Curium?"),
    (["What is the capital of the US state of Ohio?", "When did it become a state?"],
     "When did Ohio become a state?"),
    (["What's the capital of Bosnia and Herzegovina?", "What's its currency?"],
     "What's the currency of Bosnia and Herzegovina?"),
    (["What is the capital of Egypt?", "What is the capital of Peru?"],
     "What is the capital of Peru?"),
])
def test_follow_ups_stand_alone(turns: list[str], standalone: str) -> None:
    assert standalone_question(turns, known) == standalone


@pytest.mark.parametrize("turns", [
    ["What is 12 plus 7?", "And times 3?"],  # nothing named: nothing to resolve against
    ["Tell me about Atlantis.", "What is its capital?"],  # a name the store does not know
    ["What is the capital of Egypt?"],
    ["Hello", "Is it true that 2 + 2 = 4?"],
])
def test_turns_without_a_known_earlier_name_are_left_alone(turns: list[str]) -> None:
    assert standalone_question(turns, known) == turns[-1]


def test_name_spans_skip_sentence_openers_and_possessives() -> None:
    assert name_spans("According to the context, the capital of Egypt is Cairo.") == [
        "Egypt", "Cairo"]
    assert name_spans("What's Japan's capital?") == ["Japan"]
    assert standalone_question([], known) == ""


def test_a_long_chat_costs_a_bounded_number_of_look_ups() -> None:
    asked: list[str] = []

    def counting(name: str) -> bool:
        asked.append(name)
        return known(name)

    turns = ["What is the capital of Egypt?"] + ["Tell me More About Things " * 400] * 200
    assert standalone_question([*turns, "What is its currency?"], counting) == (
        "What is its currency?")  # Egypt is five turns back: out of reach
    assert len(asked) < 2000
    assert standalone_question([*turns[-3:], "What about Peru?"], known) == "What about Peru?"
    assert standalone_question(["What is the capital of Egypt?", "x " * 5000,
                                "What is its currency?"], known) == (
        "What is the currency of Egypt?")


@pytest.mark.timeout(10)
def test_crafted_turns_do_not_make_the_patterns_backtrack() -> None:
    hostile = ["its a" + " " * 20_000 + "!x", "its " + "a " * 20_000 + "!", "And " * 5000,
               "Which " + "a " * 20_000 + "does it", "its" + " -a" * 20_000 + "?"]
    for turn in hostile:
        assert standalone_question(["What is the capital of Egypt?", turn], known)


@pytest.mark.parametrize(("turns", "standalone"), [
    (["What is the capital of Egypt?", "Is there a king?"], "Is there a king?"),
    (["What is the capital of Egypt?", "What   is its\ncurrency?"],
     "What is the currency of Egypt?"),
])
def test_rewrites_that_would_change_the_question(turns: list[str], standalone: str) -> None:
    assert standalone_question(turns, known) == standalone


def test_a_new_name_replaces_the_old_one_as_a_whole_word() -> None:
    turns = ["Is Nigeria bigger than Niger?", "And Peru?"]
    assert standalone_question(turns, lambda n: n in {"Niger", "Peru"}) == (
        "Is Nigeria bigger than Peru?")


def test_a_turn_left_alone_is_returned_exactly_as_written() -> None:
    turn = "Explain   the rules\n of chess, please."
    assert standalone_question(["What is the capital of Egypt?", turn], known) == turn


def test_another_name_is_read_as_the_documents_own() -> None:
    meta = {"name": "Czech Republic", "aliases": ["Czechia", "Česko", "Czech"]}
    assert canonical_names("What is the capital of Czechia?", meta) == (
        "What is the capital of Czech Republic?")
    assert canonical_names("Is Česko in Europe?", meta) == "Is Czech Republic in Europe?"
    assert canonical_names("What is Czechoslovakia?", meta) == "What is Czechoslovakia?"
    assert canonical_names("Capital of Czechia?", {"name": "X"}) == "Capital of Czechia?"
    assert canonical_names("Capital of Czechia?", {"aliases": "Czechia"}) == (
        "Capital of Czechia?")


def test_a_question_that_uses_the_own_name_is_left_alone() -> None:
    """The own name may hold another name ("The Gambia", "Gambia"): it is not doubled."""
    gambia = {"name": "The Gambia", "aliases": ["Gambia", "Republic of the Gambia"]}
    assert canonical_names("How about The Gambia?", gambia) == "How about The Gambia?"
    czech = {"name": "Czech Republic", "aliases": ["Czechia", "Czech"]}
    assert canonical_names("What is the capital of Czech Republic?", czech) == (
        "What is the capital of Czech Republic?")
    assert canonical_names("How about Gambia?", gambia) == "How about The Gambia?"
    malawi = {"name": "Malawi", "aliases": ["Republic of Malawi"]}
    assert canonical_names("What is the capital of Republic of Malawi?", malawi) == (
        "What is the capital of Malawi?"), "an other name that holds the own name"
