"""`cogcore kb … --kb-url` against the session's PostgreSQL, with the real embedder."""

from __future__ import annotations

import json
from pathlib import Path

from retrieval.postgres.schema import LATEST
from tests.conftest import run_cogcore


def test_migrate_add_search_delete_through_the_command_line(pg_url: str, tmp_path: Path) -> None:
    first = run_cogcore("kb", "migrate", "--kb-url", pg_url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"schema version 0 -> {LATEST}: applied {LATEST}"
    again = run_cogcore("kb", "migrate", env={"COGCORE_KB_URL": pg_url})  # from the variable
    assert again.stdout.strip() == f"schema version {LATEST} -> {LATEST}: nothing to apply"
    docs = tmp_path / "notes.jsonl"
    docs.write_text("\n".join(json.dumps(d) for d in [
        {"id": "pier", "text": "The ferry leaves pier nine at noon.", "metadata": {"k": "a"}},
        {"id": "mill", "text": "The old mill grinds barley on Tuesdays.", "metadata": {"k": "b"}},
    ]) + "\n")
    added = run_cogcore("kb", "add", str(docs), "--kb-url", pg_url)
    assert added.returncode == 0, added.stderr
    found = run_cogcore("kb", "search", "When does the ferry leave?", "--json", "--k", "1",
                        "--kb-url", pg_url)
    assert json.loads(found.stdout)["document_id"] == "pier"
    assert run_cogcore("kb", "delete", "pier", "--kb-url", pg_url).returncode == 0
    stats = json.loads(run_cogcore("kb", "stats", "--kb-url", pg_url).stdout)
    assert (stats["documents"], stats["backend"], stats["schema_version"]) \
        == (1, "postgresql", LATEST)


def test_an_unreachable_database_is_one_line_and_exit_status_1() -> None:
    for args in (["kb", "stats"], ["serve"]):
        result = run_cogcore(*args, "--kb-url", "postgresql://cogcore@127.0.0.1:1/kb")
        assert result.returncode == 1
        assert "cannot connect to the knowledge-base database" in result.stderr
        assert "Traceback" not in result.stderr
