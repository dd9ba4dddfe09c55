"""Figures of the reliability checks: printed and written to artifacts/reliability/NAME.json."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def out_dir() -> Path:
    """Where the figures go (COGCORE_RELIABILITY_OUT, else artifacts/reliability)."""
    path = Path(os.environ.get("COGCORE_RELIABILITY_OUT", REPO / "artifacts" / "reliability"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def record(name: str, figures: dict) -> None:
    """Print `figures` and write them as JSON for docs/reliability.md."""
    text = json.dumps(figures, indent=2, sort_keys=True, default=str)
    print(f"\n[reliability] {name}: {text}")
    (out_dir() / f"{name}.json").write_text(text + "\n")


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (nearest rank) of `values`, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1], 4)


def env_int(name: str, default: int) -> int:
    """An integer knob from the environment: short in CI, long under `make reliability`."""
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    """A float knob from the environment."""
    return float(os.environ.get(name, default))
