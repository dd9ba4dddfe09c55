"""Shared pieces of the retrieval benchmarks: deterministic synthetic texts, timing, memory."""

from __future__ import annotations

import json
import random
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

TOPICS = ["river", "harbour", "mountain", "library", "railway", "orchard", "festival", "bridge",
          "market", "glacier", "vineyard", "museum", "canal", "forest", "quarry", "lighthouse"]
VERBS = ["borders", "supplies", "overlooks", "hosts", "replaced", "funds", "connects", "protects"]


def synthetic_texts(n: int, seed: int) -> list[str]:
    """`n` distinct short passages (two or three sentences), the same for the same seed."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        a, b, c = rng.sample(TOPICS, 3)
        year = rng.randint(1700, 2020)
        sentences = [f"The {a} of district {i} {rng.choice(VERBS)} the old {b}.",
                     f"It was first recorded in {year} near the {c}."]
        if rng.random() < 0.5:
            sentences.append(f"Visitors count {rng.randint(10, 9999)} {c}s every season.")
        texts.append(" ".join(sentences))
    return texts


def percentiles_ms(seconds: list[float], quantiles: tuple[int, ...] = (50, 99)
                   ) -> dict[str, float]:
    """Percentiles of durations (p50 and p99 unless asked), in milliseconds."""
    ms = np.array(seconds) * 1000
    return {f"p{q}_ms": float(np.percentile(ms, q)) for q in quantiles}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """fn's result and the wall-clock seconds it took."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def rss_mib() -> dict[str, float]:
    """Resident memory now and at peak, in MiB."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return {"rss_mib": pages * resource.getpagesize() / 2**20,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def write_report(name: str, report: dict[str, Any], markdown: list[str], out: Path) -> None:
    """Write `<name>.json` and `<name>.md` under `out`, and print the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{name}.md").write_text("\n".join(markdown) + "\n")
    print("\n".join(markdown))
    print(f"wrote {out / name}.json and .md")
