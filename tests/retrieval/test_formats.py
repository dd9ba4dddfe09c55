"""Files to sections: each format, the locations they keep, and the inputs they refuse."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from retrieval.errors import (
    EmptyTextError,
    InvalidEncodingError,
    InvalidSourceError,
    TextTooLargeError,
)
from retrieval.formats import (
    CorruptFileError,
    UnsupportedFormatError,
    detect_format,
    drop_sections,
    file_documents,
    parse,
    section_id,
    sections_held,
)
from retrieval.knowledge_base import KnowledgeBase
from retrieval.sources import expand, read_documents
from tests.retrieval.fakes import HashingEncoder

MARKDOWN = """# Vellmar Archive

The archive keeps *parish* records from [Osterlund](http://example.org).
It was founded in 1871.

## Opening hours

- The reading room opens at 10:00 on Saturdays.
- Lockers are free

| Day | Hours |
|-----|-------|
| Monday | closed |

### Fees

A day pass costs 7 marks.

# Second title

Text under another top heading.
"""

HTML = """<!doctype html><html><head><title>T</title><style>p {color: red}</style>
<script>var secret = 1;</script></head><body>
<h1>Guide</h1><div>Loose text <b>in bold</b> here.<p>First paragraph.</p></div>
<h2>Rooms</h2><ul><li>Room A holds 12 people.</li><li>Room B</li></ul>
<table><tr><th>Room</th><td>Floor 3</td></tr></table><!-- a comment -->
<h2>Staff</h2><p>Ask Ilse<br>Marrow.</p></body></html>"""


def make_pdf(pages: list[list[str]], title: str | None = None) -> bytes:
    """A real PDF with one text line per entry (matplotlib's PDF backend, TrueType text)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    buffer = io.BytesIO()
    with matplotlib.rc_context({"pdf.fonttype": 42}), \
            PdfPages(buffer, metadata={"Title": title} if title else None) as pdf:
        for lines in pages:
            figure = plt.figure(figsize=(8.27, 11.69))
            for i, line in enumerate(lines):
                figure.text(0.08, 0.92 - i * 0.03, line, fontsize=11)
            pdf.savefig(figure)
            plt.close(figure)
    return buffer.getvalue()


def test_markdown_sections_keep_their_headings_and_source_offsets() -> None:
    sections = parse(MARKDOWN, "markdown", section_chars=600)
    paths = [s.heading_path for s in sections]
    assert paths == [("Vellmar Archive",), ("Vellmar Archive", "Opening hours"),
                     ("Vellmar Archive", "Opening hours", "Fees"), ("Second title",)]
    first = sections[0]
    assert first.text == ("The archive keeps parish records from Osterlund. "
                          "It was founded in 1871.")  # markup gone, lines joined
    assert MARKDOWN[first.start:first.end].startswith("The archive keeps *parish*")
    hours = sections[1]
    assert "Lockers are free\n\nDay | Hours\n\nMonday | closed" in hours.text
    assert MARKDOWN[hours.start:hours.end].startswith("- The reading room")
    assert MARKDOWN[hours.start:hours.end].endswith("| Monday | closed |")
    assert sections[1].stored_text().startswith("Vellmar Archive > Opening hours\nThe reading")


def test_html_blocks_skip_scripts_and_keep_headings() -> None:
    sections = parse(HTML, "html", section_chars=600)
    assert [s.heading_path for s in sections] == [("Guide",), ("Guide", "Rooms"),
                                                  ("Guide", "Staff")]
    text = " ".join(s.text for s in sections)
    assert "secret" not in text and "color" not in text and "comment" not in text
    assert sections[0].text == "Loose text in bold here.\n\nFirst paragraph."
    assert "Room | Floor 3" in sections[1].text and sections[2].text == "Ask Ilse Marrow."
    assert sections[1].start < sections[1].end < sections[2].start


def test_a_deeply_nested_page_is_read_without_recursion() -> None:
    sections = parse("<div>" * 5000 + "<span>" * 3000 + "Deep text." + "</span>" * 3000,
                     "html")
    assert [s.text for s in sections] == ["Deep text."]


def test_deeply_nested_markdown_is_read_or_refused_never_dropped() -> None:
    assert [s.text for s in parse("> " * 25 + "Deep text.\n", "markdown")] == ["Deep text."]
    assert [s.text for s in parse("- " * 30 + "Listed.\n", "markdown")] == ["Listed."]
    for source in ("> " * 200 + "Too deep.\n", "- " * 60 + "Too deep.\n"):
        with pytest.raises(CorruptFileError, match="nested too deeply"):
            parse(source, "markdown")


def test_pdf_sections_are_per_page_with_offsets_in_the_page_text() -> None:
    from pypdf import PdfReader

    data = make_pdf([["The Lumeri ferry leaves Oskarby pier at 7:40 every morning.",
                      "Tickets cost 14 kroner."],
                     ["Storage", "The cold store of Vessa Wharf holds 320 pallets.",
                      "Forklift permits are issued", "by Ilse Marrow."]], title="Harbour")
    sections = parse(data, "pdf", section_chars=600)
    assert [(s.page, s.heading_path) for s in sections] == [(1, ("Harbour",)),
                                                            (2, ("Harbour", "Storage"))]
    assert "7:40" in sections[0].text and "permits are issued by Ilse" in sections[1].text
    page_two = PdfReader(io.BytesIO(data)).pages[1].extract_text()
    assert page_two[sections[1].start:sections[1].end].startswith("The cold store")


def test_by_default_each_sentence_is_a_section_under_its_headings() -> None:
    sections = parse(MARKDOWN, "markdown")
    texts = [s.stored_text() for s in sections]
    assert texts[:2] == ["Vellmar Archive\nThe archive keeps parish records from Osterlund.",
                         "Vellmar Archive\nIt was founded in 1871."]
    assert "Vellmar Archive > Opening hours\nLockers are free" in texts
    assert all(s.text for s in sections) and len(sections) == 8


def test_a_long_paragraph_is_cut_between_sentences_with_exact_offsets() -> None:
    text = " ".join(f"Sentence number {i} says something plain." for i in range(40))
    sections = parse("Intro.\n\n" + text, "text", section_chars=200)
    assert len(sections) > 5 and all(len(s.text) <= 200 for s in sections)
    for s in sections:
        assert ("Intro.\n\n" + text)[s.start:s.end] == s.text


def test_documents_carry_the_file_and_the_location() -> None:
    docs = file_documents("f-1", parse(MARKDOWN, "markdown", section_chars=600), "markdown",
                          {"team": "ops"}, filename="a.md")
    assert [d.id for d in docs] == ["f-1#0", "f-1#1", "f-1#2", "f-1#3"]
    meta = docs[2].metadata
    assert meta["file_id"] == "f-1" and meta["team"] == "ops" and meta["sections"] == 4
    assert meta["heading_path"] == ["Vellmar Archive", "Opening hours", "Fees"]
    assert meta["location"] == "Vellmar Archive > Opening hours > Fees"
    assert MARKDOWN[meta["char_start"]:meta["char_end"]] == "A day pass costs 7 marks."
    with pytest.raises(InvalidSourceError, match="set from the file"):
        file_documents("f-1", parse(MARKDOWN, "markdown"), "markdown", {"page": 3})


def test_formats_are_told_by_override_media_type_then_extension() -> None:
    assert detect_format("a.PDF") == "pdf" and detect_format("x.htm") == "html"
    assert detect_format("notes", "text/markdown; charset=utf-8") == "markdown"
    assert detect_format("a.bin", "application/octet-stream", "text") == "text"
    assert detect_format("a.md", "application/octet-stream") == "markdown"
    with pytest.raises(UnsupportedFormatError, match="cannot tell"):
        detect_format("a.docx", "application/octet-stream")
    with pytest.raises(UnsupportedFormatError, match="not supported"):
        detect_format("a.md", override="docx")


@pytest.mark.parametrize(("data", "fmt", "error", "match"), [
    (b"%PDF-1.7\n garbage that is no PDF", "pdf", CorruptFileError, "cannot be read"),
    (b"hello", "pdf", CorruptFileError, "not a PDF"),
    (make_pdf([[]]), "pdf", EmptyTextError, "holds no text"),
    (b"  \n\n ", "markdown", EmptyTextError, "empty"),
    (b"<html><script>x</script></html>", "html", EmptyTextError, "holds no text"),
    (b"caf\xe9", "text", InvalidEncodingError, "not valid UTF-8"),
    ("word " * 400, "text", TextTooLargeError, "over the limit"),
])
def test_bad_files_are_refused_with_a_clear_error(data: bytes | str, fmt: str,
                                                  error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        parse(data, fmt, max_bytes=1000)


def test_an_encrypted_pdf_is_refused() -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([["Secret line."]]))))
    writer.encrypt("pw")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(CorruptFileError, match="encrypted"):
        parse(buffer.getvalue(), "pdf")


