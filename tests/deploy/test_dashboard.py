"""The Grafana dashboard only charts metrics that the service really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest

from service.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards/cognitive-core.json"
SUFFIXES = ("_bucket", "_total", "_count", "_sum")


def exported_names() -> set[str]:
    """Every sample name the service's registry exposes, after one of each event."""
    metrics = Metrics("m")
    metrics.track(lambda: 0, lambda: 0)
    metrics.admitted(0.1, 5)
    metrics.token(None, 0.2)
    metrics.token(0.05, 0.25)
    metrics.finished(0.3, "stop")
    metrics.grounded("facts", True, 0.01)
    metrics.responded(429)
    text = generate_latest(metrics.registry).decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def test_every_dashboard_query_uses_an_exported_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"cogcore:[a-z0-9_]+", e)}
    exported = exported_names()
    assert len(dashboard["panels"]) >= 6
    missing = {m for m in used if m not in exported}
    assert not missing, f"dashboard uses metrics the service does not export: {missing}"
    assert {"cogcore:abstentions_total", "cogcore:http_errors_total"} <= used
    assert all(not m.endswith(SUFFIXES) or m in exported for m in used)
