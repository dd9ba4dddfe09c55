"""Progress of long jobs: a live bar on a terminal, plain lines in a log.

`rich.progress.track` draws nothing until the end when stderr is not a terminal (a `nohup` run,
a container's log), so a build of half an hour looked hung. Off a terminal, progress is a line
such as `least-squares refit: 12/30 (95 s)` after the first item, every `every_seconds`, and
after the last.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import TypeVar

from rich.console import Console
from rich.progress import track as rich_track

T = TypeVar("T")
EVERY_SECONDS = 30.0


def progress_lines(description: str, total: int | None = None,
                   every_seconds: float = EVERY_SECONDS) -> Callable[[int], None]:
    """`advance(n)`: count `n` more items done and print a progress line to stderr when due."""
    of = f"/{total}" if total is not None else ""
    started = time.perf_counter()
    state = {"done": 0, "printed": started}

    def advance(n: int = 1) -> None:
        state["done"] += n
        now = time.perf_counter()
        if state["done"] == n or state["done"] == total or now - state["printed"] >= every_seconds:
            print(f"{description}: {state['done']}{of} ({now - started:.0f} s)", file=sys.stderr,
                  flush=True)
            state["printed"] = now

    return advance


def track(sequence: Iterable[T], description: str, total: int | None = None,
          every_seconds: float = EVERY_SECONDS, console: Console | None = None) -> Iterator[T]:
    """Yield the items of `sequence`, showing how many are done (of `total` when known)."""
    console = console or Console(stderr=True)
    if console.is_terminal:
        yield from rich_track(sequence, description, total=total, console=console)
        return
    if total is None and isinstance(sequence, Sized):
        total = len(sequence)
    advance = progress_lines(description, total, every_seconds)
    for item in sequence:
        yield item
        advance(1)
