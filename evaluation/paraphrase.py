"""A second closed-book held-out set, asked as a new user would: other words, forms, relations.

The first held-out set asks each relation with its one calibration template (`Relation.question`,
the reply started with `Relation.prefix`). A pruning method that forgets exactly those phrasings
would look better there than it is, so this set asks the same held-out entities (never a
calibration one) with templates of its own:

- forward questions reworded ("Tell me the capital city of X.", fill-ins, "How many protons..."),
  two forms per relation, one chosen per entity by hash;
- inverse questions, whose answer is the entity ("Which country has Paris as its capital?");
- relations that the calibration never asks (subregion, neighbouring countries, alpha-3 codes).

Each form has its own start of the assistant's reply, never the calibration statement's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cogcore.facts import Entity, Fact, Relation

# (kind, relation) -> forms of (question, start of the reply); {entity} and {answer} fill in.
FORWARD: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("country", "capital"): (
        ("Tell me the capital city of {entity}.", "The capital city of {entity} is"),
        ("Fill in the blank: ____ is the capital of {entity}.", "The missing word is"),
    ),
    ("country", "region"): (
        ("Which part of the world is {entity} in?", "{entity} is in"),
        ("Tell me the continent or world region where {entity} is located.",
         "{entity} is located in"),
    ),
    ("country", "demonym"): (
        ("What do you call someone who comes from {entity}?",
         "Someone who comes from {entity} is called"),
        ("Complete the sentence: People from {entity} are ____.", "People from {entity} are"),
    ),
    ("country", "currency"): (
        ("Which three-letter code is used for the money of {entity}?",
         "The money of {entity} has the code"),
        ("Tell me the code of the currency people pay with in {entity}.",
         "People in {entity} pay in"),
    ),
    ("country", "calling_code"): (
        ("Which country code do I dial to phone someone in {entity}?",
         "To phone someone in {entity}, you dial +"),
        ("Tell me the telephone country code of {entity}.", "The telephone country code is +"),
    ),
    ("country", "tld"): (
        ("Websites from {entity} usually end in which domain?",
         "Websites from {entity} usually end in"),
        ("Tell me the top-level domain used by {entity}.", "{entity} uses the domain"),
    ),
    ("element", "symbol"): (
        ("How is {entity} abbreviated on the periodic table?",
         "On the periodic table, {entity} is abbreviated"),
        ("Tell me the element symbol of {entity}.", "The element symbol is"),
    ),
    ("element", "atomic_number"): (
        ("How many protons does an atom of {entity} have?", "An atom of {entity} has"),
        ("Which place does {entity} take in the periodic table, counted by atomic number?",
         "{entity} is element number"),
    ),
    ("us_state", "capital"): (
        ("Which city is the state capital of {entity}?", "The state capital of {entity} is"),
        ("Tell me the seat of government of the state of {entity}.",
         "The seat of government of {entity} is"),
    ),
    ("us_state", "abbreviation"): (
        ("Which two letters does the post office use for {entity}?",
         "The post office uses the letters"),
        ("Tell me the two-letter code of the state of {entity}.", "The two-letter code is"),
    ),
    ("us_state", "statehood_year"): (
        ("When was {entity} admitted to the Union?", "{entity} was admitted to the Union in"),
        ("Tell me the year {entity} joined the United States.",
         "{entity} joined the United States in"),
    ),
    # Relations the calibration states in documents but never asks.
    ("country", "subregion"): (
        ("Tell me the subregion of the world that {entity} belongs to.",
         "{entity} belongs to the subregion"),
        ("In which part of its continent does {entity} lie? Name the subregion.",
         "{entity} lies in the subregion"),
    ),
    ("country", "iso_alpha3"): (
        ("What is the three-letter ISO country code of {entity}?",
         "The three-letter country code of {entity} is"),
        ("Tell me the alpha-3 code that stands for {entity}.", "The alpha-3 code is"),
    ),
}

# (kind, relation) -> (question, start of the reply) asked the other way round: the answer is
# the entity. Only relations whose values name one entity (a capital, a symbol, not a currency).
INVERSE: dict[tuple[str, str], tuple[str, str]] = {
    ("country", "capital"): ("Which country has {answer} as its capital?",
                             "The country with {answer} as its capital is"),
    ("country", "tld"): ("Websites ending in {answer} come from which country?",
                         "Websites ending in {answer} come from"),
    ("element", "symbol"): ("Which chemical element has the symbol {answer}?",
                            "The element with the symbol {answer} is"),
    ("element", "atomic_number"): ("Which element has {answer} protons in its nucleus?",
                                   "The element with {answer} protons is"),
    ("us_state", "capital"): ("{answer} is the capital of which US state?",
                              "{answer} is the capital of"),
    ("us_state", "abbreviation"): ("Which US state has the postal code {answer}?",
                                   "The state with the postal code {answer} is"),
}

BORDERS = ("Name one country that shares a land border with {entity}.",
           "One country that shares a land border with {entity} is")


@dataclass(frozen=True)
class Asked:
    """One paraphrased question: its id, relation key, wording, reply start and answer."""

    id: str
    relation: str
    question: str
    prefix: str
    expected: Fact


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _fact(entity: Entity, name: str, answer: str, aliases: tuple[str, ...]) -> Fact:
    """An answer as a `Fact` (so `accepts` scores a reply), under a relation of this set."""
    relation = Relation(name, "{entity}: {answer}.")
    return Fact(entity.id, entity.name, entity.kind, relation, answer, aliases)


def _neighbours(text: str, names: frozenset[str]) -> list[str]:
    """The countries of a borders statement ("A, B and C"); names may hold " and "."""
    *head, last = text.split(", ")
    if last in names:
        return [*head, last]
    parts = last.split(" and ")
    for cut in range(1, len(parts)):
        left, right = " and ".join(parts[:cut]), " and ".join(parts[cut:])
        if left in names and right in names:
            return [*head, left, right]
    return [*head, last]


def paraphrased(entity: Entity, country_names: frozenset[str]) -> list[Asked]:
    """Every paraphrased question about one entity."""
    asked = []
    for fact in entity.facts:
        key = (entity.kind, fact.relation.name)
        base = f"{entity.id}/{fact.relation.name}"
        if key in FORWARD:
            forms = FORWARD[key]
            question, prefix = forms[_hash(f"form:{base}") % len(forms)]
            asked.append(Asked(
                f"paraphrase/{base}", f"{entity.kind}.{fact.relation.name}",
                question.format(entity=entity.name), prefix.format(entity=entity.name),
                _fact(entity, fact.relation.name, fact.answer, fact.aliases)))
        if key in INVERSE:
            question, prefix = INVERSE[key]
            asked.append(Asked(
                f"paraphrase/{base}/inverse", f"{entity.kind}.{fact.relation.name}.inverse",
                question.format(answer=fact.answer), prefix.format(answer=fact.answer),
                _fact(entity, f"{fact.relation.name}.inverse", entity.name, entity.aliases)))
        if key == ("country", "borders"):
            first, *others = _neighbours(fact.answer, country_names)
            asked.append(Asked(
                f"paraphrase/{base}", "country.borders", BORDERS[0].format(entity=entity.name),
                BORDERS[1].format(entity=entity.name),
                _fact(entity, "borders", first, tuple(others))))
    return asked
