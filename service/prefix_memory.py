"""What an engine remembers of earlier prompts, so that what prompts share is decoded once.

Prefill costs as much as tens of decode steps on a CPU, and prompts come in kinds that open
alike: chat turns with the template's system turn (24 of 39 tokens for SmolLM2's), grounded
reader prompts with the reader's instructions. Both engines find a kind's prefix by comparing
new prompts with the last earlier prompt of their kind (`RecentPrompts`); the torch engine
keeps the encoded prefixes (`PrefixMemory`), the llama.cpp engine whole prompts' cells in its
KV cache (`service.llamacpp_engine`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from service import batch

# Kinds remembered at once (chat turns, grounded reader prompts, a client's own system
# prompt), the least recently used dropped first.
HELD_PREFIXES = 4


class RecentPrompts:
    """The last prompt of each kind: two prompts are of a kind when they share at least
    `min_shared` leading tokens."""

    def __init__(self, min_shared: int, size: int = HELD_PREFIXES) -> None:
        self.min_shared = min_shared
        self.size = size
        self._last: list[Sequence[int]] = []  # most recent first

    def shared(self, prompts: Sequence[Sequence[int]], limit: int) -> int:
        """How many leading tokens (at most `limit`) `prompts` share with each other and with
        the last earlier prompt of their kind, so that a prompt alone still finds the prefix
        it shares with the one before; 0 under `min_shared`. `prompts[-1]` becomes the last
        of their kind."""
        kin = [r for r in self._last if batch.common_prefix([prompts[0], r], limit)
               >= self.min_shared]
        self._last = [prompts[-1], *(r for r in self._last if r not in kin)][:self.size]
        group = [*prompts, *kin[:1]]
        n = batch.common_prefix(group, limit) if len(group) > 1 else 0  # type: ignore[arg-type]
        return n if n >= self.min_shared else 0

    def clear(self) -> None:
        self._last = []


class PrefixMemory:
    """Encoded prefixes (the torch engine's), most recently used first, at most `size`."""

    def __init__(self, size: int = HELD_PREFIXES) -> None:
        self.size = size
        self._prefixes: list[batch.Prefix] = []

    def covering(self, prompts: Sequence[Sequence[int]]) -> batch.Prefix | None:
        """The longest remembered prefix that every prompt starts with."""
        covering = [m for m in self._prefixes if all(m.covers(p) for p in prompts)]
        return max(covering, key=lambda m: len(m.ids), default=None)

    def remember(self, prefix: batch.Prefix) -> None:
        """Keep `prefix` first; past `size`, the least recently used goes."""
        self._prefixes = [prefix, *(p for p in self._prefixes if p is not prefix)]
        del self._prefixes[self.size:]

    def __iter__(self) -> Iterator[batch.Prefix]:
        return iter(self._prefixes)

    def __len__(self) -> int:
        return len(self._prefixes)
