"""The route decision: a classifier on the query's embedding, or a close match in the store.

Chosen by measurement (`benchmarks/routing_eval.py`, figures in docs/facts.md). A logistic
regression on the sentence embedding judges the question's form (does it seek a fact?), so a
question about something the store lacks still goes to `facts` and the service can abstain
instead of letting the core invent. It misses fact questions in wordings it never saw; a dense
retrieval score above a threshold (tuned on the `tune` split by grouped cross-validation)
catches most of them, and reasoning questions rarely match a document that closely. Either
signal sends the query to `facts`. The classifier is fitted at start-up on the `tune` split
(about a second).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from service.routing.questions import Route, RoutingQuestion, routing_questions


class TextEncoder(Protocol):
    """What the router needs of an embedder."""

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text."""
        ...


# Measured by benchmarks/routing_eval.py on the tune split (docs/facts.md).
DEFAULT_RETRIEVAL_THRESHOLD = 0.51


@dataclass(frozen=True)
class Decision:
    """Where a request goes, with the two signals behind it."""

    route: Route
    p_facts: float
    retrieval_score: float | None


class Router:
    """Routes a query to `facts` or `reasoning` from its embedding."""

    def __init__(
        self,
        encoder: TextEncoder,
        threshold: float = 0.5,
        retrieval_threshold: float = DEFAULT_RETRIEVAL_THRESHOLD,
        training: Sequence[RoutingQuestion] | None = None,
    ) -> None:
        from sklearn.linear_model import LogisticRegression

        examples = list(training) if training is not None else [
            q for q in routing_questions() if q.split == "tune"
        ]
        self._encoder = encoder
        self.threshold = threshold
        self.retrieval_threshold = retrieval_threshold
        vectors = encoder.encode([q.text for q in examples])
        labels = np.array([q.route == "facts" for q in examples], dtype=int)
        # Balanced weights: the tuning split need not hold both routes in equal numbers.
        self._model = LogisticRegression(C=4.0, class_weight="balanced", max_iter=1000)
        self._model.fit(vectors, labels)

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """P(facts) for each text."""
        return self._model.predict_proba(self._encoder.encode(texts))[:, 1]

    def route(self, text: str, retrieval_score: float | None = None) -> Decision:
        """The decision for one query, given its best dense retrieval score when known."""
        p_facts = float(self.probabilities([text])[0])
        close_match = retrieval_score is not None and retrieval_score >= self.retrieval_threshold
        route: Route = "facts" if p_facts >= self.threshold or close_match else "reasoning"
        return Decision(route, p_facts, retrieval_score)
