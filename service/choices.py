"""A request's n choices from the engine's deltas: collected whole, or written as each
endpoint's chunks, with OpenAI's logprobs shapes (`service.logprobs.TokenText`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from service.generation import Delta, TokenLogprob
from service.logprobs import TokenText
from service.protocol import Usage


@dataclass
class Choice:
    """One choice, whole."""

    index: int
    text: str = ""
    finish_reason: str | None = None
    completion_tokens: int = 0
    prompt_tokens: int = 0
    logprobs: list[TokenLogprob] = field(default_factory=list)
    prompt_logprobs: tuple[TokenLogprob | None, ...] | None = None


async def collect(deltas: AsyncIterator[Delta]) -> list[Choice]:
    """Every choice of a request, in index order."""
    choices: dict[int, Choice] = {}
    async for d in deltas:
        c = choices.setdefault(d.index, Choice(d.index))
        c.text += d.text
        c.finish_reason = d.finish_reason or c.finish_reason
        c.completion_tokens, c.prompt_tokens = d.completion_tokens, d.prompt_tokens
        c.logprobs.extend(d.logprobs or ())
        c.prompt_logprobs = d.prompt_logprobs or c.prompt_logprobs
    assert choices  # the engine always ends a request with a finishing delta
    return [choices[i] for i in sorted(choices)]


def usage(prompt_tokens: int, completion_tokens: list[int]) -> Usage:
    """The request's usage: the prompt once, the tokens of every choice."""
    total = sum(completion_tokens)
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=total,
                 total_tokens=prompt_tokens + total)


def choices_usage(choices: list[Choice]) -> Usage:
    """Usage of collected choices."""
    return usage(max(c.prompt_tokens for c in choices), [c.completion_tokens for c in choices])


def chat_logprobs(text: TokenText, scores: list[TokenLogprob] | tuple[TokenLogprob, ...] | None
                  ) -> dict[str, Any] | None:
    """Chat's `logprobs` object, or None when none were asked for."""
    return None if scores is None else {"content": text.chat(scores)}


@dataclass
class LegacyLogprobs:
    """Completions' logprobs of one choice, chunk by chunk: the echoed prompt's scores
    first (when asked for), each token's offset in the choice's text."""

    text: TokenText
    prompt_ids: list[int]
    offset: int  # where the first generated token's text starts (after echo and prefix)
    started: bool = False

    def chunk(self, scores: tuple[TokenLogprob, ...] | list[TokenLogprob],
              prompt: tuple[TokenLogprob | None, ...] | None) -> dict[str, Any]:
        """The `logprobs` of the tokens in one chunk (the prompt's with the first)."""
        ids, all_scores = [s.token for s in scores], list(scores)
        start = self.offset
        if prompt is not None and not self.started:
            ids, all_scores = self.prompt_ids + ids, [*prompt, *all_scores]
            start = 0
        self.started = True
        out = self.text.legacy(ids, all_scores, start)
        if out["tokens"]:
            self.offset = out["text_offset"][-1] + len(out["tokens"][-1])
        return out
