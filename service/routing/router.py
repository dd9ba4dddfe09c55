"""The route decision: a classifier on the query's embedding, or a close match in the store.

Chosen by measurement (`benchmarks/routing_eval.py`, figures in docs/facts.md). A logistic
regression on the sentence embedding judges the question's form (does it seek a fact?), so a
question about something the store lacks still goes to `facts` and the service can abstain
instead of letting the core invent. It misses fact questions in wordings it never saw; a dense
retrieval score above a threshold (tuned on the `tune` split by grouped cross-validation)
catches most of them, and reasoning questions rarely match a document that closely. Either
signal sends the query to `facts`.

The classifier is fitted once, when the knowledge base is built (`cogcore kb build`), and saved
beside it as `router.json`; the service loads it at start. Its training set is the labelled
question set's `tune` split, which does not depend on the store's documents, so adding or
deleting documents leaves it valid; a file fitted with another embedder or on another version
of the question set is refitted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from service.routing.questions import Route, RoutingQuestion, routing_questions

log = logging.getLogger("cogcore.routing")
ROUTER_FILE = "router.json"
ROUTER_FORMAT = 1
# Measured by benchmarks/routing_eval.py on the tune split (docs/facts.md).
DEFAULT_RETRIEVAL_THRESHOLD = 0.51


class TextEncoder(Protocol):
    """What the router needs of an embedder."""

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text."""
        ...


@dataclass(frozen=True)
class Decision:
    """Where a request goes, with the two signals behind it."""

    route: Route
    p_facts: float
    retrieval_score: float | None


def tune_questions() -> list[RoutingQuestion]:
    """The labelled questions the classifier is fitted on (the `tune` split)."""
    return [q for q in routing_questions() if q.split == "tune"]


def fingerprint(questions: Sequence[RoutingQuestion]) -> str:
    """A digest of the training questions and their labels: it changes when the set does."""
    digest = hashlib.sha256()
    for q in questions:
        digest.update(f"{q.route}\t{q.text}\n".encode())
    return digest.hexdigest()


def encoder_id(encoder: TextEncoder, dim: int) -> str:
    """The embedder a classifier was fitted with, as the knowledge base names it (name/dim)."""
    return f"{getattr(encoder, 'name', type(encoder).__name__)}/{dim}"


@dataclass(frozen=True)
class RouterModel:
    """The fitted logistic regression as plain numbers, and what it was fitted on."""

    weights: np.ndarray
    bias: float
    encoder: str
    fingerprint: str

    def p_facts(self, vectors: np.ndarray) -> np.ndarray:
        """P(facts) for each embedding row."""
        return 1.0 / (1.0 + np.exp(-(vectors @ self.weights + self.bias)))

    def save(self, path: Path) -> None:
        """Write the model as JSON, atomically (a crash leaves the old file or the new one)."""
        body = {"format": ROUTER_FORMAT, "encoder": self.encoder,
                "fingerprint": self.fingerprint, "bias": self.bias,
                "weights": [float(w) for w in self.weights]}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(body) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> RouterModel | None:
        """The model saved at `path`, or None when there is none or it cannot be read."""
        try:
            body = json.loads(path.read_text())
            if body["format"] != ROUTER_FORMAT:
                return None
            return cls(np.asarray(body["weights"], np.float32), float(body["bias"]),
                       str(body["encoder"]), str(body["fingerprint"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def fit_router(encoder: TextEncoder,
               training: Sequence[RoutingQuestion] | None = None) -> RouterModel:
    """Fit the classifier on `training` (default: the tune split) with this encoder."""
    from sklearn.linear_model import LogisticRegression

    examples = list(training) if training is not None else tune_questions()
    vectors = encoder.encode([q.text for q in examples])
    labels = np.array([q.route == "facts" for q in examples], dtype=int)
    # Balanced weights: the tuning split need not hold both routes in equal numbers.
    model = LogisticRegression(C=4.0, class_weight="balanced", max_iter=1000)
    model.fit(vectors, labels)
    return RouterModel(model.coef_[0].astype(np.float32), float(model.intercept_[0]),
                       encoder_id(encoder, vectors.shape[1]), fingerprint(examples))


def load_or_fit_router(directory: Path, encoder: TextEncoder, save: bool = True) -> RouterModel:
    """The classifier saved in `directory`, fitted (and saved, when `save`) if missing or stale.

    `encoder` is the knowledge base's embedder (it has a `name` and a `dim`).
    """
    path = Path(directory) / ROUTER_FILE
    model = RouterModel.load(path)
    wanted = encoder_id(encoder, encoder.dim), fingerprint(tune_questions())
    if model is not None and (model.encoder, model.fingerprint) == wanted:
        return model
    why = "missing or unreadable" if model is None else "fitted on another embedder or set"
    log.warning("router %s is %s: fitting it on the tune split", path, why)
    model = fit_router(encoder)
    if save:
        model.save(path)
    return model


class Router:
    """Routes a query to `facts` or `reasoning` from its embedding."""

    def __init__(
        self,
        encoder: TextEncoder,
        threshold: float = 0.5,
        retrieval_threshold: float = DEFAULT_RETRIEVAL_THRESHOLD,
        training: Sequence[RoutingQuestion] | None = None,
        model: RouterModel | None = None,
    ) -> None:
        self._encoder = encoder
        self.threshold = threshold
        self.retrieval_threshold = retrieval_threshold
        self.model = model if model is not None else fit_router(encoder, training)

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """P(facts) for each text."""
        return self.model.p_facts(self._encoder.encode(texts))

    def route(self, text: str, retrieval_score: float | None = None) -> Decision:
        """The decision for one query, given its best dense retrieval score when known."""
        p_facts = float(self.probabilities([text])[0])
        close_match = retrieval_score is not None and retrieval_score >= self.retrieval_threshold
        route: Route = "facts" if p_facts >= self.threshold or close_match else "reasoning"
        return Decision(route, p_facts, retrieval_score)
