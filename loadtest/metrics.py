"""Serving metrics as vLLM's `benchmarks/benchmark_serving.py` (`vllm bench serve`) defines them.

Per successful request, with t0 the send time and t_i the arrival of the i-th content chunk:
- TTFT = t_1 - t0; e2e latency = end of the stream ([DONE]) - t0;
- TPOT = (e2e - TTFT) / (output_tokens - 1), only for requests with more than one token
  (for goodput a one-token request counts as TPOT 0, as vLLM does);
- ITL = every gap t_{i+1} - t_i, pooled over all requests (a chunk may carry several tokens);
- throughputs and goodput divide by the level's wall-clock duration.
Output tokens come from the final usage chunk, else from the number of content chunks.
Distributions report mean, median, p90 and p99 (numpy's linear percentile), in milliseconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from loadtest.client import RequestResult

SLO_KEYS = ("ttft_ms", "tpot_ms", "e2el_ms")


@dataclass(frozen=True)
class Distribution:
    """Summary of one latency metric, in milliseconds."""

    count: int
    mean: float
    median: float
    p90: float
    p99: float


@dataclass(frozen=True)
class LevelMetrics:
    """Everything reported for one concurrency level or request rate."""

    started: int
    completed: int
    failed: int
    cancelled: int
    errors: dict[str, int]
    duration_s: float
    output_tokens: int
    prompt_tokens: int
    request_throughput: float
    output_throughput: float
    goodput: float | None
    good_fraction: float | None
    ttft_ms: Distribution | None
    tpot_ms: Distribution | None
    itl_ms: Distribution | None
    e2el_ms: Distribution | None


def parse_slo(text: str | None) -> dict[str, float]:
    """Parse `ttft_ms=500,tpot_ms=100` into latency targets in milliseconds."""
    slo: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in SLO_KEYS:
            raise ValueError(f"bad SLO {item!r}: use {', '.join(k + '=MS' for k in SLO_KEYS)}")
        if float(value) <= 0:
            raise ValueError(f"SLO {key} must be positive")
        slo[key] = float(value)
    return slo


def ttft(result: RequestResult) -> float:
    """Seconds from sending to the first content chunk."""
    return result.chunk_times[0] - result.sent_at


def latency(result: RequestResult) -> float:
    """Seconds from sending to the end of the stream."""
    assert result.end_at is not None, "a finished request has an end time"
    return result.end_at - result.sent_at


def output_tokens(result: RequestResult) -> int:
    """Tokens generated: the usage chunk's count, else the number of content chunks."""
    return result.usage_tokens if result.usage_tokens else len(result.chunk_times)


def tpot(result: RequestResult) -> float | None:
    """Seconds per output token after the first; None for a one-token answer."""
    tokens = output_tokens(result)
    if tokens < 2:
        return None
    return (latency(result) - ttft(result)) / (tokens - 1)


def itls(result: RequestResult) -> list[float]:
    """Gaps in seconds between successive content chunks."""
    return np.diff(result.chunk_times).tolist()


def distribution(values_s: Sequence[float]) -> Distribution | None:
    """Mean, median, p90 and p99 in milliseconds; None when there is nothing to summarise."""
    if not values_s:
        return None
    ms = np.asarray(values_s, dtype=float) * 1000.0
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return Distribution(len(ms), float(ms.mean()), float(p50), float(p90), float(p99))


def is_good(result: RequestResult, slo: dict[str, float]) -> bool:
    """Whether a successful request meets every stated latency target."""
    measured = {
        "ttft_ms": ttft(result) * 1000,
        "tpot_ms": (tpot(result) or 0.0) * 1000,
        "e2el_ms": latency(result) * 1000,
    }
    return all(measured[key] <= target for key, target in slo.items())


def summarize(
    results: Sequence[RequestResult], duration_s: float, cancelled: int, slo: dict[str, float]
) -> LevelMetrics:
    """Aggregate one level's finished requests (and how many were cut at the deadline)."""
    if duration_s <= 0:
        raise ValueError("a level's duration must be positive")
    done = [r for r in results if r.ok]
    tokens = sum(output_tokens(r) for r in done)
    good = sum(is_good(r, slo) for r in done) if slo else None
    return LevelMetrics(
        started=len(results) + cancelled,
        completed=len(done),
        failed=len(results) - len(done),
        cancelled=cancelled,
        errors=dict(Counter(r.error for r in results if r.error is not None)),
        duration_s=duration_s,
        output_tokens=tokens,
        prompt_tokens=sum(r.prompt_tokens or 0 for r in done),
        request_throughput=len(done) / duration_s,
        output_throughput=tokens / duration_s,
        goodput=None if good is None else good / duration_s,
        good_fraction=None if good is None or not done else good / len(done),
        ttft_ms=distribution([ttft(r) for r in done]),
        tpot_ms=distribution([t for r in done if (t := tpot(r)) is not None]),
        itl_ms=distribution([gap for r in done for gap in itls(r)]),
        e2el_ms=distribution([latency(r) for r in done]),
    )
