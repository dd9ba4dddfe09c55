"""The jobs behind `cogcore prune` and `cogcore prune sweep`: load, prune, evaluate, report."""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from cogcore.checkpoint import load_causal_lm, save_checkpoint
from evaluation.run import evaluate_model, headline
from evaluation.suites import Sizes
from pruning.calibration import CalibrationSets, calibration_sets
from pruning.pipeline import PruneConfig, prune
from pruning.report import done_when, sweep_markdown, sweep_plot, write_core_report

console = Console(stderr=True)
READING = ("open_book", "counterfactual", "fictional")


@dataclass(frozen=True)
class RunSettings:
    """What every run of a job shares: where from, on what, how much data."""

    base: Path
    device: str
    calibration_count: int
    sizes: Sizes | None  # None: no evaluation (mechanics only)


def pick_device(requested: str) -> str:
    """`auto` means CUDA when present, else CPU."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def _setup(settings: RunSettings, prose_chars: int,
           everyday: bool = False) -> tuple[Any, Any, CalibrationSets]:
    base, tokenizer = load_causal_lm(settings.base, settings.device)
    with console.status("tokenizing calibration sets…"):
        data = calibration_sets(tokenizer, settings.calibration_count, prose_chars=prose_chars,
                                everyday=everyday)
    return base, tokenizer, data


def _command() -> str:
    return shlex.join(["cogcore", *sys.argv[1:]])


def prune_job(settings: RunSettings, cfg: PruneConfig, out: Path) -> dict[str, Any]:
    """Prune one core, save it to `out` with core_report.json/md, and return the report."""
    start = time.perf_counter()
    base, tokenizer, data = _setup(settings, cfg.refit_prose_chars, cfg.everyday_prose)
    result = prune(base, data, cfg, tokenizer)
    save_checkpoint(result.model, result.tokenizer, out)
    seconds = {**result.seconds, "prune_total": time.perf_counter() - start}
    report: dict[str, Any] = {
        "command": _command(), "base": str(settings.base), "out": str(out),
        "device": settings.device, "config": cfg.as_dict(),
        "width": result.model.config.intermediate_size, "seconds": seconds,
        "sizes": settings.sizes.__dict__ if settings.sizes else None,
        "params": {"base": result.params_before, "core": result.params_after,
                   "ratio": result.params_after / result.params_before},
        "details": result.details,
    }
    if settings.sizes is None:
        (out / "core_report.json").write_text(json.dumps(report, indent=2) + "\n")
        return report
    clock = time.perf_counter()
    base_result = evaluate_model(base, tokenizer, settings.sizes, "base")
    core_result = evaluate_model(result.model, result.tokenizer, settings.sizes, "core")
    seconds["evaluation"] = time.perf_counter() - clock
    report.update(
        base_figures=headline(base_result), core_figures=headline(core_result),
        suites={"base": base_result, "core": core_result},
    )
    report["done_when"] = done_when(report["base_figures"], report["core_figures"],
                                    report["params"]["ratio"])
    write_core_report(out, report)
    return report


def _run_row(cfg: PruneConfig, label: str, result: Any, figures: dict, base: dict) -> dict:
    reading = [figures[k] / base[k] if base[k] else 0.0 for k in READING]
    cb = base["closed_book_heldout"]
    return {
        "name": f"{cfg.method} {label}", "method": cfg.method, "label": label,
        "config": cfg.as_dict(), "params_ratio": result.params_after / result.params_before,
        "figures": figures, "seconds": result.seconds,
        "closed_book_retention": figures["closed_book_heldout"] / cb if cb else 0.0,
        "reading_retention": sum(reading) / len(reading),
        "done_when": done_when(base, figures, result.params_after / result.params_before),
    }


def sweep_job(
    settings: RunSettings, runs: list[tuple[str, PruneConfig]], out: Path
) -> dict[str, Any]:
    """Evaluate the base once, then every (label, config); write sweep.json/.md/.png to `out`."""
    if settings.sizes is None:
        raise ValueError("a sweep needs evaluation sizes")
    out.mkdir(parents=True, exist_ok=True)
    prose_chars = max((cfg.refit_prose_chars for _, cfg in runs), default=0)
    everyday = {cfg.everyday_prose for _, cfg in runs}
    if len(everyday) > 1:
        raise ValueError("a sweep's runs share one calibration: all or none with everyday prose")
    base, tokenizer, data = _setup(settings, prose_chars, everyday == {True})
    base_figures = headline(evaluate_model(base, tokenizer, settings.sizes, "base"))
    sweep: dict[str, Any] = {"command": _command(), "base": str(settings.base),
                             "device": settings.device, "sizes": settings.sizes.__dict__,
                             "base_figures": base_figures, "runs": []}
    for index, (label, cfg) in enumerate(runs, start=1):
        console.print(f"[{index}/{len(runs)}] {cfg.method} {label}")
        result = prune(base, data, cfg, tokenizer)
        figures = headline(evaluate_model(result.model, result.tokenizer, settings.sizes,
                                          cfg.method))
        sweep["runs"].append(_run_row(cfg, label, result, figures, base_figures))
        del result
        # Written after every run, so an interrupted sweep keeps what it measured.
        (out / "sweep.json").write_text(json.dumps(sweep, indent=2) + "\n")
    (out / "sweep.md").write_text(f"Command: `{sweep['command']}`\n\n" + sweep_markdown(sweep))
    sweep_plot(sweep, out / "sweep.png")
    return sweep
