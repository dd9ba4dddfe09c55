"""The retrieval question set: every askable fact of `cogcore.facts`, asked three ways.

Each question names the entity whose document answers it. Entities are split with a salt of
their own, so the tune split (30%) may guide choices such as chunk size and fusion depth while the
test split (70%) is never looked at until the figures are reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from cogcore.facts import Fact, load_entities, split_of

SALT = "kb-questions"
SPLITS = {"tune": 0.3, "test": 0.7}


@dataclass(frozen=True)
class Question:
    """A question, the entity (document id) that answers it and the answer string."""

    text: str
    entity_id: str
    answer: str
    relation: str
    phrasing: str
    split: str


def phrasings(fact: Fact) -> dict[str, str]:
    """The fact asked as a question, as a statement to complete, and as bare keywords."""
    kind = fact.kind.replace("_", " ")
    return {
        "question": fact.question,
        "completion": f"{fact.relation.prefix(fact.entity)} what?",
        # The kind keeps the keywords unambiguous: Georgia the country, Georgia the US state.
        "keywords": f"{fact.entity} ({kind}) {fact.relation.name.replace('_', ' ')}",
    }


def question_set() -> list[Question]:
    """All questions, in a fixed order."""
    questions = []
    for entity in load_entities():
        split = split_of(entity.id, SALT, SPLITS)
        for fact in entity.facts:
            if not fact.askable:
                continue
            for phrasing, text in phrasings(fact).items():
                questions.append(
                    Question(text, entity.id, fact.answer, fact.relation.name, phrasing, split)
                )
    return questions


# Inverse questions give the answer and ask for the entity ("Which element has atomic number
# 81?"). The halves differ in entities and in phrasing: `tune` may guide the fusion, `test`
# (other templates) is never looked at until the figures are reported.
INVERSE_SALT = "kb-inverse"
INVERSE_TEMPLATES = {
    "tune": ("Which {kind} has the {noun} {answer}?", "{answer} is the {noun} of which {kind}?"),
    "test": ("Name the {kind} whose {noun} is {answer}.",
             "What {kind} uses {answer} as its {noun}?",
             "Tell me which {kind} has {answer} as {noun}."),
}
KIND_NOUNS = {"country": "country", "element": "element", "us_state": "US state"}


def inverse_questions() -> list[Question]:
    """An inverse question for every askable fact whose answer names one entity only."""
    facts = [f for e in load_entities() for f in e.facts if f.askable and f.relation.noun]
    holders: dict[tuple[str, str], set[str]] = {}
    for fact in facts:
        holders.setdefault((fact.relation.name, fact.answer.lower()), set()).add(fact.entity_id)
    questions = []
    for i, fact in enumerate(facts):
        if len(holders[(fact.relation.name, fact.answer.lower())]) != 1:
            continue  # "Which country uses EUR?" has many right answers
        split = split_of(fact.entity_id, INVERSE_SALT, SPLITS)
        templates = INVERSE_TEMPLATES[split]
        text = templates[i % len(templates)].format(
            kind=KIND_NOUNS[fact.kind], noun=fact.relation.noun, answer=fact.answer)
        questions.append(Question(text, fact.entity_id, fact.entity, fact.relation.name,
                                  "inverse", split))
    return questions
