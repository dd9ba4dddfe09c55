"""Routing: the labelled set is sound and the rule combines its two signals as documented."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from service.routing.questions import routing_questions
from service.routing.router import (
    ROUTER_FILE,
    Router,
    RouterModel,
    fit_router,
    load_or_fit_router,
    tune_questions,
)
from tests.retrieval.fakes import HashingEncoder


class KeywordEncoder:
    """A fake embedder: one dimension says 'a fact word is present', one says 'a digit is'."""

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = [[float("capital" in t or "symbol" in t), float(any(c.isdigit() for c in t))]
                for t in texts]
        return np.array(rows, dtype=np.float32)


def test_labelled_set_is_balanced_large_and_split_by_phrasing() -> None:
    questions = routing_questions()
    assert Counter(q.route for q in questions) == {"facts": 300, "reasoning": 300}
    tune = {q.template for q in questions if q.split == "tune"}
    test = {q.template for q in questions if q.split == "test"}
    assert tune and test and not tune & test, "a test phrasing must never be tuned on"
    assert len({q.text for q in questions}) == len(questions)


def test_either_signal_sends_a_query_to_facts() -> None:
    training = [q for q in routing_questions() if q.split == "tune"]
    router = Router(KeywordEncoder(), retrieval_threshold=0.6, training=training)
    assert router.route("What is the capital of Peru?").route == "facts"
    reasoning = router.route("What is 12 plus 7?")
    assert reasoning.route == "reasoning" and reasoning.retrieval_score is None
    assert router.route("What is 12 plus 7?", retrieval_score=0.2).route == "reasoning"
    assert router.route("What is 12 plus 7?", retrieval_score=0.7).route == "facts"


@pytest.mark.real_model
def test_real_embedder_routes_unseen_phrasings() -> None:
    from retrieval.embedder import Embedder

    router = Router(Embedder())
    test = [q for q in routing_questions() if q.split == "test"]
    predicted = [d.route for d in map(router.route, [q.text for q in test])]
    accuracy = np.mean([p == q.route for p, q in zip(predicted, test, strict=True)])
    assert accuracy >= 0.9  # the classifier alone; with retrieval scores it reaches ~0.99


def test_saved_router_gives_the_fitted_classifiers_probabilities(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    encoder = HashingEncoder(dim=64)
    tune = tune_questions()
    model = fit_router(encoder)
    reference = LogisticRegression(C=4.0, class_weight="balanced", max_iter=1000).fit(
        encoder.encode([q.text for q in tune]), [q.route == "facts" for q in tune])
    model.save(tmp_path / ROUTER_FILE)
    loaded = RouterModel.load(tmp_path / ROUTER_FILE)
    assert loaded is not None and loaded.encoder == "hashing-test-encoder/64"
    vectors = encoder.encode(["What is the capital of Peru?", "What is 12 plus 7?"])
    np.testing.assert_allclose(loaded.p_facts(vectors), reference.predict_proba(vectors)[:, 1],
                               rtol=1e-4, atol=1e-5)


def test_router_is_fitted_once_then_loaded(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from service.routing import router as routing

    fits: list[int] = []
    real_fit = routing.fit_router
    monkeypatch.setattr(routing, "fit_router", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    encoder = HashingEncoder(dim=64)
    first = load_or_fit_router(tmp_path, encoder)
    assert fits == [1] and (tmp_path / ROUTER_FILE).is_file()
    again = load_or_fit_router(tmp_path, encoder)
    assert fits == [1], "a saved, current router is loaded, not fitted"
    np.testing.assert_array_equal(again.weights, first.weights)
    load_or_fit_router(tmp_path, HashingEncoder(dim=32))  # another embedder: refitted
    assert fits == [1, 1]


def test_unreadable_or_unsaved_router_is_refitted(tmp_path: Path) -> None:
    (tmp_path / ROUTER_FILE).write_text("{torn")
    assert RouterModel.load(tmp_path / ROUTER_FILE) is None
    load_or_fit_router(tmp_path, HashingEncoder(dim=16), save=False)
    assert (tmp_path / ROUTER_FILE).read_text() == "{torn", "a read-only store is not written"
    assert RouterModel.load(tmp_path / "missing.json") is None
