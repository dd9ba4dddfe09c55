"""Grounding in batches: the micro-batcher's logic, and a batch grounding as each alone would."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from retrieval.documents import Document
from retrieval.embedder import CachedEncoder
from retrieval.errors import TextTooLargeError
from retrieval.knowledge_base import KnowledgeBase
from service.grounding import Ask, Grounding
from service.grounding_batch import MicroBatcher
from service.routing.router import Router
from service.settings import GroundingSettings
from tests.service.test_grounding import RecordingEncoder


def doubled(items: Sequence[int]) -> list[int | Exception]:
    """Twice each item; an odd item fails alone."""
    return [ValueError(f"odd {i}") if i % 2 else 2 * i for i in items]


def test_concurrent_items_form_one_batch_and_keep_their_order() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: [i * 10 for i in items],
                                                   window_s=0.05)

    async def main() -> list[int]:
        return await asyncio.gather(*(batcher.submit(i) for i in range(12)))

    assert asyncio.run(main()) == [i * 10 for i in range(12)]
    assert batcher.batch_sizes == [12]


def test_an_item_error_is_raised_to_its_caller_alone() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(doubled, window_s=0.02)

    async def main() -> list[int | BaseException]:
        return await asyncio.gather(*(batcher.submit(i) for i in range(6)),
                                    return_exceptions=True)

    results = asyncio.run(main())
    assert [r for r in results if not isinstance(r, BaseException)] == [0, 4, 8]
    assert [str(r) for r in results if isinstance(r, ValueError)] == ["odd 1", "odd 3", "odd 5"]
    assert batcher.batch_sizes == [6]


def test_a_failed_batch_fails_its_callers_and_the_next_batch_runs() -> None:
    calls: list[list[int]] = []

    def run(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        if len(calls) == 1:
            raise RuntimeError("broken")
        return list(items)

    batcher: MicroBatcher[int, int] = MicroBatcher(run, window_s=0.01)

    async def main() -> tuple[list[int | BaseException], int]:
        first = await asyncio.gather(batcher.submit(1), batcher.submit(2),
                                     return_exceptions=True)
        return first, await batcher.submit(3)

    first, second = asyncio.run(main())
    assert [str(e) for e in first] == ["broken", "broken"] and second == 3


def test_a_lone_request_waits_no_longer_than_the_window() -> None:
    window = 0.2
    batcher: MicroBatcher[int, int] = MicroBatcher(lambda items: list(items), window_s=window)

    async def main() -> float:
        start = time.perf_counter()
        await batcher.submit(7)
        return time.perf_counter() - start

    waited = asyncio.run(main())
    assert window * 0.9 <= waited < window + 0.15


def test_requests_arriving_during_a_batch_form_the_next_one_without_the_window() -> None:
    release = threading.Event()

    def run(items: Sequence[int]) -> list[int]:
        if items == [0]:
            release.wait(5)
        return list(items)

    batcher: MicroBatcher[int, int] = MicroBatcher(run, window_s=0.01, max_batch=3)

    async def main() -> list[int]:
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.05)  # the first batch is running
        later = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 6)]
        await asyncio.sleep(0.05)
        release.set()
        return [await first] + list(await asyncio.gather(*later))

    assert asyncio.run(main()) == [0, 1, 2, 3, 4, 5]
    assert batcher.batch_sizes == [1, 3, 2], "at most max_batch, the rest next"


QUESTIONS = ["What is the capital of Elqui?", "What is the capital of Peru?",
             "Which currency does Peru use?", "What is the capital of Zorblax?"]


@pytest.fixture
def grounding(tmp_path: Path) -> Grounding:
    inner = RecordingEncoder()
    encoder = CachedEncoder(inner)
    kb = KnowledgeBase.open(tmp_path / "kb", embedder=encoder)
    kb.upsert([Document("elqui", "The capital of Elqui is Quisun. Elqui lies in the sea."),
               Document("peru", "The capital of Peru is Lima. The currency of Peru is PEN.")])
    router = Router(encoder, retrieval_threshold=-1.0)  # a store match routes to facts
    return Grounding(kb, router, GroundingSettings(abstain_min_score=-1.0))


def test_a_batch_grounds_each_request_as_it_would_alone(grounding: Grounding) -> None:
    inner = grounding.kb.embedder.inner  # type: ignore[attr-defined]
    alone = [grounding.ground([q]) for q in QUESTIONS]
    grounding.kb.embedder._cache.clear()  # type: ignore[attr-defined]
    inner.texts.clear()
    too_long = Ask(("x " * 5000,), "always")
    together = grounding.ground_batch([Ask((q,)) for q in QUESTIONS[:2]] + [too_long]
                                      + [Ask((q,)) for q in QUESTIONS[2:]])
    assert isinstance(together[2], TextTooLargeError), "its error, not the batch's"
    assert together[:2] + together[3:] == alone
    assert any(g.sources for g in alone) and any(g.abstained for g in alone)
    for question in QUESTIONS:
        assert inner.texts.count(question) == 1, "each question embedded once, in one call"
    grounding.kb.close()


def test_aground_batches_concurrent_requests(grounding: Grounding) -> None:
    async def main() -> list:
        return await asyncio.gather(*(grounding.aground([q]) for q in QUESTIONS))

    assert asyncio.run(main()) == [grounding.ground([q]) for q in QUESTIONS]
    assert grounding.batcher.batch_sizes == [len(QUESTIONS)]
    grounding.kb.close()
