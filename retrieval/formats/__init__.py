"""Files to documents: plain text, Markdown, HTML and PDF, chunked by their structure.

    fmt = detect_format("guide.pdf", "application/pdf")          # -> "pdf"
    sections = parse(data, fmt)                                   # -> [Section]
    docs = file_documents("file-1", sections, fmt, {"team": "ops"}, filename="guide.pdf")

The one home of parsing, used by `POST /v1/files` and by `cogcore kb add`. A file becomes one
stored document per section, id `<file id>#<n>`, so that each chunk the store makes from it
carries its own location in its metadata: `page` (PDF, from 1), `heading_path` (the headings
above it), `char_start`/`char_end` (where it lies: in the source text for text and Markdown,
in the text extracted from the HTML or from the PDF's page), and `location`, the same in words.
A citation of a chunk therefore points at the file and the place in it.

Every failure is a `RetrievalError` a client can act on (unsupported type, corrupt or
encrypted PDF, no text, too large), raised before anything is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retrieval.documents import Document, check_id, check_text
from retrieval.errors import (
    DocumentNotFoundError,
    EmptyTextError,
    InvalidSourceError,
    TextTooLargeError,
)
from retrieval.formats.blocks import Block, Section, pack

if TYPE_CHECKING:
    from retrieval.knowledge_base import KnowledgeBase

FORMATS = ("text", "markdown", "html", "pdf")
SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
            ".html": "html", ".htm": "html", ".xhtml": "html", ".pdf": "pdf"}
MEDIA_TYPES = {"text/plain": "text", "text/markdown": "markdown", "text/x-markdown": "markdown",
               "text/html": "html", "application/xhtml+xml": "html", "application/pdf": "pdf"}
# Neighbouring blocks are packed into a section up to this many characters; 0 makes each
# sentence (list item, table row) a section of its own, headed by its headings, as
# LlamaIndex's sentence-window parser embeds single sentences. Measured by
# benchmarks/files_eval.py (docs/facts.md): the service's reader reads one evidence sentence,
# and a paragraph's headings otherwise lead only its first, which then wins every question
# that names the document's subject. Sentences: 1.00 on the tune half; 600 characters: 0.90.
SECTION_CHARS = 0
SEPARATOR = "#"  # <file id>#<section number>
# Metadata keys a file's sections get; a caller's metadata may not set them.
RESERVED = ("file_id", "filename", "format", "section", "sections", "page", "heading_path",
            "char_start", "char_end", "location")

__all__ = ["FORMATS", "SUFFIXES", "Block", "Section", "UnsupportedFormatError",
           "CorruptFileError", "detect_format", "parse", "file_documents", "section_id",
           "sections_held", "drop_sections"]


class UnsupportedFormatError(InvalidSourceError):
    """A file of a type no parser here reads (by name, media type or the format asked for)."""


class CorruptFileError(InvalidSourceError):
    """A file its parser cannot read: a damaged or encrypted PDF, for one."""


def detect_format(filename: str | None = None, media_type: str | None = None,
                  override: str | None = None) -> str:
    """The format of a file: `override` when given, else by media type, else by extension."""
    if override:
        if override not in FORMATS:
            raise UnsupportedFormatError(
                f"format {override!r} is not supported; choose one of {', '.join(FORMATS)}")
        return override
    kind = (media_type or "").split(";")[0].strip().lower()
    if kind in MEDIA_TYPES:
        return MEDIA_TYPES[kind]
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if filename and "." in filename else ""
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    named = ", ".join(x for x in (filename and repr(filename), kind and f"type {kind}") if x)
    raise UnsupportedFormatError(
        f"cannot tell the format of {named or 'the file'}: use a {', '.join(SUFFIXES)} "
        f"file, one of the media types {', '.join(MEDIA_TYPES)}, or name the format "
        f"({', '.join(FORMATS)})")


def parse(data: bytes | str, fmt: str, max_bytes: int = 1_000_000,
          section_chars: int = SECTION_CHARS) -> list[Section]:
    """The sections of a file's content in format `fmt`; its text must fit in `max_bytes`."""
    if fmt == "pdf":
        from retrieval.formats.pdf import pdf_blocks

        if isinstance(data, str):
            raise CorruptFileError("a PDF must be given as bytes, not text")
        blocks = pdf_blocks(data)
        what = "the PDF"
    else:
        text = check_text(data, max_bytes, what=f"the {fmt} file")
        blocks = _text_blocks(text, fmt)
        what = f"the {fmt} file"
    size = sum(len(b.text.encode("utf-8")) for b in blocks)
    if not any(b.text.strip() for b in blocks):
        raise EmptyTextError(f"{what} holds no text" + (
            " (a scanned PDF needs OCR first)" if fmt == "pdf" else ""))
    if size > max_bytes:
        raise TextTooLargeError(f"the text of {what} is {size} bytes, over the limit of "
                                f"{max_bytes}")
    return pack(blocks, section_chars)


