"""The item types that every suite and every pruning calibration set is made of."""

from __future__ import annotations

from dataclasses import dataclass

from cogcore.facts import Fact
from cogcore.prompts import Prompt


@dataclass(frozen=True)
class QAItem:
    """A question answered by generation: the prompt, the expected fact, the reply's target."""

    id: str
    relation: str  # "<kind>.<relation>", e.g. "country.capital"
    prompt: Prompt
    expected: Fact  # the answer the evidence (or, closed-book, the world) supports
    target: str  # the continuation of the prompt that a correct reply starts with
    memorized: Fact | None = None  # counterfactual only: the true fact the evidence contradicts

    @property
    def answer(self) -> str:
        """The expected answer string."""
        return self.expected.answer


@dataclass(frozen=True)
class ChoiceItem:
    """A multiple-choice item scored by the log-likelihood of each option after `context`."""

    id: str
    task: str
    context: str
    choices: tuple[str, ...]
    label: int  # index of the correct choice

    @property
    def answer(self) -> str:
        """The correct option, as it follows the context (with its leading space)."""
        return self.choices[self.label]
