"""Sparse retrieval: BM25 over chunk texts with `bm25s`, rebuilt whenever the store changes.

`bm25s` has no incremental update, and indexing is fast (tens of thousands of chunks per
second), so the knowledge base rebuilds this index lazily on the first sparse search after a write.
"""

from __future__ import annotations

import bm25s
import numpy as np

# Keep one-character tokens: element symbols ("O") and digits are real search terms here.
# Numbers keep their decimals and thousands ("54.938", "45,376,763": no stray "54"), and an
# internet domain its dot (".ar" is not the symbol "Ar").
TOKEN_PATTERN = r"(?u)(?<!\w)\.[^\W\d_]\w*|\d+(?:[.,]\d+)*|\w+"


def _tokenize(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(texts, token_pattern=TOKEN_PATTERN, stopwords="en",
                          return_ids=False, show_progress=False)


class BM25Index:
    """BM25 (Lucene variant) scores over a fixed set of chunks."""

    def __init__(self, ids: np.ndarray, texts: list[str]) -> None:
        self.ids = np.asarray(ids, np.int64)
        self._retriever = bm25s.BM25()
        if len(texts):
            self._retriever.index(_tokenize(texts), show_progress=False)

    def search(
        self, queries: list[str], k: int, allowed: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        """Per query, up to k (chunk id, BM25 score) pairs with a positive score, best first."""
        if not len(self.ids):
            return [[] for _ in queries]
        mask = None if allowed is None else np.isin(self.ids, allowed)
        vocab = self._retriever.vocab_dict
        results = []
        for tokens in _tokenize(queries):
            known = [t for t in tokens if t in vocab]
            scores = self._retriever.get_scores(known) if known else np.zeros(len(self.ids))
            if mask is not None:
                scores = np.where(mask, scores, 0.0)
            top = np.argsort(-scores, kind="stable")[:k]
            results.append([(int(self.ids[i]), float(scores[i])) for i in top if scores[i] > 0])
        return results

    def unknown_terms(self, text: str) -> list[str]:
        """Terms of `text` (tokenized as for search, stopwords dropped) that no chunk contains."""
        vocab = self._retriever.vocab_dict if len(self.ids) else {}
        return [t for t in dict.fromkeys(_tokenize([text])[0]) if t not in vocab]

    def knows(self, text: str) -> bool:
        """Whether `text` has search terms (not only stopwords) and every one is in a chunk."""
        return bool(_tokenize([text])[0]) and not self.unknown_terms(text)
