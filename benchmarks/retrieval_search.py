"""Search latency with the query's embedding included, exact vs HNSW, at 10k and 100k chunks.

    .venv/bin/python benchmarks/retrieval_search.py [--sizes 10000 100000] [--unique 2000]

Embedding 100k passages takes minutes on two cores, so the benchmark embeds `--unique` distinct
synthetic passages with the real embedder and fills the store with them plus perturbed copies
(unit vectors with Gaussian noise, cosine about 0.8 to their original), written straight into
the SQLite store. Opening the knowledge base then rebuilds each index from the stored
embeddings (timed). Queries are other synthetic passages, embedded at search time by the real
embedder. HNSW recall@10 is measured against the exact index's chunk ids on the same store.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from retrieval_common import percentiles_ms, rss_mib, synthetic_texts, timed, write_report

from retrieval.documents import Document, validate
from retrieval.embedder import RUNTIMES, Embedder
from retrieval.knowledge_base import STORE_FILE, KBSettings, KnowledgeBase
from retrieval.store import DocumentStore, WritePlan

NOISE = 0.04  # per dimension: noise norm ~0.78 in 384 dimensions, cosine ~0.8
WRITE_BATCH = 5000


def fill_store(directory: Path, embedder: Embedder, texts: list[str], vectors: np.ndarray,
               size: int) -> None:
    """Create a KB at `directory` holding `size` one-chunk documents with given vectors."""
    KnowledgeBase.open(directory, embedder=embedder).close()
    rng = np.random.default_rng(size)
    store = DocumentStore(directory / STORE_FILE)
    for start in range(0, size, WRITE_BATCH):
        plans = []
        for i in range(start, min(size, start + WRITE_BATCH)):
            base = vectors[i % len(texts)]
            if i >= len(texts):
                base = base + rng.normal(0, NOISE, base.shape).astype(np.float32)
                base /= np.linalg.norm(base)
            text = texts[i % len(texts)] + ("" if i < len(texts) else f" Copy {i}.")
            doc = validate(Document(f"doc-{i}", text, {"copy": i >= len(texts)}), 10**6)
            plans.append(WritePlan(doc, [text], base[None, :]))
        store.write(plans)
    store.close()


class Precomputed:
    """The real embedder's vectors looked up instead of computed: times search alone."""

    def __init__(self, embedder: Embedder, texts: list[str]) -> None:
        self.name, self.dim, self.max_tokens = embedder.name, embedder.dim, embedder.max_tokens
        self.count_tokens_batch = embedder.count_tokens_batch
        self._vectors = dict(zip(texts, embedder.encode(texts), strict=True))

    def encode(self, texts: list[str]) -> np.ndarray:
        """The stored vectors of `texts`."""
        return np.stack([self._vectors[t] for t in texts])

    def add(self, text: str, vector: np.ndarray) -> None:
        """Know one more text's vector."""
        self._vectors[text] = vector


def search_alone(directory: Path, encoder: Precomputed, kind: str, queries: list[str]) -> dict:
    """Dense search latency without the query's embedding (vectors looked up)."""
    settings = KBSettings(index=kind, save_every_chunks=10**9)
    with KnowledgeBase.open(directory, encoder, settings, readonly=True) as kb:
        kb.search(queries[0], k=10, mode="dense")
        return percentiles_ms([timed(lambda q=q: kb.search(q, k=10, mode="dense"))[1]
                               for q in queries])


def measure(directory: Path, embedder: Embedder, kind: str, queries: list[str]) -> dict:
    """Open (rebuilding the index) and time dense searches; top-10 ids kept for recall."""
    settings = KBSettings(index=kind, save_every_chunks=10**9)
    kb, open_s = timed(lambda: KnowledgeBase.open(directory, embedder, settings, readonly=True))
    with kb:
        kb.search(queries[0], k=10, mode="dense")  # warm-up
        times, top = [], []
        for query in queries:
            hits, seconds = timed(lambda q=query: kb.search(q, k=10, mode="dense"))
            times.append(seconds)
            top.append([h.chunk_id for h in hits])
        result = {"open_and_rebuild_s": open_s, "dense_search": percentiles_ms(times),
                  "top10": top, "memory": rss_mib(), "chunks": kb.stats()["chunks"]}
        if kind == "flat":
            _, bm25_build = timed(lambda: kb.search(queries[0], k=10, mode="bm25"))
            hybrid = [timed(lambda q=q: kb.search(q, k=10, mode="hybrid"))[1] for q in queries]
            result |= {"bm25_first_search_incl_build_s": bm25_build,
                       "hybrid_search": percentiles_ms(hybrid)}
    return result