def _text_blocks(text: str, fmt: str) -> list[Block]:
    if fmt == "markdown":
        from retrieval.formats.markdown import markdown_blocks

        return markdown_blocks(text)
    if fmt == "html":
        from retrieval.formats.html import html_blocks

        return html_blocks(text)
    if fmt == "text":
        from retrieval.formats.blocks import paragraph_blocks

        return paragraph_blocks(text)
    raise UnsupportedFormatError(f"format {fmt!r} is not supported")


def section_id(file_id: str, number: int) -> str:
    """The stored document id of a file's section `number`."""
    return f"{file_id}{SEPARATOR}{number}"


def file_documents(file_id: str, sections: list[Section], fmt: str,
                   metadata: dict[str, Any] | None = None, filename: str | None = None,
                   extra: dict[str, Any] | None = None) -> list[Document]:
    """One document per section, each with the caller's metadata and its own location.

    `extra` holds what every section should record about the file (its size, upload time).
    """
    check_id(file_id)
    metadata = dict(metadata or {})
    clash = sorted(set(metadata) & set(RESERVED))
    if clash:
        raise InvalidSourceError(f"metadata keys {clash} are set from the file itself")
    shared = {**metadata, **(extra or {}), "file_id": file_id, "format": fmt,
              "sections": len(sections)}
    if filename:
        shared["filename"] = filename
    docs = []
    for number, section in enumerate(sections):
        where = section.location()
        docs.append(Document(section_id(file_id, number), section.stored_text(),
                             {**shared, **where, "section": number,
                              "location": section.describe()}))
    return docs


def sections_held(kb: KnowledgeBase, file_id: str) -> int:
    """How many sections the store holds for `file_id` (as its first section records)."""
    try:
        return int(kb.get(section_id(file_id, 0)).metadata.get("sections", 1))
    except DocumentNotFoundError:
        return 0


def drop_sections(kb: KnowledgeBase, file_id: str, keep: int, held: int) -> int:
    """Delete every section of a file numbered `keep` or more, the first one last; chunks
    removed.

    `held` is the count the file's first section recorded before the new version was written;
    the store is also probed upward from `keep` until a section is missing, so a stale tail
    that an interrupted upload left behind (its first section already records the new, smaller
    count) is removed too. Called after the new sections are committed, so a failure half-way
    leaves stale sections (which the next upload or delete removes), never a file with none.
    Sections go from the last down, so what is left is always `keep`..n, without a gap.
    """
    end = keep
    while True:
        try:
            kb.get(section_id(file_id, end))
        except DocumentNotFoundError:
            break
        end += 1
    removed = 0
    for number in range(max(end, held) - 1, keep - 1, -1):
        try:
            removed += kb.delete(section_id(file_id, number))
        except DocumentNotFoundError:
            continue
    return removed
