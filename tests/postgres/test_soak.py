"""The replica soak, short: benchmarks/replica_soak.py run as a user runs it (two real replicas
of the default core on one PostgreSQL, 4 writers and 16 readers, then kill -9 of one
mid-ingest), its report checked: every acknowledged document on both replicas, no 5xx, no 409,
and none lost with the killed replica."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cogcore.paths import default_core_dir
from tests.conftest import REPO


@pytest.mark.real_model
def test_two_replicas_under_writers_and_readers_then_one_killed(tmp_path: Path) -> None:
    if not (default_core_dir() / "config.json").is_file():
        pytest.skip("the default core is not built (make core)")
    run = subprocess.run([sys.executable, "benchmarks/replica_soak.py", "--seconds", "20",
                          "--kill-seconds", "12", "--out", str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "replica_soak.json").read_text())
    both, kill = report["both"], report["kill"]
    assert both["acked"] > 20 and kill["acked"] > 5
    assert set(both["by_status"]) == {"200"}  # no 5xx, no 409, no 4xx of any kind
    assert both["transport_errors"] == {} and both["stale_gets"] == 0
    assert both["missing_on_a"] == both["missing_on_b"] == 0
    pairs = {" ".join(key.split()[:2]) for key in both["statuses"]}  # every op on each
    assert pairs == {f"{op} {replica}" for op in ("write", "search", "get") for replica in "AB"}
    assert set(kill["by_status"]) == {"200"} and kill["stale_gets"] == 0
    assert kill["a_exit"] == -signal.SIGKILL
    # Only replica A's requests may go unanswered; no acknowledged document is lost.
    assert all(key.split()[1] == "A" for key in kill["transport_errors"])
    assert kill["missing_on_b"] == 0
