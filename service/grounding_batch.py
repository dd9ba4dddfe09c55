"""Concurrent requests' grounding in batches: one worker thread, one batch at a time.

Each grounded request routes, embeds, searches and chooses its evidence (tens of ms of CPU).
Run one by one in threads, 32 concurrent requests queue behind each other and beside the
engine; batched, their questions (then their evidence sentences) are embedded in one call.
A request waits at most `window_s` for others to join it when the worker is idle; while a
batch runs, the requests that arrive wait for it and form the next batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """Collects items submitted within `window_s` (or up to `max_batch`) and hands them to
    `run(items) -> results` (one result per item, in order; an Exception instance is raised
    to that item's caller alone) on a dedicated worker thread, off the event loop."""

    def __init__(self, run: Callable[[Sequence[T]], Sequence[R | Exception]],
                 window_s: float = 0.005, max_batch: int = 64, name: str = "cogcore-batch"
                 ) -> None:
        self._run = run
        self.window_s = window_s
        self.max_batch = max_batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._busy = False
        self._tasks: set[asyncio.Task[None]] = set()  # running batches, kept from the GC
        self.batch_sizes: list[int] = []  # for tests and benchmarks

    async def submit(self, item: T) -> R:
        """The result of `item`, computed in a batch with whatever arrives beside it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) >= self.max_batch and not self._busy:
            self._flush(loop)
        elif self._timer is None and not self._busy:
            self._timer = loop.call_later(self.window_s, self._flush, loop)
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._busy or not self._pending:
            return
        batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
        self._busy = True
        task = loop.create_task(self._process(batch, loop))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, batch: list[tuple[T, asyncio.Future[R]]],
                       loop: asyncio.AbstractEventLoop) -> None:
        self.batch_sizes.append(len(batch))
        try:
            results: Sequence[Any] = await loop.run_in_executor(
                self._executor, self._run, [item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} gave {len(results)} results")
        except Exception as exc:  # noqa: BLE001 - the whole batch failed: every caller sees it
            results = [exc] * len(batch)
        finally:
            self._busy = False
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # the caller went away (a client disconnected)
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
        # Requests that arrived during the batch have waited long enough: go on at once.
        self._flush(loop)

    def close(self) -> None:
        """Stop the worker thread once the batch in progress is done."""
        self._executor.shutdown(wait=False, cancel_futures=True)
