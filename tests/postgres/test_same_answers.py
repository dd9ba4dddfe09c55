"""Both backends, same documents, same questions: the same rankings and scores."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.documents import Document
from retrieval.knowledge_base import KnowledgeBase
from retrieval.postgres.knowledge_base import PostgresKnowledgeBase
from tests.retrieval.conftest import DOCS
from tests.retrieval.fakes import HashingEncoder

MORE = [Document(f"city-{i}", f"City {i} lies on river {i % 7}. Its mayor is M{i}. "
                 + " ".join(f"Fact {j} about city {i} is number {i * j}." for j in range(30)),
                 {"river": i % 7}) for i in range(12)]
QUERIES = ["capital of Japan", "Which city lies on river 3?", "mayor M7", "number 42",
           "chemical symbol O", "Fact 12 about city 5", "Paris Europe", "atomic number 26"]


@pytest.fixture
def both(kb: PostgresKnowledgeBase, tmp_path: Path, encoder: HashingEncoder):
    embedded = KnowledgeBase.open(tmp_path / "kb", embedder=encoder)
    embedded.upsert(DOCS)
    for base in (embedded, kb):
        base.upsert(MORE)
    yield embedded, kb
    embedded.close()


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_every_mode_ranks_and_scores_alike(both, mode: str) -> None:
    embedded, postgres = both
    found = 0
    for filters in (None, {"river": [3, 4]}):
        for query in QUERIES:
            a = embedded.search(query, k=10, mode=mode, filters=filters)
            b = postgres.search(query, k=10, mode=mode, filters=filters)
            assert [h.score for h in a] == pytest.approx([h.score for h in b], rel=1e-4)
            # The same chunks, in the same order, above the last score (ties at the cut
            # may fall either way).
            assert ahead(a) == ahead(b)
            found += len(a)
    assert found > 2 * len(QUERIES)  # not a comparison of empty lists


def ahead(hits: list) -> list[tuple[int, float]]:
    """Chunk ids with rounded scores, for the hits that score above the last one."""
    cut = hits[-1].score + 1e-4 if hits else 0.0
    return sorted(((h.chunk_id, round(h.score, 3)) for h in hits if h.score > cut),
                  key=lambda pair: (-pair[1], pair[0]))

def test_unknown_terms_and_knows_agree(both) -> None:
    embedded, postgres = both
    for text in ["Tokyo", "Atlantis", "river 3 Zanzibar", "the of and", "M7 Fe"]:
        assert embedded.unknown_terms(text) == postgres.unknown_terms(text)
        assert embedded.knows(text) == postgres.knows(text)
    assert postgres.stats()["chunks"] == embedded.stats()["chunks"]
