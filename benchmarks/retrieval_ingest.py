"""Ingestion rate (chunks/s through KnowledgeBase.upsert) beside the raw encode rate, one run.

    .venv/bin/python benchmarks/retrieval_ingest.py [--docs 2000] [--out artifacts/reports]

Both sides embed exactly the same texts (each synthetic document is one chunk).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from retrieval_common import rss_mib, synthetic_texts, timed, write_report

from retrieval.documents import Document
from retrieval.embedder import Embedder
from retrieval.knowledge_base import KnowledgeBase

BATCH = 128


def paired_rates(embedder: Embedder, texts: list[str], directory: Path) -> tuple[float, float]:
    """Seconds of raw encoding and of upserting the same batches, interleaved batch by batch."""
    raw = ingest = 0.0
    with KnowledgeBase.open(directory, embedder=embedder) as kb:
        for start in range(0, len(texts), BATCH):
            batch = texts[start : start + BATCH]
            raw += timed(lambda b=batch: embedder.encode(b))[1]
            docs = [Document(f"doc-{start + i}", t, {"n": i % 10}) for i, t in enumerate(batch)]
            ingest += timed(lambda d=docs: kb.upsert(d))[1]
        ingest += timed(kb.close)[1]  # the final index save is part of ingesting
    return raw, ingest


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("artifacts/reports"))
    args = parser.parse_args()
    embedder = Embedder()
    texts = synthetic_texts(args.docs, seed=1)
    embedder.encode(texts[:64])  # warm-up: first-call allocation is not a rate
    with tempfile.TemporaryDirectory() as tmp:
        raw, ingest = paired_rates(embedder, texts, Path(tmp))
    raw_rate, kb_rate = len(texts) / raw, len(texts) / ingest
    report = {"chunks": len(texts), "raw_encode_chunks_per_s": raw_rate,
              "ingest_chunks_per_s": kb_rate, "ratio": kb_rate / raw_rate,
              "raw_seconds": raw, "ingest_seconds": ingest, "memory": rss_mib()}
    write_report("retrieval_ingest", report, [
        "# Ingestion rate vs raw encode rate", "",
        f"{len(texts)} synthetic one-chunk documents in batches of {BATCH}; each batch is "
        "encoded raw, then upserted (validate, chunk, embed, SQLite commit, FAISS add), so CPU "
        "noise hits both sides alike.", "",
        "| raw encode (chunks/s) | ingestion (chunks/s) | ratio |", "|---|---|---|",
        f"| {raw_rate:.1f} | {kb_rate:.1f} | {kb_rate / raw_rate:.2f} |",
    ], args.out)


if __name__ == "__main__":
    main()
