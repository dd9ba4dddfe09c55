"""Markdown (CommonMark and tables, through markdown-it-py) to blocks under their headings.

A block is a paragraph, a list item's paragraph, a table row (cells joined by " | "), a code
block or an HTML block, as plain text (emphasis, links and code marks dropped); its offsets are
those of its source lines.
"""

from __future__ import annotations

import itertools
import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

from retrieval.formats.blocks import Block, flat

_TAG = re.compile(r"<[^>]+>")
# Block nesting markdown-it follows (the commonmark preset's 20 drops a 20-deep quote's text).
MAX_NESTING = 100


def _inline_text(token: Token) -> str:
    """The plain text of an inline token: words, code spans, image alt text; breaks as spaces."""
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline", "image"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return flat("".join(parts))


def markdown_blocks(source: str) -> list[Block]:
    """The blocks of a Markdown text in reading order, each under its heading path."""
    from retrieval.formats import CorruptFileError

    tokens = MarkdownIt("commonmark", {"maxNesting": MAX_NESTING}).enable("table").parse(source)
    # Past its nesting limit markdown-it drops the content silently: refuse the file instead.
    if max((t.level for t in tokens), default=0) >= MAX_NESTING - 1:
        raise CorruptFileError(
            f"the Markdown is nested too deeply (blockquotes or lists {MAX_NESTING - 2} levels "
            "or more); its innermost text cannot be read")
    line_starts = [0, *itertools.accumulate(len(x) for x in source.splitlines(keepends=True))]

    def span(lines: list[int]) -> tuple[int, int]:
        start = line_starts[min(lines[0], len(line_starts) - 1)]
        end = line_starts[min(lines[1], len(line_starts) - 1)]
        return start, start + len(source[start:end].rstrip())

    headings: list[tuple[int, str]] = []
    blocks: list[Block] = []
    row: list[str] | None = None
    row_lines: list[int] | None = None
    for i, token in enumerate(tokens):
        path = tuple(text for _, text in headings)
        if token.type == "heading_open":
            level = int(token.tag[1:])
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, _inline_text(tokens[i + 1])))
        elif token.type == "paragraph_open" and row is None and token.map:
            blocks.append(Block(_inline_text(tokens[i + 1]), *span(token.map), path))
        elif token.type == "tr_open":
            row, row_lines = [], token.map
        elif token.type == "inline" and row is not None:
            row.append(_inline_text(token))
        elif token.type == "tr_close" and row is not None:
            if row_lines and any(row):
                blocks.append(Block(" | ".join(row), *span(row_lines), path))
            row = None
        elif token.type in ("fence", "code_block") and token.map:
            blocks.append(Block(token.content.strip(), *span(token.map), path))
        elif token.type == "html_block" and token.map:
            blocks.append(Block(flat(_TAG.sub(" ", token.content)), *span(token.map), path))
    return [b for b in blocks if b.text]
