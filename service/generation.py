"""The one request path's engine interface: what serving hands an engine, and what comes back.

Both engines implement `GenerationEngine`: the local continuous-batching one
(`service.engine`) and the upstream one (`service.upstream`). Admission is eager: `submit`
queues the request or raises at once (`QueueFull`, 429, when the queue is full; `NotReady`,
503, while shutting down), so a refusal is an HTTP status before any stream starts, never an
error inside a 200 stream. The engine knows nothing of HTTP; the app maps its errors at the edge.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Protocol

from service.sampling import SamplingParams


@dataclass(frozen=True)
class TokenLogprob:
    """One token's log-probability and the `top` most likely tokens at its place, as
    (token id, log-probability), most likely first."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class Delta:
    """A piece of one choice's output (`index`, 0..n-1); the last one of each choice carries
    its finish reason. With `SamplingParams.logprobs` set, `logprobs` scores the tokens
    generated since the previous delta (the text of a token may come in a later delta, held
    back at a stop string or inside a UTF-8 character); with `prompt_logprobs`, the first delta
    of a choice scores the prompt (its first token None)."""

    text: str
    completion_tokens: int
    prompt_tokens: int
    finish_reason: str | None = None
    index: int = 0
    logprobs: tuple[TokenLogprob, ...] | None = None
    prompt_logprobs: tuple[TokenLogprob | None, ...] | None = None


@dataclass(frozen=True)
class GenerationRequest:
    """Everything the engine needs for one reply, as serving and grounding prepared it: the
    prompt's token ids, how to sample (with the row's token constraint, if any) and the
    request's time limit (from submission, queueing included)."""

    prompt_ids: list[int]
    params: SamplingParams
    timeout_s: float | None = None


class EngineObserver(Protocol):
    """Receives the timings the engine measures (implemented by the Prometheus metrics)."""

    def admitted(self, queue_s: float, prompt_tokens: int) -> None: ...
    def prefilled(self, tokens: int) -> None: ...
    def token(self, since_previous_s: float | None, since_arrival_s: float) -> None: ...
    def finished(self, e2e_s: float, finish_reason: str) -> None: ...


class DeltaStream:
    """One admitted request's deltas. Closing it (or dropping it unread) releases its place
    in the engine exactly once, whether or not it was ever read."""

    def __init__(self, deltas: AsyncGenerator[Delta, None], release: Callable[[], None]
                 ) -> None:
        self._deltas = deltas
        # The release must not hold the stream itself, or the stream would never be collected.
        self._release = weakref.finalize(self, release)

    def __aiter__(self) -> DeltaStream:
        return self

    async def __anext__(self) -> Delta:
        return await self._deltas.__anext__()

    async def aclose(self) -> None:
        """Stop reading: the request leaves the engine."""
        try:
            await self._deltas.aclose()
        finally:
            self._release()


class GenerationEngine(Protocol):
    """What serving needs from an engine, local or upstream."""

    # Tokens that end a reply (beside the tokenizer's EOS): a constraint must allow them.
    stop_ids: frozenset[int]
    # Whether `SamplingParams.constraint` is applied; an engine that cannot says so here.
    applies_constraints: bool

    @property
    def num_running(self) -> int:
        """Requests generating now."""
        ...

    @property
    def num_waiting(self) -> int:
        """Requests admitted and waiting for a place."""
        ...

    def start(self) -> None:
        """Start generating."""
        ...

    def stop(self) -> None:
        """Stop; requests still inside fail with `NotReady` (503)."""
        ...

    async def drain(self, timeout_s: float) -> bool:
        """Refuse new requests and wait for the admitted ones; True when all finished."""
        ...

    def submit(self, request: GenerationRequest) -> DeltaStream:
        """Admit `request` now or raise (`QueueFull` 429, `NotReady` 503); its deltas."""
        ...
