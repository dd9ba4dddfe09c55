"""`cogcore loadtest`: bounded closed- and open-loop load against an OpenAI-compatible URL."""

from __future__ import annotations

import asyncio
import datetime as dt
import shlex
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from loadtest.runner import Level, LoadConfig

console = Console(stderr=True)


class EndpointChoice(StrEnum):
    """Which OpenAI route to load."""

    chat = "chat"
    completions = "completions"


def loadtest(
    url: str = typer.Option(..., help="Base URL of the server, e.g. http://127.0.0.1:8000"),
    concurrency: list[str] = typer.Option(
        None, "--concurrency", "-c",
        help="Closed-loop client counts, one level each: -c 1 -c 8 -c 32, or -c 1,8,32"),
    rate: list[str] = typer.Option(
        None, help="Open-loop Poisson rates in req/s (seeded), repeated or comma-separated"),
    requests: int = typer.Option(64, min=1, help="Most requests per level"),
    duration: float = typer.Option(
        300.0, min=0.1, help="Most seconds per level; in-flight requests are cancelled then"),
    max_tokens: int = typer.Option(64, min=1, help="max_tokens of every request"),
    endpoint: EndpointChoice = typer.Option(EndpointChoice.chat, help="Route to load"),
    model: str = typer.Option(None, help="Model name [default: the first of GET /v1/models]"),
    api_key: str = typer.Option(None, envvar="COGCORE_API_KEY", help="Bearer key, if required"),
    temperature: float = typer.Option(0.0, min=0.0, help="0 means greedy (repeatable lengths)"),
    retrieval: str = typer.Option(
        None, help="The requests' `retrieval` field: auto (grounded), never (the engine alone) "
        "or always [default: not sent]"),
    seed: int = typer.Option(0, help="Seeds the prompt mix and the Poisson arrivals"),
    slo: str = typer.Option(
        None, help="Goodput targets in ms, e.g. ttft_ms=1000,tpot_ms=200 (also e2el_ms)"),
    out: Path = typer.Option(Path("loadtest-report"), help="Directory for the JSON/MD/PNG report"),
    allow_remote: bool = typer.Option(
        False, help="Allow a non-loopback URL. Off by default because a load test floods its "
        "target: aim it at another machine only on purpose, with its owner's consent"),
) -> None:
    """Measure TTFT, TPOT, ITL, latency, throughput and goodput at several load levels."""
    from loadtest.client import require_loopback
    from loadtest.metrics import parse_slo
    from loadtest.runner import LoadConfig

    require_loopback(url, allow_remote)
    if retrieval not in (None, "auto", "never", "always"):
        raise typer.BadParameter("auto, never or always", param_hint="--retrieval")
    levels = _levels(concurrency or [], rate or [])
    try:
        targets = parse_slo(slo)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--slo") from None
    config = LoadConfig(
        url=url.rstrip("/"), model=model or _first_model(url, api_key),
        endpoint=endpoint.value, requests=requests, duration_s=duration,
        max_tokens=max_tokens, temperature=temperature, api_key=api_key, seed=seed,
        retrieval=retrieval,
    )
    command = _command(url, levels, config, slo, out)
    paths = _run_levels(config, levels, targets, command, out)
    console.print(f"report: {paths['md']}, {paths['json']}, {paths['png']}")
    typer.echo(str(paths["md"]))


def _command(
    url: str, levels: list[Level], config: LoadConfig, slo: str | None, out: Path
) -> str:
    # The report states the exact command; the key itself is never written out.
    args = ["cogcore", "loadtest", "--url", url, f"--model={config.model}"]
    args += [f"--concurrency={lv.concurrency}" for lv in levels if lv.concurrency]
    args += [f"--rate={lv.rate:g}" for lv in levels if lv.rate]
    args += [f"--requests={config.requests}", f"--duration={config.duration_s:g}",
             f"--max-tokens={config.max_tokens}", f"--endpoint={config.endpoint}",
             f"--temperature={config.temperature:g}", f"--seed={config.seed}"]
    args += [f"--retrieval={config.retrieval}"] if config.retrieval else []
    args += [f"--slo={slo}"] if slo else []
    args += ["--api-key=***"] if config.api_key else []
    return shlex.join([*args, f"--out={out}"])


def _levels(concurrency: list[str], rate: list[str]) -> list[Level]:
    from loadtest.runner import Level

    try:
        levels = [Level(concurrency=int(v)) for v in _split(concurrency)]
        levels += [Level(rate=float(v)) for v in _split(rate)]
    except ValueError as exc:
        raise typer.BadParameter(f"bad --concurrency or --rate: {exc}") from None
    return levels or [Level(concurrency=1)]


def _split(values: list[str]) -> list[str]:
    return [part for value in values for part in value.replace(",", " ").split()]


def _first_model(url: str, api_key: str | None) -> str:
    import httpx

    from loadtest.client import LoadTestError

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(f"{url.rstrip('/')}/v1/models", headers=headers, timeout=10.0)
        response.raise_for_status()
        return str(response.json()["data"][0]["id"])
    except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
        raise LoadTestError(f"cannot list the models at {url} (pass --model): {exc}") from None


def _run_levels(
    config: LoadConfig, levels: list[Level], slo: dict[str, float], command: str, out: Path
) -> dict[str, Path]:
    from loadtest.metrics import summarize
    from loadtest.report import LevelReport, Report, write_report
    from loadtest.runner import run_level

    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    reports = []
    for level in levels:
        with console.status(f"{level.label}: up to {config.requests} requests…"):
            run = asyncio.run(run_level(config, level))
        metrics = summarize(run.results, run.duration_s, run.cancelled, slo)
        reports.append(LevelReport(run, metrics))
        console.print(
            f"{level.label}: {metrics.completed}/{metrics.started} ok in "
            f"{metrics.duration_s:.1f}s, {metrics.output_throughput:.1f} tok/s, "
            f"errors {metrics.errors or 'none'}"
        )
    return write_report(Report(config, slo, reports, command, started), out)
