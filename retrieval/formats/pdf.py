"""PDF (through pypdf) to blocks, page by page.

Each page's text is extracted by pypdf; a block is a paragraph of it (split at blank lines and
at heading lines, line breaks joined), with offsets in that page's extracted text. The
document's title, when its metadata gives one, and the latest heading line (a short line
that does not end a sentence, after one that did) head the blocks that follow, across pages.
A PDF without a text layer (a scan) yields no text.
"""

from __future__ import annotations

import io
import logging
from dataclasses import replace

from retrieval.formats.blocks import Block, paragraph_blocks

MAX_PAGES = 5000  # a page count past this is a damaged or hostile file, not a document
HEADING_WORDS, HEADING_CHARS = 8, 60
ENDS = (".", "!", "?", ":", ";", ",")


def pdf_blocks(data: bytes) -> list[Block]:
    """The paragraphs of every page of a PDF, in page order."""
    from pypdf import PdfReader

    from retrieval.formats import CorruptFileError

    if not data.lstrip()[:5] == b"%PDF-":
        raise CorruptFileError("not a PDF file (it does not start with %PDF-)")
    # pypdf logs every repair it makes to a damaged file; the caller gets one error instead.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise CorruptFileError("the PDF is encrypted; upload it decrypted")
        if len(reader.pages) > MAX_PAGES:
            raise CorruptFileError(f"the PDF has over {MAX_PAGES} pages")
        title = _title(reader)
        blocks: list[Block] = []
        heading: tuple[str, ...] = ()
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            for block in _page_blocks(text, number):
                if block.heading_path:  # a heading line: it heads what follows, pages on
                    heading = block.heading_path
                else:
                    blocks.append(replace(block, heading_path=title + heading))
        return blocks
    except CorruptFileError:
        raise
    except Exception as exc:  # a damaged file can fail anywhere inside the parser
        raise CorruptFileError(f"the PDF cannot be read: {type(exc).__name__}: {exc}") from exc


def _is_heading(line: str, previous: str, following: str) -> bool:
    """A short capitalized line without a sentence's end, between a line that ended one and
    a line that starts one.

    pypdf gives lines, not the font they are set in; a wrapped line of a sentence follows a
    line that did not end it, or is followed by the sentence's lower-case rest.
    """
    words = line.split()
    return (0 < len(words) <= HEADING_WORDS and len(line) <= HEADING_CHARS
            and line[0].isupper() and not line.endswith(ENDS)
            and (not previous or previous.endswith(ENDS))
            and following[:1].isupper())


def _page_blocks(text: str, page: int) -> list[Block]:
    """A page's paragraphs, and its heading lines as blocks holding only a heading path."""
    blocks: list[Block] = []
    region = offset = 0  # where the text not yet split into paragraphs starts; this line
    previous = ""
    lines = text.splitlines(keepends=True)
    for number, line in enumerate(lines):
        bare = line.strip()
        following = next((x.strip() for x in lines[number + 1:] if x.strip()), "")
        if _is_heading(bare, previous, following):
            blocks += _shifted(paragraph_blocks(text[region:offset], page=page), region)
            lead = offset + len(line) - len(line.lstrip())
            blocks.append(Block("", lead, lead + len(bare), (bare,), page))
            region = offset + len(line)
        offset += len(line)
        previous = bare or previous
    return blocks + _shifted(paragraph_blocks(text[region:], page=page), region)


def _shifted(blocks: list[Block], by: int) -> list[Block]:
    return [replace(b, start=b.start + by, end=b.end + by) for b in blocks]


def _title(reader: object) -> tuple[str, ...]:
    metadata = getattr(reader, "metadata", None)
    title = getattr(metadata, "title", None) if metadata else None
    return (str(title).strip(),) if title and str(title).strip() else ()
