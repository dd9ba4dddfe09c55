"""The combined report of one load test: JSON for machines, Markdown for people, PNG plots."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest import metrics
from loadtest.metrics import Distribution, LevelMetrics
from loadtest.plots import plot_levels
from loadtest.runner import LevelRun, LoadConfig

LATENCIES = (
    ("TTFT", "ttft_ms"), ("TPOT", "tpot_ms"), ("ITL", "itl_ms"), ("E2E latency", "e2el_ms"),
)


@dataclass(frozen=True)
class LevelReport:
    """One level's raw run and its metrics."""

    run: LevelRun
    metrics: LevelMetrics


@dataclass(frozen=True)
class Report:
    """Everything one `cogcore loadtest` run measured."""

    config: LoadConfig
    slo: dict[str, float]
    levels: list[LevelReport]
    command: str
    started_at: str


def write_report(report: Report, out_dir: Path) -> dict[str, Path]:
    """Write loadtest.json, loadtest.md and loadtest.png under `out_dir`; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / f"loadtest.{kind}" for kind in ("json", "md", "png")}
    paths["json"].write_text(json.dumps(to_json(report), indent=2) + "\n")
    plot_levels([(lv.run.level.label, lv.metrics) for lv in report.levels], paths["png"])
    paths["md"].write_text(to_markdown(report, paths["png"].name))
    return paths


def to_json(report: Report) -> dict[str, Any]:
    """The report as plain JSON data, per-request records included."""
    config = dataclasses.asdict(report.config)
    config["api_key"] = "***" if report.config.api_key else None  # never write a secret out
    return {
        "command": report.command,
        "started_at": report.started_at,
        "config": config,
        "slo": report.slo,
        "levels": [
            {
                "level": dataclasses.asdict(lv.run.level),
                "label": lv.run.level.label,
                "metrics": dataclasses.asdict(lv.metrics),
                "requests": [_record(r) for r in lv.run.results],
            }
            for lv in report.levels
        ],
    }


def _record(result: metrics.RequestResult) -> dict[str, Any]:
    record: dict[str, Any] = {"kind": result.kind, "status": result.status, "error": result.error}
    if result.ok:
        record |= {
            "ttft_ms": metrics.ttft(result) * 1000,
            "e2el_ms": metrics.latency(result) * 1000,
            "output_tokens": metrics.output_tokens(result),
        }
    elif result.detail:
        record["detail"] = result.detail
    return record


def to_markdown(report: Report, plot_name: str) -> str:
    """A summary table over levels, then one latency table (and error counts) per level."""
    cfg = report.config
    slo = ", ".join(f"{k}={v:g}" for k, v in report.slo.items()) or "none stated"
    lines = [
        "# Load test",
        "",
        f"- Target: `{cfg.url}` ({cfg.endpoint}), model `{cfg.model}`, started {report.started_at}",
        f"- Per level: at most {cfg.requests} requests or {cfg.duration_s:g} s, whichever comes "
        f"first; max_tokens {cfg.max_tokens}, temperature {cfg.temperature:g}, seed {cfg.seed}",
        f"- Goodput targets (SLO): {slo}",
        f"- Command: `{report.command}`",
        "",
        "| level | completed | failed | cancelled | duration s | req/s | output tok/s "
        "| goodput req/s | good % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for lv in report.levels:
        m = lv.metrics
        good_pct = None if m.good_fraction is None else m.good_fraction * 100
        lines.append(
            f"| {lv.run.level.label} | {m.completed}/{m.started} | {m.failed} | {m.cancelled} "
            f"| {m.duration_s:.1f} | {m.request_throughput:.2f} | {m.output_throughput:.1f} "
            f"| {_num(m.goodput, '.2f')} | {_num(good_pct, '.0f')} |"
        )
    lines += ["", f"![latency and throughput per level]({plot_name})", ""]
    for lv in report.levels:
        lines += _level_section(lv)
    lines += [
        "Definitions as vLLM's `bench serve`: TTFT = first content chunk - send; "
        "TPOT = (E2E - TTFT) / (output tokens - 1); ITL = gaps between successive content "
        "chunks; E2E = end of stream - send. Output tokens from the final usage chunk.",
        "",
    ]
    return "\n".join(lines)


def _level_section(lv: LevelReport) -> list[str]:
    m = lv.metrics
    lines = [
        f"## {lv.run.level.label}",
        "",
        "| metric (ms) | n | mean | median | p90 | p99 |",
        "|---|---|---|---|---|---|",
    ]
    for name, attr in LATENCIES:
        dist: Distribution | None = getattr(m, attr)
        if dist is None:
            lines.append(f"| {name} | 0 | - | - | - | - |")
        else:
            lines.append(
                f"| {name} | {dist.count} | {dist.mean:.1f} | {dist.median:.1f} "
                f"| {dist.p90:.1f} | {dist.p99:.1f} |"
            )
    lines.append("")
    if m.errors:
        lines.append("Errors: " + ", ".join(f"`{k}` x{v}" for k, v in sorted(m.errors.items())))
        lines.append("")
    return lines


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
