"""Blocks (a paragraph, a list item, a table row, a page's sentence) and their packing.

Each parser turns a file into blocks in reading order, each with the headings above it and
where it lies; `pack` joins neighbouring blocks under the same headings (and on the same
page) into sections of at most a given size, and cuts an over-long block between sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from retrieval.chunker import sentence_spans

_PARAGRAPHS = re.compile(r"\n[ \t]*\n")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Block:
    """A piece of a file's text: what it says, the headings above it, where it lies."""

    text: str
    start: int  # character offsets in the source (text, Markdown) or extracted text
    end: int
    heading_path: tuple[str, ...] = ()
    page: int | None = None  # PDF pages count from 1


@dataclass(frozen=True)
class Section:
    """Neighbouring blocks under the same headings: one stored document of a file."""

    text: str
    start: int
    end: int
    heading_path: tuple[str, ...] = ()
    page: int | None = None

    def location(self) -> dict[str, Any]:
        """The section's place in the file, as metadata."""
        where: dict[str, Any] = {"heading_path": list(self.heading_path),
                                 "char_start": self.start, "char_end": self.end}
        if self.page is not None:
            where["page"] = self.page
        return where

    def describe(self) -> str:
        """The location in words: "page 2 · Storage > Cold rooms", "Intro", "chars 0-120"."""
        parts = [f"page {self.page}"] if self.page is not None else []
        if self.heading_path:
            parts.append(" > ".join(self.heading_path))
        return " · ".join(parts) or f"chars {self.start}-{self.end}"

    def stored_text(self) -> str:
        """The text to index: the headings above the section lead it, on a line of their own.

        A paragraph under "Opening hours" rarely repeats what it is about; its headings say
        it to the search and to the reader. A single newline is no sentence boundary, so the
        headings stay attached to the section's first sentence.
        """
        if not self.heading_path:
            return self.text
        return " > ".join(self.heading_path) + "\n" + self.text


def flat(text: str) -> str:
    """Whitespace (line breaks of a PDF or an HTML source) collapsed to single spaces."""
    return _SPACE.sub(" ", text).strip()


def paragraph_blocks(text: str, page: int | None = None) -> list[Block]:
    """Blocks of plain text split at blank lines, offsets into `text`."""
    blocks, start = [], 0
    for match in [*_PARAGRAPHS.finditer(text), None]:
        end = match.start() if match else len(text)
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            blocks.append(Block(flat(piece), start + lead, start + len(piece.rstrip()),
                                page=page))
        if match:
            start = match.end()
    return blocks


def _split(block: Block, limit: int) -> list[Block]:
    """An over-long block cut between sentences into pieces of about `limit` characters.

    Offsets of the pieces are exact when the block's text is its source's (plain text, PDF
    pages, HTML text); otherwise (Markdown markup removed) each piece keeps the block's span.
    """
    spans = sentence_spans(block.text)
    exact = block.end - block.start == len(block.text)
    pieces: list[Block] = []
    first = last = None
    for a, b in spans:
        if first is not None and b - first > limit:
            pieces.append(_piece(block, first, last, exact))
            first = None
        first = a if first is None else first
        last = b
    if first is not None:
        pieces.append(_piece(block, first, last, exact))
    return pieces


def _piece(block: Block, a: int, b: int | None, exact: bool) -> Block:
    assert b is not None
    start, end = (block.start + a, block.start + b) if exact else (block.start, block.end)
    return replace(block, text=block.text[a:b], start=start, end=end)


def pack(blocks: list[Block], limit: int) -> list[Section]:
    """Sections of neighbouring blocks with the same headings and page, up to `limit` chars."""
    sections: list[Section] = []
    current: list[Block] = []

    def close() -> None:
        if current:
            head = current[0]
            # Blocks are paragraphs of their own: a list item without a full stop is not
            # read as the start of the next one's sentence.
            sections.append(Section("\n\n".join(b.text for b in current), head.start,
                                    current[-1].end, head.heading_path, head.page))
            current.clear()

    for block in blocks:
        if not block.text.strip():
            continue
        for piece in _split(block, limit) if len(block.text) > limit else [block]:
            same = current and (current[0].heading_path, current[0].page) == (
                piece.heading_path, piece.page)
            size = sum(len(b.text) + 2 for b in current) + len(piece.text)
            if not same or size > limit:
                close()
            current.append(piece)
    close()
    return sections
