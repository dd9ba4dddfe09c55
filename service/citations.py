"""OpenAI-style citations of the passages a grounded reply was read from.

Each source becomes one `url_citation` annotation on the assistant message, as OpenAI's chat
completions return them, so that off-the-shelf clients can show sources. The reply is read
from all its evidence at once, so every citation spans the whole reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

from service.protocol import Annotation, URLCitation

if TYPE_CHECKING:
    from retrieval.knowledge_base import Hit

LOCATION_KEYS = ("page", "heading_path", "char_start", "char_end")


def document_url(document_id: str) -> str:
    """This service's (relative) address of a stored document."""
    return "/v1/documents/" + quote(document_id, safe="")


def title(hit: Hit) -> str:
    """The cited document's name and the place in it: "guide.pdf, page 2"."""
    meta = hit.metadata
    name = meta.get("filename") or meta.get("file_id") or meta.get("title") \
        or meta.get("name") or hit.document_id
    where = meta.get("location")
    return f"{name}, {where}" if where else str(name)


def annotations(content: str, sources: Sequence[Hit]) -> list[Annotation]:
    """One citation per source, each spanning the whole `content`."""
    out = []
    for hit in sources:
        location = {k: hit.metadata[k] for k in LOCATION_KEYS if k in hit.metadata}
        file_id = hit.metadata.get("file_id")
        out.append(Annotation(url_citation=URLCitation(
            start_index=0, end_index=len(content), title=title(hit),
            url=document_url(hit.document_id), document_id=hit.document_id,
            chunk_id=hit.chunk_id, file_id=file_id if isinstance(file_id, str) else None,
            location=location)))
    return out
