"""Split documents into passages on sentence boundaries, sized in the embedder's tokens.

A document that fits in one passage stays whole (its exact text). Longer ones are packed greedily
sentence by sentence; each new passage repeats the previous passage's last sentences up to the
overlap budget, so a fact that straddles a boundary is still whole in one passage. A single
sentence longer than a passage is cut between words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# A sentence ends at . ! or ? followed by space and anything but a lower-case letter, or at a
# blank line; "e.g. this" and "55.845" stay whole.
_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?![a-z])|\n\s*\n")

TokenCounter = Callable[[Sequence[str]], list[int]]


@dataclass(frozen=True)
class ChunkSettings:
    """Passage size and overlap, both in embedder tokens."""

    max_tokens: int = 128
    overlap_tokens: int = 32

    def __post_init__(self) -> None:
        if self.max_tokens < 8 or not 0 <= self.overlap_tokens < self.max_tokens:
            raise ValueError("need max_tokens >= 8 and 0 <= overlap_tokens < max_tokens")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each sentence, surrounding whitespace excluded."""
    spans = []
    start = 0
    for match in [*_BOUNDARY.finditer(text), None]:
        end = match.start() if match else len(text)
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + len(piece.rstrip())))
        if match:
            start = match.end()
    return spans


def _split_long(text: str, span: tuple[int, int], limit: int, count: TokenCounter):
    """Cut one over-long sentence between words into spans of at most `limit` tokens."""
    found = re.finditer(r"\S+", text[span[0] : span[1]])
    words = [(span[0] + m.start(), span[0] + m.end()) for m in found]
    sizes = count([text[a:b] for a, b in words])
    pieces: list[tuple[tuple[int, int], int]] = []
    start, end, used = words[0][0], words[0][1], 0
    for (a, b), size in zip(words, sizes, strict=True):
        if used and used + size > limit:
            pieces.append(((start, end), used))
            start, used = a, 0
        used += size
        end = b
    pieces.append(((start, end), used))
    return pieces


def chunk_text(text: str, count: TokenCounter, settings: ChunkSettings) -> list[str]:
    """The passages of `text`: one if it fits in `settings.max_tokens`, else sentence-packed."""
    if count([text])[0] <= settings.max_tokens:
        return [text]
    spans = sentence_spans(text)
    units: list[tuple[tuple[int, int], int]] = []
    for span, size in zip(spans, count([text[a:b] for a, b in spans]), strict=True):
        if size > settings.max_tokens:
            units.extend(_split_long(text, span, settings.max_tokens, count))
        else:
            units.append((span, size))
    return [text[group[0][0][0] : group[-1][0][1]] for group in _pack(units, settings)]


def _pack(units: list[tuple[tuple[int, int], int]], settings: ChunkSettings):
    """Greedy packing of sized spans with a trailing-sentence overlap between passages."""
    groups: list[list[tuple[tuple[int, int], int]]] = []
    current: list[tuple[tuple[int, int], int]] = []
    used = 0
    for unit in units:
        if current and used + unit[1] > settings.max_tokens:
            groups.append(current)
            carried: list[tuple[tuple[int, int], int]] = []
            for prior in reversed(current):
                if sum(s for _, s in carried) + prior[1] > settings.overlap_tokens:
                    break
                carried.insert(0, prior)
            # The overlap must leave room for the new sentence, or packing never advances.
            while carried and sum(s for _, s in carried) + unit[1] > settings.max_tokens:
                carried.pop(0)
            current, used = carried, sum(s for _, s in carried)
        current.append(unit)
        used += unit[1]
    if current:
        groups.append(current)
    return groups
