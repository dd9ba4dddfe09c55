"""The prompts a load test sends: a fixed, seeded mix of factual and reasoning questions.

Factual questions are the ones the service answers from the knowledge base; reasoning
questions go to the core alone, so one run exercises both routes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

Kind = Literal["factual", "reasoning"]

FACTUAL = (
    "What is the capital of France?",
    "What is the capital of Peru?",
    "What is the capital of Japan?",
    "What currency is used in Switzerland?",
    "Which languages are spoken in Belgium?",
    "What is the chemical symbol of iron?",
    "What is the atomic number of carbon?",
    "What is the capital of the US state of Texas?",
    "Which countries border Portugal?",
    "In which region of the world is Kenya?",
    "What is the capital of Australia?",
    "What is the atomic mass of oxygen?",
)
REASONING = (
    "All blickets are daxes and no dax is a wug. Is any blicket a wug? Explain briefly.",
    "Sort the numbers 42, 7, 19 and 3 from smallest to largest.",
    "If Anna is taller than Ben and Ben is taller than Carl, who is the shortest?",
    "A train leaves at 14:20 and the trip takes 95 minutes. When does it arrive?",
    "What is 17 times 6? Show the steps.",
    "Is the statement 'not (true and false)' true or false? Why?",
    "Continue the sequence 2, 4, 8, 16 with the next two numbers.",
    "I have 3 apples, eat one and buy five more. How many apples do I have?",
    "Which word does not belong: apple, pear, carrot, plum? Explain.",
    "Rewrite the sentence 'the cat sat on the mat' in the past perfect tense.",
    "If every square is a rectangle, is every rectangle a square? Answer and explain.",
    "Count the vowels in the word 'education'.",
)


@dataclass(frozen=True)
class Prompt:
    """One user message and which route it is meant to exercise."""

    kind: Kind
    text: str


def build_workload(count: int, seed: int = 0) -> list[Prompt]:
    """`count` prompts, half factual and half reasoning, in a seeded order."""
    if count < 1:
        raise ValueError("a workload needs at least one prompt")
    rng = random.Random(seed)
    factual = [Prompt("factual", text) for text in FACTUAL]
    reasoning = [Prompt("reasoning", text) for text in REASONING]
    # Draw each half with replacement so any count works, then shuffle the two halves together.
    prompts = rng.choices(factual, k=(count + 1) // 2) + rng.choices(reasoning, k=count // 2)
    rng.shuffle(prompts)
    return prompts
