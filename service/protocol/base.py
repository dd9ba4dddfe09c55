"""What every endpoint shares: the one error envelope, strict request bodies, usage, ids,
the model list.

Unknown request fields are refused (`extra="forbid"`) so that a parameter this service does not
implement is a 400 naming it, never silently ignored. Request types are strict (`"3"` is not an
integer) and refuse lone UTF-16 surrogates (`"\\ud800"` in JSON), which no tokenizer, embedder
or store can encode.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError


class ErrorBody(BaseModel):
    """OpenAI's error fields."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """The one error envelope: `{"error": {...}}`."""

    error: ErrorBody


class StrictModel(BaseModel):
    """A request body that refuses unknown fields, loose types and unencodable text."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _encodable_text(cls, data: Any) -> Any:
        _check_encodable(data, ())
        return data


def _check_encodable(value: Any, path: tuple[str, ...]) -> None:
    """Raise a validation error naming the first string (key or value) not valid as UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            where = ".".join(path) or "body"
            raise PydanticCustomError(
                "invalid_unicode", "{where} holds a lone surrogate (not valid Unicode)",
                {"where": where}) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_encodable(key, path)
            _check_encodable(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_encodable(item, (*path, str(index)))

def new_id(prefix: str) -> str:
    """A fresh OpenAI-style object id."""
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    """Unix seconds, as OpenAI's `created` fields."""
    return int(time.time())


class Usage(BaseModel):
    """Token counts of one request."""

    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int

class ModelCard(BaseModel):
    """One entry of GET /v1/models."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "cogcore"


class ModelList(BaseModel):
    """GET /v1/models."""

    object: Literal["list"] = "list"
    data: list[ModelCard]
