"""POST /v1/embeddings: the retrieval embedder, as OpenAI's endpoint."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from service.protocol.base import StrictModel, Usage


class EmbeddingRequest(StrictModel):
    """POST /v1/embeddings."""

    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None

class EmbeddingData(BaseModel):
    """One embedding vector (floats, or base64 of little-endian float32)."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingResponse(BaseModel):
    """POST /v1/embeddings."""

    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: Usage
