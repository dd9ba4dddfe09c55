"""Reasoning task families that need no world facts, scored as multiple choice.

Each generator takes a seeded random source and the slot the correct option must occupy, and
returns (question, options). Correct answers cycle through the slots, so a model that prefers one
position (or a constant model that ties everywhere) scores exactly the chance level. Every prompt
starts with solved examples of the same task (few-shot, fixed per task): two, or `SHOTS_OF[task]`
for the tasks added with more.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable

from evaluation.items import ChoiceItem

NONSENSE = ("wug", "dax", "blick", "fep", "zorp", "mib", "glon", "trab", "vosk", "plim", "drub",
            "snerk", "tove", "kiki", "lorp", "quam")
SHOTS = 2
Generator = Callable[[random.Random, int], tuple[str, tuple[str, ...]]]


def _place(correct: str, wrong: list[str], slot: int) -> tuple[str, ...]:
    """Options with the correct one at `slot`."""
    options = list(wrong)
    options.insert(slot, correct)
    return tuple(options)


def _distinct(rng: random.Random, pool: list[str], exclude: str, count: int) -> list[str]:
    return rng.sample([p for p in pool if p != exclude], count)


def syllogism(rng: random.Random, slot: int) -> tuple[str, tuple[str, ...]]:
    """Two premises over nonsense words; does the conclusion follow? (yes / no)."""
    a, b, c = rng.sample(NONSENSE, 3)
    second = f"All {b}s are {c}s." if slot == 0 else f"No {b} is a {c}."
    return f"All {a}s are {b}s. {second} Is every {a} a {c}?", ("yes", "no")


def _bool_expr(rng: random.Random, depth: int) -> tuple[str, bool]:
    """A random expression over True/False with its value (computed here, never by eval)."""
    if depth == 0:
        value = rng.random() < 0.5
        return str(value), value
    if rng.random() < 0.25:
        text, value = _bool_expr(rng, depth - 1)
        return f"not {text}", not value
    (left, lv), (right, rv) = _bool_expr(rng, depth - 1), _bool_expr(rng, depth - 1)
    if rng.random() < 0.5:
        return f"({left} and {right})", lv and rv
    return f"({left} or {right})", lv or rv


def boolean_expression(rng: random.Random, slot: int) -> tuple[str, tuple[str, ...]]:
    """The value of a small boolean expression (True / False)."""
    while True:
        expr, value = _bool_expr(rng, 2)
        if value is (slot == 0):
            return f"What is the value of: {expr}?", ("True", "False")


def number_comparison(rng: random.Random, slot: int) -> tuple[str, tuple[str, ...]]:
    """Which of two numbers is larger."""
    small, large = sorted(rng.sample(range(10, 100), 2))
    options = _place(str(large), [str(small)], slot)
    return f"Which number is larger, {options[0]} or {options[1]}?", options


def list_operation(rng: random.Random, slot: int) -> tuple[str, tuple[str, ...]]:
    """First, last, largest or smallest element of a short list of distinct numbers."""
    numbers = [str(n) for n in rng.sample(range(1, 10), 5)]
    op, pick = rng.choice([
        ("first", lambda xs: xs[0]), ("last", lambda xs: xs[-1]),
        ("largest", lambda xs: max(xs, key=int)), ("smallest", lambda xs: min(xs, key=int)),
    ])
    correct = pick(numbers)
    options = _place(correct, _distinct(rng, numbers, correct, 3), slot)
    return f"In the list {' '.join(numbers)}, which number is the {op}?", options


def letter_continuation(rng: random.Random, slot: int) -> tuple[str, tuple[str, ...]]:
    """The next letter of a sequence stepping through the alphabet by one or two."""
    step = rng.choice((1, 2))
    start = rng.randrange(0, 26 - 5 * step)
    letters = string.ascii_lowercase[start : start + 5 * step : step]
    correct = letters[-1]
    options = _place(correct, _distinct(rng, list(string.ascii_lowercase), correct, 3), slot)
    return f"What letter comes next: {' '.join(letters[:-1])} ?", options


def number_pattern(rng: random.Random, slot: int) -> tuple[str, tuple[str, ...]]:
    """The next term of an arithmetic sequence."""
    start, step = rng.randint(1, 30), rng.randint(2, 9)
    terms = [start + i * step for i in range(5)]
    correct = terms[-1]
    wrong = [correct + step, correct - 1, correct + 1]
    options = _place(str(correct), [str(w) for w in wrong], slot)
    return f"What number comes next: {', '.join(map(str, terms[:-1]))} ?", options


def addition(rng: random.Random, slot: int) -> tuple[str, tuple[str, ...]]:
    """The sum of two two-digit numbers."""
    a, b = rng.randint(10, 49), rng.randint(10, 49)
    correct = a + b
    wrong = [correct + 1, correct - 10, correct + 10]
    return f"What is {a} + {b}?", _place(str(correct), [str(w) for w in wrong], slot)


def _numbers(rng: random.Random, correct: int, candidates: list[int]) -> list[str]:
    """Three distinct wrong options drawn from `candidates` (never the answer, never negative)."""
    pool = [c for c in dict.fromkeys(candidates) if c != correct and c >= 0]
    return [str(c) for c in rng.sample(pool, 3)]


def multiplication(rng: random.Random, slot: int) -> tuple[str, tuple[str, ...]]:
    """A product of two one-digit numbers; the wrong options are one factor off or one off."""
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    correct = a * b
    wrong = _numbers(rng, correct, [correct + a, correct - a, correct + b, correct - b,
                                    correct + 1, correct - 1])
    return f"What is {a} times {b}?", _place(str(correct), wrong, slot)


def digit_addition(rng: random.Random, slot: int) -> tuple[str, tuple[str, ...]]:
    """The sum of two one-digit numbers; the wrong options are one or two off."""
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    correct = a + b
    wrong = _numbers(rng, correct, [correct + 1, correct - 1, correct + 2, correct - 2])
    return f"What is {a} + {b}?", _place(str(correct), wrong, slot)


def next_number(rng: random.Random, slot: int) -> tuple[str, tuple[str, ...]]:
    """The number right after a number below 1000 (counting on); the wrong options are the
    number itself, the one before it, two after it or ten after it."""
    a = rng.randint(10, 998)
    correct = a + 1
    wrong = _numbers(rng, correct, [a - 1, a, a + 2, a + 10])
    return f"What number comes right after {a}?", _place(str(correct), wrong, slot)


TASKS: dict[str, Generator] = {
    "syllogism": syllogism,
    "boolean_expression": boolean_expression,
    "number_comparison": number_comparison,
    "list_operation": list_operation,
    "letter_continuation": letter_continuation,
    "number_pattern": number_pattern,
    "addition": addition,
    "multiplication": multiplication,
    "digit_addition": digit_addition,
    "next_number": next_number,
}
# Tasks added for headroom take five solved examples; the first seven keep their two, so their
# figures stay comparable with the ones recorded before.
SHOTS_OF = {"multiplication": 5, "digit_addition": 5, "next_number": 5}


def _format(question: str, answer: str = "") -> str:
    return f"Q: {question}\nA:" + (f" {answer}\n\n" if answer else "")


def generate_task(task: str, split: str, count: int) -> list[ChoiceItem]:
    """`count` items of `task`, seeded by task and split; the same on every run."""
    make = TASKS[task]
    shots_rng = random.Random(f"{task}:shots")
    shots = ""
    for slot in range(SHOTS_OF.get(task, SHOTS)):
        question, options = make(shots_rng, slot % _n_options(task))
        shots += _format(question, options[slot % len(options)])
    rng = random.Random(f"{task}:{split}")
    items = []
    for i in range(count):
        slot = i % _n_options(task)
        question, options = make(rng, slot)
        choices = tuple(f" {o}" for o in options)
        items.append(ChoiceItem(f"{task}:{split}:{i}", task, shots + _format(question), choices,
                                slot))
    return items


def _n_options(task: str) -> int:
    """How many options the task's items have (a probe draw: every item has the same count)."""
    return len(TASKS[task](random.Random(0), 0)[1])


def chance(task: str) -> float:
    """The accuracy of a guess: one over the number of options."""
    return 1.0 / _n_options(task)
