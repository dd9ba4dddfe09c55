"""The load-test metric math on synthetic timestamps, against values worked out by hand."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli import app as cli_app
from loadtest import metrics
from loadtest.client import (
    LoadTestError,
    RequestResult,
    is_loopback_host,
    require_loopback,
)
from loadtest.runner import Level
from loadtest.workload import build_workload


def _ok(sent: float, chunks: list[float], end: float, usage: int | None) -> RequestResult:
    return RequestResult("factual", sent, status=200, chunk_times=chunks, end_at=end,
                         usage_tokens=usage, prompt_tokens=10)


@pytest.fixture
def results() -> list[RequestResult]:
    return [
        _ok(0.0, [0.1, 0.15, 0.25, 0.3], 0.35, usage=4),
        _ok(1.0, [1.2, 1.4], 1.4, usage=None),  # no usage chunk: tokens = content chunks
        RequestResult("reasoning", 1.5, status=429, error="429", end_at=1.51),
        _ok(2.0, [2.5], 2.6, usage=1),  # one token: no TPOT, counted as 0 for goodput
    ]


def test_per_request_metrics_follow_vllm_definitions(results: list[RequestResult]) -> None:
    first, second, _, single = results
    assert metrics.ttft(first) == pytest.approx(0.1)
    assert metrics.latency(first) == pytest.approx(0.35)
    assert metrics.tpot(first) == pytest.approx((0.35 - 0.1) / 3)
    assert metrics.itls(first) == pytest.approx([0.05, 0.1, 0.05])
    assert metrics.output_tokens(second) == 2
    assert metrics.tpot(second) == pytest.approx(0.2)
    assert metrics.tpot(single) is None


def test_summary_counts_throughput_and_goodput(results: list[RequestResult]) -> None:
    slo = metrics.parse_slo("ttft_ms=150,tpot_ms=100")
    m = metrics.summarize(results, duration_s=2.0, cancelled=1, slo=slo)
    assert (m.started, m.completed, m.failed, m.cancelled) == (5, 3, 1, 1)
    assert m.errors == {"429": 1}
    assert m.output_tokens == 7 and m.prompt_tokens == 30
    assert m.request_throughput == pytest.approx(1.5)
    assert m.output_throughput == pytest.approx(3.5)
    # Only the first request meets both targets (the others miss TTFT).
    assert m.goodput == pytest.approx(0.5)
    assert m.good_fraction == pytest.approx(1 / 3)


def test_summary_distributions_use_linear_percentiles(results: list[RequestResult]) -> None:
    m = metrics.summarize(results, duration_s=2.0, cancelled=0, slo={})
    assert m.goodput is None and m.good_fraction is None
    ttft = m.ttft_ms
    assert ttft is not None and ttft.count == 3
    assert (ttft.mean, ttft.median, ttft.p90, ttft.p99) == pytest.approx(
        (800 / 3, 200.0, 440.0, 494.0))
    itl = m.itl_ms  # pooled gaps 50, 100, 50, 200 ms
    assert itl is not None and itl.count == 4
    assert (itl.mean, itl.median, itl.p90, itl.p99) == pytest.approx((100.0, 75.0, 170.0, 197.0))
    assert m.tpot_ms is not None and m.tpot_ms.mean == pytest.approx((250 / 3 + 200) / 2)
    assert m.e2el_ms is not None and m.e2el_ms.median == pytest.approx(400.0)


def test_no_successful_request_gives_no_distribution() -> None:
    failed = [RequestResult("factual", 0.0, status=503, error="503", end_at=0.1)]
    m = metrics.summarize(failed, duration_s=1.0, cancelled=0, slo={"ttft_ms": 1.0})
    assert m.completed == 0 and m.errors == {"503": 1}
    assert m.ttft_ms is None and m.itl_ms is None and m.goodput == 0.0


@pytest.mark.parametrize("text", ["ttft=5", "ttft_ms", "tpot_ms=-1", "e2el_ms=0"])
def test_bad_slo_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        metrics.parse_slo(text)


def test_slo_parses_every_key() -> None:
    assert metrics.parse_slo("ttft_ms=500, tpot_ms=50,e2el_ms=9000") == {
        "ttft_ms": 500.0, "tpot_ms": 50.0, "e2el_ms": 9000.0}
    assert metrics.parse_slo(None) == {}


def test_workload_is_a_seeded_half_and_half_mix() -> None:
    prompts = build_workload(7, seed=3)
    assert [p.kind for p in prompts].count("factual") == 4
    assert [p.kind for p in prompts].count("reasoning") == 3
    assert build_workload(7, seed=3) == prompts
    assert build_workload(40, seed=4) != build_workload(40, seed=5)


def test_level_needs_exactly_one_positive_knob() -> None:
    assert Level(concurrency=8).label == "c=8"
    assert Level(rate=2.5).label == "rate=2.5/s"
    for bad in ({}, {"concurrency": 2, "rate": 1.0}, {"concurrency": 0}, {"rate": -1.0}):
        with pytest.raises(ValueError):
            Level(**bad)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.3.2.1", "::1", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1:8000", "http://example.com", "http://0.0.0.0:8000",
            "https://api.openai.com/v1", "http://localhost.example.com"])
def test_non_loopback_url_is_refused_unless_allowed(url: str) -> None:
    with pytest.raises(LoadTestError, match="--allow-remote"):
        require_loopback(url, allow_remote=False)
    require_loopback(url, allow_remote=True)


def test_non_http_url_is_refused() -> None:
    with pytest.raises(LoadTestError, match="not an http"):
        require_loopback("ftp://127.0.0.1/x", allow_remote=True)


def test_cli_refuses_a_remote_url_before_sending_anything() -> None:
    result = CliRunner().invoke(cli_app, ["loadtest", "--url", "http://192.0.2.1:8000"])
    assert isinstance(result.exception, LoadTestError)
    assert "--allow-remote" in str(result.exception)
