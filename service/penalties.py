"""`logit_bias`, `presence_penalty` and `frequency_penalty` as logits processors.

OpenAI's formula, with vLLM's semantics (the penalties count the tokens of the reply, not of
the prompt): `logit[j] -= frequency_penalty * count[j] + presence_penalty * (count[j] > 0)`.
`logit_bias` adds its value (-100..100) to the listed tokens' logits before sampling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from service.errors import InvalidRequest
from service.sampling import LogitsProcessor


class LogitBias:
    """Adds a fixed value to some tokens' logits (stateless)."""

    param = "logit_bias"

    def __init__(self, bias: Mapping[int, float]) -> None:
        self.bias = dict(bias)
        self.ids = torch.tensor(list(bias), dtype=torch.long)
        self.values = torch.tensor(list(bias.values()), dtype=torch.float32)

    def openai_fields(self) -> dict[str, object]:
        """The request field that expresses this processor."""
        return {"logit_bias": {str(k): v for k, v in self.bias.items()}}

    def __call__(self, logits: torch.Tensor, reply: Sequence[int]) -> None:
        """Add the bias in place."""
        logits.index_add_(0, self.ids.to(logits.device),
                          self.values.to(device=logits.device, dtype=logits.dtype))


class Penalties:
    """Presence and frequency penalties over the reply's tokens so far (counts kept per row:
    each choice of a request forks its own)."""

    def __init__(self, presence: float, frequency: float) -> None:
        self.presence, self.frequency = presence, frequency
        self.param = "presence_penalty" if presence else "frequency_penalty"
        self.counts: torch.Tensor | None = None
        self.seen = 0

    def fork(self) -> Penalties:
        """A fresh copy for another choice of the same request."""
        return Penalties(self.presence, self.frequency)

    def openai_fields(self) -> dict[str, object]:
        """The request fields that express this processor."""
        return {"presence_penalty": self.presence, "frequency_penalty": self.frequency}

    def __call__(self, logits: torch.Tensor, reply: Sequence[int]) -> None:
        """Subtract the penalties in place."""
        if self.counts is None:
            self.counts = torch.zeros(logits.shape[-1], dtype=torch.float32)
        if len(reply) > self.seen:  # count the tokens not yet seen (one per step)
            new = torch.tensor(list(reply[self.seen:]), dtype=torch.long)
            self.counts.index_add_(0, new, torch.ones(len(new)))
            self.seen = len(reply)
        if self.seen == 0:
            return
        penalty = self.counts * self.frequency + (self.counts > 0).float() * self.presence
        logits.sub_(penalty.to(device=logits.device, dtype=logits.dtype))


def sampling_processors(presence_penalty: float, frequency_penalty: float,
                        logit_bias: Mapping[str, float] | None, vocab_size: int
                        ) -> tuple[LogitsProcessor, ...]:
    """The processors a request's penalty and bias fields ask for (none at their defaults);
    a token id outside the served vocabulary is a 400 naming it."""
    processors: list[LogitsProcessor] = []
    if logit_bias:
        processors.append(LogitBias(parse_logit_bias(logit_bias, vocab_size)))
    if presence_penalty or frequency_penalty:
        processors.append(Penalties(presence_penalty, frequency_penalty))
    return tuple(processors)


def parse_logit_bias(logit_bias: Mapping[str, float], vocab_size: int) -> dict[int, float]:
    """`{"token id": bias}` to ids and biases, each checked."""
    bias: dict[int, float] = {}
    bad: list[str] = []
    for key, value in logit_bias.items():
        try:
            token = int(key)
        except ValueError:
            bad.append(key)
            continue
        if not 0 <= token < vocab_size:
            bad.append(key)
        elif not -100 <= value <= 100:
            raise InvalidRequest(f"logit_bias for token {key} is {value}; it must lie in "
                                 "[-100, 100]", "logit_bias")
        else:
            bias[token] = float(value)
    if bad:
        raise InvalidRequest(f"logit_bias names token ids outside the vocabulary "
                             f"(0..{vocab_size - 1}): {', '.join(bad[:10])}", "logit_bias")
    return bias


def scoring_fields(req: Any, vocab_size: int, max_n: int) -> dict[str, Any]:
    """The `SamplingParams` fields of a chat or completion request's choices and scores:
    `n` (at most `max_n`), its penalty and bias processors, `logprobs` and, for a completion
    that echoes its prompt with logprobs, `prompt_logprobs`."""
    if req.n > max_n:
        raise InvalidRequest(f"n is {req.n}; this service returns at most {max_n} choices",
                             "n")
    if isinstance(req.logprobs, bool):  # chat: logprobs true, top_logprobs 0..20
        if req.top_logprobs is not None and not req.logprobs:
            raise InvalidRequest("top_logprobs needs logprobs: true", "top_logprobs")
        logprobs = (req.top_logprobs or 0) if req.logprobs else None
    else:  # completions: logprobs is the number of alternatives
        logprobs = req.logprobs
    echo = getattr(req, "echo", False)
    return {"n": req.n, "logprobs": logprobs,
            "prompt_logprobs": logprobs if echo and logprobs is not None else None,
            "processors": sampling_processors(req.presence_penalty, req.frequency_penalty,
                                              req.logit_bias, vocab_size)}
