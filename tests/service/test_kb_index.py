"""The service opens a knowledge base with the index it was built with: hnsw stays hnsw.

The app loads as `cogcore serve` does (tiny random Llama, real embedder); the knowledge base is
a small one on disk, built as `cogcore kb build --index hnsw` would build it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cogcore.facts import load_entities
from retrieval.documents import Document
from retrieval.embedder import Embedder
from retrieval.knowledge_base import KBSettings, KnowledgeBase
from service.settings import Settings
from tests.service.test_api import ready_client

ENTITIES = ("country:france", "country:japan", "element:iron")


@pytest.fixture(scope="module")
def hnsw_kb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real knowledge base on disk, built with an HNSW index."""
    path = tmp_path_factory.mktemp("kb")
    docs = [Document(e.id, e.document(), {"kind": e.kind})
            for e in load_entities() if e.id in ENTITIES]
    with KnowledgeBase.open(path, embedder=Embedder(), settings=KBSettings(index="hnsw")) as kb:
        kb.upsert(docs)
    return path


@pytest.mark.parametrize("readonly", [False, True])
def test_the_service_opens_an_hnsw_knowledge_base_as_hnsw(tiny_llama_dir: Path,
                                                          hnsw_kb_dir: Path,
                                                          readonly: bool) -> None:
    settings = Settings(model_dir=tiny_llama_dir, served_model_name="tiny", kb_dir=hnsw_kb_dir,
                        kb_readonly=readonly)
    client = ready_client(settings)
    try:
        stats = client.app.state.kb.stats()
    finally:
        client.__exit__(None, None, None)
    assert stats["index"]["kind"] == "hnsw"
    assert stats["repair_on_open"] == {"loaded": True, "added": 0, "removed": 0}, \
        "the saved graph was used, not rebuilt"
