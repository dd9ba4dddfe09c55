"""What the engines remember of earlier prompts (service/prefix_memory.py): logic only."""

from __future__ import annotations

import torch

from service.batch import Prefix
from service.prefix_memory import PrefixMemory, RecentPrompts

HEAD = list(range(100, 120))  # a template's turn: 20 tokens
OTHER = list(range(500, 520))  # another kind's head


def test_a_lone_prompt_shares_its_kinds_head_with_the_last_one_of_its_kind() -> None:
    recent = RecentPrompts(min_shared=16)
    assert recent.shared([HEAD + [1, 2]], limit=21) == 0  # nothing earlier
    assert recent.shared([OTHER + [3]], limit=20) == 0  # another kind
    assert recent.shared([HEAD + [4, 5, 6]], limit=22) == 20  # the first chat's head
    assert recent.shared([OTHER + [7, 8]], limit=21) == 20


def test_prompts_sharing_less_than_the_minimum_share_nothing() -> None:
    recent = RecentPrompts(min_shared=16)
    short = HEAD[:10]
    assert recent.shared([short + [1], short + [2]], limit=10) == 0
    assert recent.shared([HEAD + [1], HEAD + [2]], limit=20) == 20  # together, no history


def test_recent_prompts_keep_one_per_kind_and_at_most_size() -> None:
    recent = RecentPrompts(min_shared=2, size=2)
    for head in ([1, 1, 1], [2, 2, 2], [3, 3, 3]):
        recent.shared([[*head, 9]], limit=3)
    assert recent.shared([[1, 1, 1, 8]], limit=3) == 0  # the oldest kind was dropped
    assert recent.shared([[3, 3, 3, 7]], limit=3) == 3
    recent.clear()
    assert recent.shared([[3, 3, 3, 7]], limit=3) == 0


def prefix(ids: list[int]) -> Prefix:
    return Prefix(tuple(ids), ((torch.zeros(1), torch.zeros(1)),))


def test_prefix_memory_gives_the_longest_covering_prefix_and_forgets_the_least_used() -> None:
    memory = PrefixMemory(size=2)
    short, long, other = prefix(HEAD[:16]), prefix(HEAD), prefix(OTHER)
    for p in (short, long):
        memory.remember(p)
    assert memory.covering([HEAD + [1], HEAD + [2]]) is long
    assert memory.covering([HEAD[:18] + [1]]) is short  # the long one does not cover it
    assert memory.covering([HEAD]) is short  # a prompt must keep one token of its own
    memory.remember(short)  # used again: now the most recent
    memory.remember(other)  # the least recently used (long) goes
    assert list(memory) == [other, short] and len(memory) == 2
    assert memory.covering([OTHER + [1]]) is other
