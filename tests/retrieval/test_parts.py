"""Small parts: fusion, index files, the FAISS index, file sources, the question set, the
embedding cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from retrieval.embedder import CachedEncoder
from retrieval.errors import IndexFileError, InvalidEncodingError, InvalidSourceError
from retrieval.fusion import reciprocal_rank_fusion, weighted_fusion
from retrieval.index_file import read_checked, write_atomic
from retrieval.index_registry import index_spec, load_index, new_index
from retrieval.questions import question_set
from retrieval.sources import expand, read_documents
from retrieval.sparse import BM25Index
from tests.retrieval.fakes import HashingEncoder


def test_rrf_rewards_agreement_between_rankings() -> None:
    fused = reciprocal_rank_fusion([[(1, 0.9), (2, 0.8)], [(3, 9.0), (2, 5.0)]], k=2)
    assert [i for i, _ in fused] == [2, 1], "second in both beats first in one; ties keep order"
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 62)
    weighted = reciprocal_rank_fusion([[(1, 0.9), (2, 0.8)], [(3, 9.0), (2, 5.0)]], k=3,
                                      weights=(1.0, 3.0))
    assert [i for i, _ in weighted] == [2, 3, 1], "a heavier ranking's first hit moves up"


def test_relative_fusion_keeps_a_lexical_match_far_ahead_of_the_rest() -> None:
    # Dense barely separates its hits; BM25's first is far ahead: rank fusion would put the
    # dense favourite (1) first, relative score fusion keeps the lexical match (3).
    dense = [(1, 0.62), (2, 0.61), (3, 0.60)]
    sparse = [(3, 12.0), (1, 2.0), (2, 1.0)]
    assert reciprocal_rank_fusion([dense, sparse], k=1)[0][0] == 1
    fused = weighted_fusion(dense, sparse, sparse_share=0.7)
    assert [i for i, _ in fused] == [3, 1, 2]
    assert fused[0][1] == pytest.approx(0.7 * 1.0 + 0.3 * 0.0)
    assert weighted_fusion(dense, [], sparse_share=0.7, k=1) == [(1, pytest.approx(0.3))]
    assert weighted_fusion([], [], sparse_share=0.5) == []


def test_index_files_refuse_anything_but_a_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "x.index"
    write_atomic(path, {"a": 1}, b"payload" * 100)
    assert read_checked(path) == ({"a": 1, "payload_bytes": 700, "payload_sha256":
                                   read_checked(path)[0]["payload_sha256"]}, b"payload" * 100)
    data = path.read_bytes()
    path.write_bytes(data[:-1] + b"X")
    with pytest.raises(IndexFileError, match="checksum"):
        read_checked(path)
    path.write_bytes(data[:-10])
    with pytest.raises(IndexFileError, match="truncated"):
        read_checked(path)
    assert [p.name for p in tmp_path.iterdir()] == ["x.index"], "no temporary file is left"


def test_hnsw_tombstones_survive_a_save_and_compact_when_they_pile_up(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((400, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = new_index(index_spec("hnsw", {}), 16, {})
    index.add(np.arange(400), vectors)
    index.delete(np.array([0, 1, 999]))
    index.save(tmp_path / "i", {})
    loaded = load_index(tmp_path / "i", 16, {})
    assert loaded.count() == 398 and 0 not in loaded.ids()
    assert loaded.search(vectors[:1], 1)[0][0][0] != 0
    loaded.delete(np.arange(2, 150))
    assert loaded.count() == 250 and len(loaded.ids()) == 250
    assert loaded.search(vectors[200:201], 1)[0][0][0] == 200


def test_sources_read_text_files_and_json_lines(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\nBody.")
    (tmp_path / "b.jsonl").write_text(
        json.dumps({"id": "x", "text": "X.", "metadata": {"k": 1}}) + "\n\n"
        + json.dumps({"id": "y", "text": "Y."}) + "\n")
    (tmp_path / "skip.bin").write_bytes(b"\0")
    files = expand([tmp_path])
    docs = [d for f in files for d in read_documents(f)]
    # A Markdown file is stored by section (retrieval.formats, tests/retrieval/test_formats.py).
    assert [d.id for d in docs] == [f"{tmp_path / 'a.md'}#0", "x", "y"]
    assert docs[1].metadata == {"k": 1} and docs[0].text == "Title\nBody."


@pytest.mark.parametrize(
    ("content", "error"),
    [(b"not json\n", InvalidSourceError), (b'["no", "object"]\n', InvalidSourceError),
     (b'{"id": "x", "text": "caf\xe9"}\n', InvalidEncodingError)],
)
def test_sources_refuse_malformed_json_lines(tmp_path: Path, content: bytes,
                                             error: type[Exception]) -> None:
    (tmp_path / "bad.jsonl").write_bytes(content)
    with pytest.raises(error, match="bad.jsonl:1"):
        list(read_documents(tmp_path / "bad.jsonl"))


def test_question_set_is_split_by_entity_and_asked_three_ways() -> None:
    questions = question_set()
    by_entity: dict[str, set[str]] = {}
    for q in questions:
        by_entity.setdefault(q.entity_id, set()).add(q.split)
    assert all(len(splits) == 1 for splits in by_entity.values())
    share = sum(q.split == "test" for q in questions) / len(questions)
    assert 0.6 < share < 0.8
    assert {q.phrasing for q in questions} == {"question", "completion", "keywords"}
    france = [q.text for q in questions if q.entity_id == "country:france"
              and q.relation == "capital"]
    assert france == ["What is the capital of France?", "The capital of France is what?",
                      "France (country) capital"]


def test_cached_encoder_embeds_each_text_once_and_forgets_the_least_recent() -> None:
    inner = HashingEncoder()
    cached = CachedEncoder(inner, max_entries=2)
    first = cached.encode(["a b", "c d", "a b"])
    assert inner.encoded == 2, "a repeated text is embedded once"
    np.testing.assert_array_equal(first, inner.encode(["a b", "c d", "a b"]))
    inner.encoded = 0
    cached.encode(["a b"])  # "a b" is now the most recent, "c d" the least
    cached.encode(["e f"])  # evicts "c d"
    assert inner.encoded == 1
    cached.encode(["a b", "e f"])
    assert inner.encoded == 1, "both still cached"
    cached.encode(["c d"])
    assert inner.encoded == 2, "the least recently used was evicted"
    assert cached.encode([]).shape == (0, inner.dim)
    assert cached.count_tokens("three words here") == 3


def test_bm25_tokens_keep_the_shape_of_numbers_and_domains() -> None:
    from retrieval.sparse import _tokenize

    tokens = _tokenize(["Its mass is 54.938 u, its domain .ar, its code +54: Ar, 45,376,763."])[0]
    assert {"54.938", ".ar", "54", "ar", "45,376,763"} <= set(tokens)
    assert tokens.count("54") == 1, "the mass is one token, not a stray 54"
    # So an inverse question finds the one document that has the code, not the mass.
    index = BM25Index([1, 2], ["The mass of Manganese is 54.938 u.",
                               "The calling code of Argentina is +54."])
    assert index.search(["calling code 54"], 1)[0][0][0] == 2
