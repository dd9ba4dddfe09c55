"""Per-request sampling: greedy, temperature, top-p, seed, and a token constraint per row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch


class TokenConstraint(Protocol):
    """Which tokens may come next, given the reply's tokens so far (empty before the first)."""

    def allowed(self, reply: Sequence[int]) -> frozenset[int]:
        """The ids that may follow `reply`."""
        ...


@dataclass(frozen=True)
class SamplingParams:
    """How one request chooses its tokens and when it stops."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    constraint: TokenConstraint | None = None  # None: any token may come next

    @property
    def greedy(self) -> bool:
        """Temperature 0 means argmax."""
        return self.temperature <= 0.0


def make_generator(params: SamplingParams) -> torch.Generator | None:
    """A private random stream per request, so a seed reproduces whatever the batch holds."""
    if params.greedy:
        return None
    generator = torch.Generator()
    if params.seed is None:
        generator.seed()
    else:
        generator.manual_seed(params.seed)
    return generator


def sample_rows(
    logits: torch.Tensor, params: list[SamplingParams], generators: list[torch.Generator | None],
    replies: list[Sequence[int]],
) -> list[int]:
    """One token per row of `logits` (rows x vocab), each row with its own parameters;
    `replies` (the tokens each row generated so far) feed its constraint."""
    for row, p in enumerate(params):
        if p.constraint is not None:
            logits[row] = restrict(logits[row], p.constraint.allowed(replies[row]))
    tokens = logits.argmax(dim=-1).tolist()
    for row, (p, generator) in enumerate(zip(params, generators, strict=True)):
        if not p.greedy:
            tokens[row] = _sample_one(logits[row].float(), p, generator)
    return tokens


def restrict(logits: torch.Tensor, allowed: frozenset[int]) -> torch.Tensor:
    """`logits` with every token outside `allowed` made impossible."""
    keep = torch.tensor(sorted(i for i in allowed if 0 <= i < logits.shape[-1]),
                        dtype=torch.long, device=logits.device)
    out = torch.full_like(logits, float("-inf"))
    out[keep] = logits[keep]
    return out


def _sample_one(logits: torch.Tensor, p: SamplingParams, generator: torch.Generator | None
                ) -> int:
    probs = torch.softmax(logits / p.temperature, dim=-1)
    if p.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
        drop = sorted_probs.cumsum(-1) - sorted_probs >= p.top_p
        sorted_probs[drop] = 0.0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs.cpu(), 1, generator=generator).item())
