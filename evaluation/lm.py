"""What the suites need from a model, and its implementation over a Hugging Face checkpoint.

The suites talk to this small interface only, so the scoring can be tested with fake models (a
perfect one, a constant one) and any local causal-LM checkpoint plugs in through `HFEvalModel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from cogcore.prompts import Prompt
from evaluation.generation import OnBatch, greedy_generate
from evaluation.scoring import choice_logliks, text_nll

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class EvalModel(Protocol):
    """A model as the evaluation sees it: generate, score continuations, score running text."""

    def generate(
        self, prompts: Sequence[Prompt], max_new_tokens: int, on_batch: OnBatch | None = None
    ) -> list[str]:
        """Greedy replies (after each prompt's assistant prefix), cut at the first newline."""
        ...

    def choice_logliks(
        self, questions: Sequence[tuple[str, Sequence[str]]], on_batch: OnBatch | None = None
    ) -> list[list[float]]:
        """For each (context, options), the summed log-probability of each option."""
        ...

    def text_nll(self, text: str, on_batch: OnBatch | None = None) -> tuple[float, int]:
        """Summed next-token negative log-likelihood of `text` (nats), and tokens scored."""
        ...


class HFEvalModel:
    """`EvalModel` over a loaded Hugging Face causal LM and its tokenizer (fp32, CPU)."""

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch_size: int = 32
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    def generate(
        self, prompts: Sequence[Prompt], max_new_tokens: int, on_batch: OnBatch | None = None
    ) -> list[str]:
        """Greedy replies, batched with left padding."""
        texts = [p.render(self.tokenizer) for p in prompts]
        return greedy_generate(
            self.model, self.tokenizer, texts, max_new_tokens=max_new_tokens,
            batch_size=self.batch_size, on_batch=on_batch,
        )

    def choice_logliks(
        self, questions: Sequence[tuple[str, Sequence[str]]], on_batch: OnBatch | None = None
    ) -> list[list[float]]:
        """Option log-likelihoods, each context run once, batched."""
        return choice_logliks(
            self.model, self.tokenizer, questions, batch_size=self.batch_size, on_batch=on_batch
        )

    def text_nll(self, text: str, on_batch: OnBatch | None = None) -> tuple[float, int]:
        """Summed negative log-likelihood over 512-token windows that overlap by one token."""
        return text_nll(self.model, self.tokenizer, text, on_batch=on_batch)
