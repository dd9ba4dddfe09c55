"""Fixtures of the reliability checks: an in-process app on the tiny Llama with keys set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.settings import Settings
from tests.service.test_api import ready_client

READ, ADMIN = "reliability-read-key", "reliability-admin-key"
MAX_BODY = 50_000
MAX_DOCUMENT = 4_000


def bearer(key: str) -> dict[str, str]:
    """The Authorization header of `key`."""
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def kb_client(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[TestClient]:
    """The app on the tiny Llama, the real embedder, an empty scratch knowledge base, keys."""
    settings = Settings(model_dir=tiny_llama_dir, served_model_name="tiny",
                        kb_dir=tmp_path_factory.mktemp("kb"), api_keys=[READ],
                        admin_keys=[ADMIN], max_body_bytes=MAX_BODY,
                        max_document_bytes=MAX_DOCUMENT, max_context=256)
    client = ready_client(settings)
    yield client
    client.__exit__(None, None, None)
