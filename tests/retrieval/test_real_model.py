"""End to end with the real embedder: the default KB answers its questions; the CLI works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.embedder import Embedder
from retrieval.evaluation import evaluate
from retrieval.knowledge_base import KnowledgeBase
from retrieval.questions import question_set
from tests.conftest import REPO, run_cogcore

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def default_kb() -> Path:
    """The default knowledge base, built (or found current) by the real command."""
    result = run_cogcore("kb", "build", "--source", "default")
    assert result.returncode == 0, result.stderr
    return REPO / result.stdout.strip().splitlines()[-1]


def test_default_kb_holds_one_document_per_entity(default_kb: Path) -> None:
    stats = json.loads(run_cogcore("kb", "stats", "--kb", str(default_kb)).stdout)
    assert stats["documents"] == 424 and stats["index_count"] == stats["chunks"] >= 424
    # The service's router was fitted by the build and saved beside the store.
    router = json.loads((default_kb / "router.json").read_text())
    assert router["encoder"] == "all-MiniLM-L6-v2/384" and len(router["weights"]) == 384


def test_search_command_finds_the_answering_entity_and_filters(default_kb: Path) -> None:
    result = run_cogcore("kb", "search", "What is the capital of France?", "--k", "3",
                         "--json", "--kb", str(default_kb))
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    assert hits[0]["document_id"] == "country:france" and "Paris" in hits[0]["text"]
    assert hits[0]["metadata"] == {"source": "countryinfo", "entity": "country:france",
                                   "kind": "country", "name": "France",
                                   "aliases": ["French Republic", "République française"]}
    result = run_cogcore("kb", "search", "capital of France", "--json", "--mode", "bm25",
                         "--filter", "kind=element,us_state", "--kb", str(default_kb))
    kinds = {json.loads(line)["metadata"]["kind"] for line in result.stdout.splitlines()}
    assert kinds and kinds <= {"element", "us_state"}


def test_hybrid_recall_on_a_sample_of_the_test_split(default_kb: Path) -> None:
    sample = [q for q in question_set() if q.split == "test"][::20]
    with KnowledgeBase.open(default_kb, embedder=Embedder(), readonly=True) as kb:
        report = evaluate(kb, sample, modes=["hybrid"])
    assert report["splits"]["test"]["hybrid"]["recall@5"] >= 0.95
    assert report["splits"]["test"]["hybrid"]["recall@1"] >= 0.85


def test_add_search_delete_from_files_and_a_bad_file(tmp_path: Path) -> None:
    kb = str(tmp_path / "kb")
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps({"id": "n1", "text": "The office moved to Lisbon in 2024.",
                                 "metadata": {"team": "ops"}}) + "\n")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9")
    added = run_cogcore("kb", "add", str(notes), "--kb", kb)
    assert added.returncode == 0 and "n1\t1 chunks" in added.stdout
    refused = run_cogcore("kb", "add", str(bad), "--kb", kb)
    assert refused.returncode == 1 and "error:" in refused.stderr
    message = " ".join(refused.stderr.split())  # the console wraps long lines
    assert "not valid UTF-8" in message and "Traceback" not in message
    found = run_cogcore("kb", "search", "Where is the office?", "--filter", "team=ops",
                        "--kb", kb)
    assert "n1" in found.stdout
    assert run_cogcore("kb", "delete", "n1", "--kb", kb).returncode == 0
    gone = run_cogcore("kb", "delete", "n1", "--kb", kb)
    assert gone.returncode == 1 and "no document with id 'n1'" in gone.stderr