def recall(exact: list[list[int]], approx: list[list[int]]) -> float:
    """Mean fraction of the exact top-10 that the approximate top-10 found."""
    return float(np.mean([len(set(e) & set(a)) / max(1, len(e))
                          for e, a in zip(exact, approx, strict=True)]))


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--unique", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="the embedder's runtime for the searches; the query's embedding "
                             "alone is timed on both torch and ONNX Runtime")
    parser.add_argument("--out", type=Path, default=Path("artifacts/reports"))
    args = parser.parse_args()
    embedder = Embedder(runtime=args.runtime)
    texts = synthetic_texts(args.unique, seed=2)
    vectors, embed_s = timed(lambda: embedder.encode(texts))
    queries = synthetic_texts(args.queries, seed=3)
    by_runtime = {}
    for runtime in ("torch", "onnx"):  # interleaved per query: the same load on both
        timer = embedder if embedder.runtime == runtime else Embedder(runtime=runtime)
        by_runtime[runtime] = (timer, [])
        timer.encode(queries[:1])
    for q in queries:
        for timer, times in by_runtime.values():
            times.append(timed(lambda q=q, e=timer: e.encode([q]))[1])
    alone = {r: percentiles_ms(t) for r, (_, t) in by_runtime.items()}
    report: dict = {"unique_embedded": args.unique, "embed_unique_s": embed_s,
                    "runtime": embedder.runtime, "query_embedding": alone[embedder.runtime],
                    "query_embedding_by_runtime": alone, "sizes": {}}
    lines = ["# Dense search latency (query embedding included)", "",
             f"{args.unique} real embeddings plus perturbed copies; {args.queries} queries; "
             f"embedder runtime {embedder.runtime}: query embedding alone p50 "
             f"{report['query_embedding']['p50_ms']:.1f} ms (torch {alone['torch']['p50_ms']:.1f}"
             f" ms, ONNX Runtime {alone['onnx']['p50_ms']:.1f} ms, interleaved).", "",
             "| chunks | index | open+rebuild (s) | p50 (ms) | p99 (ms) | search alone p50 (ms) "
             "| recall@10 vs exact | RSS (MiB) |", "|---|---|---|---|---|---|---|---|"]
    precomputed = Precomputed(embedder, queries)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            directory = Path(tmp) / str(size)
            fill_store(directory, embedder, texts, vectors, size)
            flat = measure(directory, embedder, "flat", queries)
            hnsw = measure(directory, embedder, "hnsw", queries)
            hnsw["recall@10_vs_exact"] = recall(flat["top10"], hnsw["top10"])
            for kind, r in (("flat", flat), ("hnsw", hnsw)):
                r["search_alone"] = search_alone(directory, precomputed, kind, queries)
            report["sizes"][size] = {"flat": flat, "hnsw": hnsw}
            for kind, r in (("flat", flat), ("hnsw", hnsw)):
                lines.append(f"| {size} | {kind} | {r['open_and_rebuild_s']:.1f} "
                             f"| {r['dense_search']['p50_ms']:.1f} "
                             f"| {r['dense_search']['p99_ms']:.1f} "
                             f"| {r['search_alone']['p50_ms']:.1f} "
                             f"| {r.get('recall@10_vs_exact', 1.0):.3f} "
                             f"| {r['memory']['rss_mib']:.0f} |")
                r.pop("top10")
            lines.append(f"| {size} | flat, hybrid | | {flat['hybrid_search']['p50_ms']:.1f} "
                         f"| {flat['hybrid_search']['p99_ms']:.1f} | | | |")
    write_report("retrieval_search", report, lines, args.out)


if __name__ == "__main__":
    main()
