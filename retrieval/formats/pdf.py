"""PDF (through pypdf) to blocks, page by page.

Each page's text is extracted by pypdf; a block is a paragraph of it (split at blank lines,
line breaks joined), with offsets in that page's extracted text. The document's title, when
its metadata gives one, heads every block. A PDF without a text layer (a scan) yields no text.
"""

from __future__ import annotations

import io
import logging

from retrieval.formats.blocks import Block, paragraph_blocks

MAX_PAGES = 5000  # a page count past this is a damaged or hostile file, not a document


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
        blocks = []
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            for block in paragraph_blocks(text, page=number):
                blocks.append(Block(block.text, block.start, block.end, title, number))
        return blocks
    except CorruptFileError:
        raise
    except Exception as exc:  # a damaged file can fail anywhere inside the parser
        raise CorruptFileError(f"the PDF cannot be read: {type(exc).__name__}: {exc}") from exc


def _title(reader: object) -> tuple[str, ...]:
    metadata = getattr(reader, "metadata", None)
    title = getattr(metadata, "title", None) if metadata else None
    return (str(title).strip(),) if title and str(title).strip() else ()
