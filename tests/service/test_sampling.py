"""The per-row logits-processing hook of `sample_rows`: order, batching, forking, fast path."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from service.sampling import SamplingParams, make_generator, sample_rows


class Ban:
    """Blocks one token (stateless)."""

    def __init__(self, token: int) -> None:
        self.token = token

    def __call__(self, logits: torch.Tensor, reply: Sequence[int]) -> None:
        logits[self.token] = float("-inf")


class Boost:
    """Adds to one token and records what it saw (state kept per row: forked)."""

    def __init__(self, token: int, amount: float) -> None:
        self.token, self.amount, self.seen = token, amount, []

    def __call__(self, logits: torch.Tensor, reply: Sequence[int]) -> None:
        self.seen.append((float(logits[self.token]), list(reply)))
        logits[self.token] += self.amount

    def fork(self) -> Boost:
        return Boost(self.token, self.amount)


class Batched:
    """Handles all its rows in one call."""

    calls: list[list[int]] = []

    def __init__(self, token: int) -> None:
        self.token = token

    @staticmethod
    def apply_rows(logits: torch.Tensor, items: list) -> None:
        Batched.calls.append([row for row, _, _ in items])
        for row, proc, _ in items:
            logits[row, proc.token] = 100.0

    def __call__(self, logits: torch.Tensor, reply: Sequence[int]) -> None:
        raise AssertionError("apply_rows is used instead")


def greedy(*processors: object) -> SamplingParams:
    return SamplingParams(8, processors=tuple(processors))


def test_processors_run_in_order_on_their_rows_only() -> None:
    logits = torch.zeros(3, 5)
    logits[:, 2] = 1.0
    boost = Boost(4, 5.0)
    params = [greedy(Ban(2)), greedy(boost, Ban(4)), greedy()]
    tokens = sample_rows(logits, params, [None] * 3, [[], [7, 8], []])
    # Row 0: 2 banned, ties go to the first index; row 1: 4 boosted then banned, so 2 wins.
    assert tokens == [0, 2, 2]
    assert boost.seen == [(0.0, [7, 8])]  # it saw its own row's reply and the raw logit
    assert logits[1, 4] == float("-inf") and logits[2].tolist() == [0, 0, 1, 0, 0]


def test_apply_rows_takes_all_rows_of_a_class_at_once() -> None:
    Batched.calls.clear()
    logits = torch.zeros(3, 6)
    tokens = sample_rows(logits, [greedy(Batched(1)), greedy(), greedy(Batched(5))],
                         [None] * 3, [[], [], []])
    assert Batched.calls == [[0, 2]]
    assert tokens == [1, 0, 5]


def test_sampled_rows_see_the_processed_logits() -> None:
    params = SamplingParams(8, temperature=1.0, seed=3, processors=(Ban(0), Ban(1)))
    logits = torch.zeros(1, 3)
    draws = {sample_rows(logits.clone(), [params], [make_generator(params)], [[]])[0]
             for _ in range(20)}
    assert draws == {2}


def test_for_row_forks_state_and_shifts_the_seed() -> None:
    boost, ban = Boost(1, 1.0), Ban(0)
    params = SamplingParams(8, temperature=0.8, seed=10, processors=(boost, ban))
    assert params.for_row(0) is params
    second = params.for_row(1)
    assert second.seed == 11 and second.processors[1] is ban
    assert second.processors[0] is not boost and isinstance(second.processors[0], Boost)
    assert SamplingParams(8).for_row(3).seed is None
