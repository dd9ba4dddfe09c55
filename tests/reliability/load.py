"""Bounded concurrent HTTP load on loopback: every loop has a count and a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx


@dataclass
class Outcome:
    """One request: when it started (s since the run began), its status and latency."""

    kind: str
    started_s: float
    status: int  # 0: a transport error
    latency_s: float
    retry_after: str | None = None
    error: str = ""


@dataclass
class Run:
    """Every outcome of a load run."""

    outcomes: list[Outcome] = field(default_factory=list)

    def statuses(self) -> dict[str, int]:
        """Count of each status (0 = transport error), as strings for JSON."""
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[str(o.status)] = counts.get(str(o.status), 0) + 1
        return dict(sorted(counts.items()))

    def unexpected(self, allowed: set[int]) -> list[Outcome]:
        """Outcomes whose status is not in `allowed`."""
        return [o for o in self.outcomes if o.status not in allowed]


Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


async def timed(client: httpx.AsyncClient, kind: str, request: Request, t0: float,
                run: Run) -> Outcome:
    """Send one request, record its outcome in `run`."""
    started = time.monotonic()
    try:
        response = await request(client)
        outcome = Outcome(kind, started - t0, response.status_code, time.monotonic() - started,
                          response.headers.get("retry-after"),
                          response.text[:200] if response.status_code >= 400 else "")
    except httpx.HTTPError as exc:
        outcome = Outcome(kind, started - t0, 0, time.monotonic() - started, error=repr(exc))
    run.outcomes.append(outcome)
    return outcome


def client(url: str, connections: int, headers: dict[str, str], timeout_s: float = 120
           ) -> httpx.AsyncClient:
    """An async client with room for `connections` concurrent requests."""
    return httpx.AsyncClient(
        base_url=url, headers=headers, timeout=timeout_s,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections))


async def burst(url: str, headers: dict[str, str], requests: list[tuple[str, Request]]
                ) -> Run:
    """Send all `requests` at once; wait for every one."""
    run, t0 = Run(), time.monotonic()
    async with client(url, len(requests), headers) as http:
        await asyncio.gather(*(timed(http, kind, req, t0, run) for kind, req in requests))
    return run


async def steady(url: str, headers: dict[str, str], workers: int, duration_s: float,
                 pick: Callable[[int], tuple[str, Request]], max_requests: int = 100_000,
                 backoff_s: float = 0.2) -> Run:
    """`workers` clients each sending back to back for `duration_s` (429s back off briefly)."""
    run, t0 = Run(), time.monotonic()
    counter = iter(range(max_requests))

    async def worker() -> None:
        while time.monotonic() - t0 < duration_s:
            index = next(counter, None)
            if index is None:
                return
            kind, request = pick(index)
            outcome = await timed(http, kind, request, t0, run)
            if outcome.status == 429:
                await asyncio.sleep(backoff_s)

    async with client(url, workers, headers) as http:
        await asyncio.gather(*(worker() for _ in range(workers)))
    return run
