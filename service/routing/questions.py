"""A labelled set of questions, half factual and half reasoning, phrased in many ways.

Factual questions ask about the knowledge base's own entities (`cogcore.facts`) and about the
open world; reasoning questions need no world fact (arithmetic, logic, sequences, word and text
tasks, code). Each family has several phrasings (templates). The `test` split holds whole
templates and whole entities that tuning never sees, so its accuracy measures how the rule
generalizes to new wording, not how well it memorized the tuning questions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from typing import Literal

from cogcore.facts import load_entities, split_of

Route = Literal["facts", "reasoning"]
SPLITS = {"tune": 0.6, "test": 0.4}
SALT = "routing"
PER_LABEL = 300


@dataclass(frozen=True)
class RoutingQuestion:
    """One labelled question."""

    text: str
    route: Route
    family: str
    template: str
    split: str


# Phrasings of the knowledge base's askable relations; {e} is the entity's name.
KB_TEMPLATES: dict[str, tuple[str, ...]] = {
    "capital": (
        "What is the capital of {e}?", "Which city is the capital of {e}?",
        "Tell me the capital city of {e}.", "{e}'s capital?", "capital of {e}",
        "Do you know what the capital of {e} is?", "Name the seat of government of {e}.",
        "Where is the capital of {e} located, which city?",
    ),
    "demonym": (
        "What is a person from {e} called?", "What do you call someone from {e}?",
        "What's the demonym for {e}?", "How are the people of {e} called?",
    ),
    "currency": (
        "What currency does {e} use?", "Which money is used in {e}?",
        "What's the currency code of {e}?", "If I travel to {e}, what currency do I need?",
    ),
    "region": (
        "In which region of the world is {e}?", "Which continent is {e} on?",
        "Where in the world is {e}?", "Is {e} in Europe, Asia, Africa, the Americas or Oceania?",
    ),
    "calling_code": (
        "What is the dialing code of {e}?", "Which country code do I dial to call {e}?",
        "international calling code for {e}",
    ),
    "symbol": (
        "What is the chemical symbol of {e}?", "Which symbol stands for {e} on the periodic table?",
        "Give me the element symbol for {e}.", "{e} symbol?",
    ),
    "atomic_number": (
        "What is the atomic number of {e}?", "How many protons does an atom of {e} have?",
        "Where is {e} in the periodic table, by atomic number?",
    ),
    "statehood_year": (
        "When did {e} become a state?", "In what year was {e} admitted to the Union?",
        "How long has {e} been a US state, since which year?",
    ),
    "abbreviation": (
        "What is the postal abbreviation of {e}?", "What's the two-letter code for {e}?",
    ),
}

# Factual questions about the open world, outside the default knowledge base.
OPEN_WORLD = (
    "Who wrote Pride and Prejudice?", "When did the Second World War end?",
    "Who painted the Mona Lisa?", "What is the tallest mountain on Earth?",
    "Which river is the longest in Africa?", "Who was the first person to walk on the Moon?",
    "What year did the Berlin Wall fall?", "Who discovered penicillin?",
    "What is the speed of light in a vacuum?", "Which planet has the most moons?",
    "Who composed the Ninth Symphony?", "When was the printing press invented?",
    "What is the largest ocean?", "Who founded Microsoft?", "Where was Napoleon born?",
    "What is the boiling point of water at sea level in Fahrenheit?",
    "Which company makes the iPhone?", "Who is the author of One Hundred Years of Solitude?",
    "How tall is the Eiffel Tower?", "What language is spoken in Brazil?",
    "In which city is the Colosseum?", "Who invented the telephone?",
    "What is the population of Tokyo?", "When did the Titanic sink?",
    "Which country won the 2018 football World Cup?", "Who was Cleopatra?",
    "What is the chemical formula of table salt?", "Who directed the film Jaws?",
    "What is the largest desert in the world?", "Which animal is the fastest on land?",
    "tell me about the history of the Ottoman Empire", "who is the CEO of Tesla",
    "What does the acronym NASA stand for?", "How many bones are in the human body?",
    "Which bird is the national symbol of the United States?",
    "Where is the headquarters of the United Nations?",
    "I need to know when Shakespeare died.", "Could you tell me who wrote The Odyssey?",
    "What's the deepest lake in the world?", "Which metal is the best conductor of electricity?",
)

NONSENSE = ("wug", "dax", "blicket", "fep", "toma", "zorp", "kiki", "bouba", "glorp", "snib")
WORDS = ("planet", "garden", "rocket", "silver", "pencil", "window", "candle", "forest")


def _reasoning_templates(rng: random.Random) -> dict[str, list[str]]:
    a, b, c = rng.randint(2, 99), rng.randint(2, 99), rng.randint(2, 12)
    x, y, z = rng.sample(NONSENSE, 3)
    w = rng.choice(WORDS)
    nums = ", ".join(str(rng.randint(1, 50)) for _ in range(5))
    start, step = rng.randint(1, 9), rng.randint(2, 5)
    seq = ", ".join(str(start + step * i) for i in range(4))
    return {
        "arithmetic": [
            f"What is {a} plus {b}?", f"Compute {a} * {c}.", f"{a} - {b} = ?",
            f"If I have {a} apples and eat {c}, how many are left?",
            f"What is {c} squared minus {c}?", f"Divide {a * c} by {c}.",
        ],
        "logic": [
            f"All {x}s are {y}s and all {y}s are {z}s. Are all {x}s {z}s?",
            f"If no {x} is a {y}, can a {y} be a {x}?",
            f"Some {x}s are {y}s. Does it follow that some {y}s are {x}s?",
            "Is the statement 'True and not False' true or false?",
            "If it rains the ground is wet. The ground is dry. Did it rain?",
        ],
        "sequences": [
            f"What comes next: {seq}?", f"Continue the pattern {seq}, ...",
            "Find the next letter: A, C, E, G, ?", f"Which number is missing: {seq}, __?",
        ],
        "lists": [
            f"Sort these numbers from smallest to largest: {nums}.",
            f"Which is larger, {a} or {b}?", f"What is the largest number in {nums}?",
            f"How many items are in this list: {nums}?", f"Reverse the order of {nums}.",
        ],
        "words": [
            f"Spell the word '{w}' backwards.", f"How many letters are in the word '{w}'?",
            f"Give me a word that rhymes with '{w}'.", f"Write a haiku about a {w}.",
            f"Rewrite in the passive voice: The {x} chased the {y}.",
            f"Make this sentence more polite: give me the {w} now.",
        ],
        "code_and_explain": [
            "Write a Python function that returns the sum of a list.",
            f"Explain step by step how to solve {c}x + {a} = {a + c * b}.",
            f"What does this code print: print({a} % {c})?",
            "Why is dividing by zero undefined? Explain simply.",
            "Plan a three-step approach to learn to juggle.",
        ],
    }


def _kb_questions(rng: random.Random) -> list[RoutingQuestion]:
    items = []
    for entity in load_entities():
        split = split_of(entity.id, SALT, SPLITS)
        for fact in entity.facts:
            for i, template in enumerate(KB_TEMPLATES.get(fact.relation.name, ())):
                template_id = f"{fact.relation.name}/{i}"
                if split_of(template_id, SALT, SPLITS) != split:
                    continue  # a test question has an unseen entity and an unseen phrasing
                text = template.format(e=entity.name)
                items.append(RoutingQuestion(text, "facts", f"kb.{fact.relation.name}",
                                             template_id, split))
    rng.shuffle(items)
    return items


def _open_world() -> list[RoutingQuestion]:
    return [
        RoutingQuestion(text, "facts", "open_world", f"open/{i}",
                        split_of(f"open/{i}", SALT, SPLITS))
        for i, text in enumerate(OPEN_WORLD)
    ]


def _reasoning(rng: random.Random, count: int) -> list[RoutingQuestion]:
    unique: dict[str, RoutingQuestion] = {}
    for _ in range(100 * count):  # bounded: templates without slots repeat themselves
        for family, texts in _reasoning_templates(rng).items():
            for i, text in enumerate(texts):
                template_id = f"{family}/{i}"
                split = split_of(template_id, SALT, SPLITS)
                unique.setdefault(text, RoutingQuestion(text, "reasoning", family, template_id,
                                                        split))
        if len(unique) >= count:
            break
    items = list(unique.values())
    rng.shuffle(items)
    return items[:count]


@cache
def routing_questions() -> tuple[RoutingQuestion, ...]:
    """The whole labelled set: PER_LABEL factual and PER_LABEL reasoning questions, seeded."""
    rng = random.Random(SALT)
    open_world = _open_world()
    factual = [*open_world, *_kb_questions(rng)[: PER_LABEL - len(open_world)]]
    return tuple(factual + _reasoning(rng, PER_LABEL))
