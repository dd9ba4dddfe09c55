"""Per-request sampling: greedy, temperature, top-p, seed, a token constraint and an ordered
list of logits processors per row.

A logits processor (`LogitsProcessor`) is the one hook for anything that reshapes a row's
next-token scores before sampling: `logit_bias`, presence and frequency penalties
(`service.penalties`), a JSON grammar's mask. Rows without one take the plain path (one argmax
over the batch, a softmax per sampled row), so they pay nothing for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import torch


class TokenConstraint(Protocol):
    """Which tokens may come next, given the reply's tokens so far (empty before the first)."""

    def allowed(self, reply: Sequence[int]) -> frozenset[int]:
        """The ids that may follow `reply`."""
        ...


class LogitsProcessor(Protocol):
    """Reshapes one row's next-token logits in place before sampling.

    Called once per step with `logits` (the row's 1-D vocabulary view of the batch's logits:
    write into it, e.g. `logits.add_(bias)` or `logits.masked_fill_(blocked, -inf)`) and
    `reply`, the token ids the row has generated so far (empty before the first). Work in
    tensor operations, never a Python loop over the vocabulary. A processor with state kept
    across steps (a grammar's matcher) reads the tokens it has not yet seen from `reply`, and
    defines `fork()`, a fresh copy for another row of the same request (`n` > 1); a stateless
    one needs neither. A processor class may also define a static or class method
    `apply_rows(logits, items)`, `items` a list of `(row, processor, reply)`, to handle all its
    rows of a step in one call (a grammar library computing many masks in parallel); it is
    then called instead of the per-row call, with the batch's whole (rows x vocab) logits.

    An engine that cannot run Python processors (the upstream one) reads two optional
    attributes: `param`, the request parameter the processor implements (named in its 400),
    and `openai_fields()`, the OpenAI request fields that express it, when there are any.
    """

    def __call__(self, logits: torch.Tensor, reply: Sequence[int]) -> None:
        """Reshape `logits` (one row) in place, given the row's reply so far."""
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
    # Applied in this order, after the constraint, to the row's logits (see LogitsProcessor).
    processors: tuple[LogitsProcessor, ...] = ()
    n: int = 1  # choices: rows of one batch, the prompt prefilled once
    logprobs: int | None = None  # score each token, with this many most likely beside it
    prompt_logprobs: int | None = None  # score the prompt's tokens too (echo)

    @property
    def greedy(self) -> bool:
        """Temperature 0 means argmax."""
        return self.temperature <= 0.0

    def asks_for(self) -> list[str]:
        """The request parameters these settings use beyond the basic ones (max_tokens,
        temperature, top_p, seed, stop): what an engine that cannot carry them names in its
        400."""
        used = (("n", self.n > 1), ("logprobs", self.logprobs is not None),
                ("echo", self.prompt_logprobs is not None))
        return ([name for name, asked in used if asked]
                + [getattr(p, "param", type(p).__name__) for p in self.processors])

    def for_row(self, index: int) -> SamplingParams:
        """The parameters of choice `index` of a request with several (`n`): its own seed
        (seed + index, so the choices differ and a seed still reproduces them) and its own
        copy of every processor that keeps state."""
        if index == 0:
            return self
        seed = None if self.seed is None else self.seed + index
        processors = tuple(p.fork() if hasattr(p, "fork") else p for p in self.processors)
        return replace(self, seed=seed, processors=processors)


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
    `replies` (the tokens each row generated so far) feed its constraint and processors.
    `logits` is modified in place (constraint, processors), never scaled by temperature."""
    for row, p in enumerate(params):
        if p.constraint is not None:
            logits[row] = restrict(logits[row], p.constraint.allowed(replies[row]))
    if any(p.processors for p in params):
        apply_processors(logits, params, replies)
    tokens = logits.argmax(dim=-1).tolist()
    for row, (p, generator) in enumerate(zip(params, generators, strict=True)):
        if not p.greedy:
            tokens[row] = _sample_one(logits[row].float(), p, generator)
    return tokens


def apply_processors(logits: torch.Tensor, params: Sequence[SamplingParams],
                     replies: Sequence[Sequence[int]]) -> None:
    """Run every row's processors, in each row's order, over `logits` (rows x vocab) in place.

    Step k runs the k-th processor of every row that has one; within a step, the rows whose
    processors share a class with `apply_rows` go to it in one call."""
    depth = max(len(p.processors) for p in params)
    for k in range(depth):
        groups: dict[type, list[tuple[int, Any, Sequence[int]]]] = {}
        for row, p in enumerate(params):
            if k < len(p.processors):
                proc = p.processors[k]
                groups.setdefault(type(proc), []).append((row, proc, replies[row]))
        for cls, items in groups.items():
            together = getattr(cls, "apply_rows", None)
            if together is not None:
                together(logits, items)
                continue
            for row, proc, reply in items:
                proc(logits[row], reply)


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
