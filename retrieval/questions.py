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
