"""Drive one load level: closed loop at a fixed concurrency, or open loop at a Poisson rate.

Every level is bounded twice: it stops after `requests` requests or `duration_s` seconds,
whichever comes first, and the requests still in flight at the deadline are cancelled.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from loadtest.client import Endpoint, RequestResult, build_payload, stream_request
from loadtest.workload import Prompt, build_workload

Send = Callable[[Prompt], Awaitable[None]]


@dataclass(frozen=True)
class LoadConfig:
    """What every level of one run shares."""

    url: str
    model: str
    endpoint: Endpoint = "chat"
    requests: int = 64
    duration_s: float = 300.0
    max_tokens: int = 64
    temperature: float = 0.0
    api_key: str | None = None
    seed: int = 0
    retrieval: str | None = None  # the request's `retrieval` (auto, never, always); None: unset


@dataclass(frozen=True)
class Level:
    """One load level: a closed-loop concurrency or an open-loop request rate (req/s)."""

    concurrency: int | None = None
    rate: float | None = None

    def __post_init__(self) -> None:
        if (self.concurrency is None) == (self.rate is None):
            raise ValueError("a level has either a concurrency or a rate")
        if (self.concurrency is not None and self.concurrency < 1) or (
            self.rate is not None and self.rate <= 0
        ):
            raise ValueError("concurrency and rate must be positive")

    @property
    def label(self) -> str:
        """A short name for tables and plots."""
        return f"c={self.concurrency}" if self.concurrency else f"rate={self.rate:g}/s"


@dataclass
class LevelRun:
    """The raw outcome of one level."""

    level: Level
    results: list[RequestResult] = field(default_factory=list)
    started: int = 0
    duration_s: float = 0.0

    @property
    def cancelled(self) -> int:
        """Requests cut off at the deadline."""
        return self.started - len(self.results)


async def run_level(
    config: LoadConfig, level: Level, transport: httpx.AsyncBaseTransport | None = None
) -> LevelRun:
    """Run one level to its request count or its deadline and return what was measured."""
    run = LevelRun(level)
    prompts = build_workload(config.requests, config.seed)
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    # One connection per client, so the pool never queues a request the server should see.
    pool = level.concurrency or config.requests
    async with httpx.AsyncClient(
        base_url=config.url, headers=headers, transport=transport,
        timeout=httpx.Timeout(config.duration_s + 10.0, connect=10.0),
        limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
    ) as client:

        async def send(prompt: Prompt) -> None:
            run.started += 1
            payload = build_payload(
                config.endpoint, config.model, prompt, config.max_tokens, config.temperature,
                config.retrieval)
            run.results.append(await stream_request(client, config.endpoint, payload, prompt.kind))

        start = time.perf_counter()
        try:
            async with asyncio.timeout(config.duration_s):
                if level.concurrency:
                    await _closed_loop(send, prompts, level.concurrency)
                else:
                    await _open_loop(send, prompts, level.rate or 1.0, config.seed)
        except TimeoutError:
            pass  # the deadline is a normal end: the task group has cancelled what was in flight
        run.duration_s = time.perf_counter() - start
    return run


async def _closed_loop(send: Send, prompts: list[Prompt], concurrency: int) -> None:
    pending = iter(prompts)  # shared: each prompt is taken by exactly one client

    async def client_loop() -> None:
        for prompt in pending:
            await send(prompt)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, len(prompts))):
            group.create_task(client_loop())


async def _open_loop(send: Send, prompts: list[Prompt], rate: float, seed: int) -> None:
    rng = random.Random(seed)
    async with asyncio.TaskGroup() as group:
        for index, prompt in enumerate(prompts):
            group.create_task(send(prompt))
            if index + 1 < len(prompts):
                # Exponential gaps make the arrivals a Poisson process, as vLLM's --request-rate.
                await asyncio.sleep(rng.expovariate(rate))