def test_kb_add_reads_files_by_extension_and_replaces_a_shorter_version(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(MARKDOWN)
    (tmp_path / "b.html").write_text(HTML)
    (tmp_path / "c.pdf").write_bytes(make_pdf([["Page one says hello."]]))
    (tmp_path / "skip.docx").write_bytes(b"\0")
    files = expand([tmp_path])
    assert [f.name for f in files] == ["a.md", "b.html", "c.pdf"]
    docs = [d for f in files for d in read_documents(f)]
    assert docs[0].id == f"{tmp_path / 'a.md'}#0" and docs[-1].metadata["page"] == 1
    as_text = list(read_documents(tmp_path / "a.md", "text"))
    assert as_text[0].metadata["format"] == "text"
    assert any("*parish*" in d.text for d in as_text)
    with pytest.raises(UnsupportedFormatError, match="skip.docx"):
        list(read_documents(tmp_path / "skip.docx"))
    with KnowledgeBase.open(tmp_path / "kb", embedder=HashingEncoder()) as kb:
        file_id = str(tmp_path / "a.md")
        kb.upsert([d for d in docs if d.metadata["file_id"] == file_id])
        assert sections_held(kb, file_id) == 8
        short = file_documents(file_id, parse("One line.", "markdown"), "markdown")
        kb.upsert(short)
        assert drop_sections(kb, file_id, len(short), 8) == 7
        assert sections_held(kb, file_id) == 1 and kb.count() == 1
        assert kb.get(section_id(file_id, 0)).text == "One line."
        # An upload of 5 sections whose shorter re-upload (1) stopped before its drop: the
        # first section already records 1, and the next upload removes the stale tail.
        five = [d for d in docs if d.metadata["file_id"] == file_id][:5]
        kb.upsert(five)
        kb.upsert(short)
        assert sections_held(kb, file_id) == 1 and kb.count() == 5
        assert drop_sections(kb, file_id, len(short), sections_held(kb, file_id)) == 4
        assert kb.count() == 1 and kb.get(section_id(file_id, 0)).text == "One line."
