"""HTML (through Beautiful Soup and Python's own parser) to blocks under their headings.

The page's text is extracted in reading order, one block per paragraph-like element (p, li,
a table row, pre, blockquote, or text loose in a div), with scripts, styles and the head left
out; a block's offsets are those in that extracted text, in which each block and heading is a
paragraph of its own (joined by blank lines).
"""

from __future__ import annotations

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

from retrieval.formats.blocks import Block, flat

HEADINGS = {f"h{n}": n for n in range(1, 7)}
SKIP = {"script", "style", "noscript", "template", "head", "svg", "iframe", "object", "button",
        "select", "textarea"}
BLOCK = {"p", "li", "pre", "blockquote", "dt", "dd", "figcaption", "caption", "div", "section",
         "article", "main", "header", "footer", "aside", "nav", "ul", "ol", "dl", "table",
         "thead", "tbody", "tfoot", "form", "address", "figure", "details", "summary", "body",
         "html", "hr", "fieldset"}
NOT_TEXT = (Comment, Declaration, Doctype, ProcessingInstruction)


class _Walker:
    """Collects blocks and keeps the extracted text's length for their offsets."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.headings: list[tuple[int, str]] = []
        self.pending: list[str] = []
        self.length = 0  # of the extracted text so far

    def emit(self, text: str) -> int:
        """Append a paragraph to the extracted text; its start offset."""
        if self.length:
            self.length += 2  # the blank line between paragraphs
        start = self.length
        self.length += len(text)
        return start

    def flush(self) -> None:
        text = flat("".join(self.pending))
        self.pending.clear()
        if text:
            start = self.emit(text)
            path = tuple(t for _, t in self.headings)
            self.blocks.append(Block(text, start, start + len(text), path))

    def walk(self, node: Tag) -> None:
        """Collect `node`'s blocks, depth first with a stack of its own: a deeply nested page
        ("<div>" * 1000) may not exhaust Python's recursion limit."""
        stack = [(iter(node.children), False)]  # (children left, a block to flush after)
        while stack:
            children, block = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                if block:
                    self.flush()
            elif isinstance(child, NavigableString):
                if not isinstance(child, NOT_TEXT):
                    self.pending.append(str(child))
            elif not isinstance(child, Tag) or child.name in SKIP:
                continue
            elif child.name in HEADINGS:
                self.heading(child)
            elif child.name == "tr":
                self.flush()
                cells = [flat(c.get_text(" ")) for c in child.find_all(["td", "th"])]
                self.pending.append(" | ".join(c for c in cells if c))
                self.flush()
            elif child.name == "br":
                self.pending.append(" ")
            elif child.name in BLOCK:
                self.flush()
                stack.append((iter(child.children), True))
            else:  # inline markup (a, em, span...): its text continues the paragraph
                stack.append((iter(child.children), False))

    def heading(self, tag: Tag) -> None:
        self.flush()
        text = flat(tag.get_text(" "))
        if not text:
            return
        level = HEADINGS[tag.name]
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        self.headings.append((level, text))
        self.emit(text)


def html_blocks(source: str) -> list[Block]:
    """The blocks of an HTML page in reading order, each under its heading path."""
    soup = BeautifulSoup(source, "html.parser")
    walker = _Walker()
    walker.walk(soup)
    walker.flush()
    return walker.blocks
