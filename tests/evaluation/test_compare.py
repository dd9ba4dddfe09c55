"""The paired comparison: intervals hold the estimate, narrow with n, pair only equal items."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from evaluation.compare import (
    accuracy_ratio,
    bits,
    digest,
    paired_ratios,
    perplexity_ratio,
    unbits,
)
from evaluation.report import write_json, write_markdown


def _pair(n: int, base_p: float, model_p: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Correlated 0/1 vectors: the model mostly agrees with the base, as a pruned core does."""
    rng = np.random.default_rng(seed)
    base = (rng.random(n) < base_p).astype(int)
    flip = rng.random(n) < abs(model_p - base_p) / max(base_p, 1 - base_p)
    model = np.where(flip, 1 - base, base) if model_p != base_p else base.copy()
    return base, model


def test_bits_round_trip_and_digest_tells_item_lists_apart() -> None:
    vector = [True, False, False, True, True]
    assert bits(vector) == "10011"
    assert unbits(bits(vector)).tolist() == [1, 0, 0, 1, 1]
    assert digest(["a", "b"]) == digest(["a", "b"]) != digest(["b", "a"])


def test_interval_contains_the_estimate_and_narrows_with_n() -> None:
    widths = []
    for n in (100, 400, 1600):
        base, model = _pair(n, 0.6, 0.5, seed=n)
        entry = accuracy_ratio([base], [model])
        assert entry["ratio"] == pytest.approx(model.mean() / base.mean())
        assert entry["low"] < entry["ratio"] < entry["high"]
        assert entry["n"] == n
        widths.append(entry["high"] - entry["low"])
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[2] == pytest.approx(4, rel=0.35)  # width ~ 1/sqrt(n)


def test_a_paired_copy_has_a_zero_width_interval_at_one() -> None:
    base, _ = _pair(300, 0.4, 0.4, seed=1)
    entry = accuracy_ratio([base], [base.copy()])
    assert entry["ratio"] == entry["low"] == entry["high"] == 1.0


def test_pairing_narrows_the_interval_against_independent_items() -> None:
    base, model = _pair(400, 0.6, 0.55, seed=3)
    paired = accuracy_ratio([base], [model])
    shuffled = accuracy_ratio([base], [np.random.default_rng(0).permutation(model)])
    assert paired["ratio"] == pytest.approx(shuffled["ratio"])
    assert paired["high"] - paired["low"] < 0.7 * (shuffled["high"] - shuffled["low"])


def test_the_seed_is_fixed() -> None:
    base, model = _pair(200, 0.5, 0.45, seed=4)
    assert accuracy_ratio([base], [model]) == accuracy_ratio([base], [model])


def test_strata_ratio_is_the_ratio_of_mean_task_accuracies() -> None:
    a_base, a_model = _pair(400, 0.8, 0.7, seed=5)
    b_base, b_model = _pair(100, 0.4, 0.4, seed=6)
    entry = accuracy_ratio([a_base, b_base], [a_model, b_model])
    expected = (a_model.mean() + b_model.mean()) / (a_base.mean() + b_base.mean())
    assert entry["ratio"] == pytest.approx(expected)
    assert entry["low"] < entry["ratio"] < entry["high"] and entry["n"] == 500


def test_perplexity_ratio_over_windows() -> None:
    rng = np.random.default_rng(7)
    words = rng.integers(250, 350, size=16)
    base_nll = words * (4.0 + rng.normal(0, 0.3, size=16))
    model_nll = base_nll + words * (0.2 + rng.normal(0, 0.05, size=16))
    entry = perplexity_ratio(base_nll, model_nll, words)
    expected = math.exp(model_nll.sum() / words.sum()) / math.exp(base_nll.sum() / words.sum())
    assert entry["ratio"] == pytest.approx(expected)
    assert entry["low"] < entry["ratio"] < entry["high"]
    assert 1.0 < entry["low"]  # every window is worse: the interval excludes 1
    short = perplexity_ratio(base_nll[:4], model_nll[:4], words[:4])
    assert short["high"] - short["low"] > entry["high"] - entry["low"]


def _result(name: str, correct: str, reasoning: dict[str, str], nll: list[float],
            items: str = "x") -> dict:
    figures = {"accuracy": correct.count("1") / len(correct), "n": len(correct),
               "items": items, "correct": correct,
               "per_relation": {"country.capital": {"accuracy": 0.5, "n": len(correct)}}}
    windows = [[n, 100] for n in nll]
    perplexity = {"value": math.exp(sum(nll) / (100 * len(nll))), "words": 100 * len(nll),
                  "source": "s", "windows": windows}
    return {
        "name": name, "model": name, "mode": "quick",
        "suites": {
            "closed_book": {"calibration": figures, "heldout": figures, "paraphrase": figures},
            "open_book": figures, "fictional": figures,
            "counterfactual": {**figures, "faithfulness": figures["accuracy"],
                               "memory_override": 0.0, "override": "0" * len(correct)},
            "reasoning": {"accuracy": 0.5, "n": 8, "headline_tasks": list(reasoning),
                          "tasks": {t: {"accuracy": c.count("1") / len(c), "chance": 0.25,
                                        "n": len(c)} for t, c in reasoning.items()},
                          "correct": reasoning},
            "perplexity": perplexity, "perplexity_second": perplexity,
            "perplexity_third": perplexity,
        },
    }


def test_paired_ratios_cover_every_headline_figure_and_refuse_other_items() -> None:
    base = _result("base", "1101101101", {"addition": "1100", "multiplication": "1110"},
                   [400.0, 420.0, 410.0])
    core = _result("core", "1001100100", {"addition": "1000", "multiplication": "1100"},
                   [450.0, 470.0, 440.0])
    ratios = paired_ratios(base, core)
    for label in ("closed-book heldout", "closed-book paraphrase", "open-book",
                  "counterfactual faithfulness", "fictional", "reasoning (headline tasks)",
                  "reasoning: addition", "perplexity per word",
                  "perplexity per word, second text",
                  "perplexity per word, third text (held out)"):
        assert label in ratios, label
    assert ratios["closed-book heldout"]["ratio"] == pytest.approx(4 / 7)
    assert ratios["reasoning (headline tasks)"]["ratio"] == pytest.approx(
        (1 / 4 + 2 / 4) / (2 / 4 + 3 / 4))
    assert ratios["perplexity per word"]["ratio"] > 1
    other = _result("other", "1001100100", {}, [1.0, 1.0, 1.0], items="y")
    assert "different items" in paired_ratios(base, other)["open-book"]["unpaired"]


def test_report_prints_intervals_and_writes_strict_json(tmp_path: Path) -> None:
    base = _result("base", "1101101101" * 5, {"addition": "1100" * 10}, [400.0, 420.0, 410.0])
    core = _result("core", "1001100100" * 5, {"addition": "1000" * 10}, [450.0, 470.0, 440.0])
    for r in (base, core):
        r.update(params=1, non_embedding_params=1, checkpoint_bytes=1, peak_rss_bytes=2**20,
                 seconds=1.0, speed={"tokens_per_s_batch1": 1.0, "tokens_per_s_batch32": 1.0})
    text = write_markdown([base, core], tmp_path, []).read_text()
    assert "## Ratios core / base" in text
    line = next(x for x in text.splitlines() if x.startswith("| closed-book paraphrase |")
                and "[" in x)
    assert "0.571 [" in line  # 20/35 with its interval
    report = json.loads(write_json([base, core], tmp_path).read_text(),
                        parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    entry = report["ratios"][0]
    assert entry["model"] == "core" and entry["to"] == "base"
    assert entry["figures"]["closed-book paraphrase"]["ratio"] == pytest.approx(20 / 35)
    assert entry["figures"]["counterfactual memory override"]["ratio"] is None  # 0 / 0


def test_a_full_run_takes_the_suites_it_lacks_from_partial_runs_and_keeps_its_own(
    tmp_path: Path,
) -> None:
    from evaluation.partial import with_suites_of

    full = _result("base", "1101101101", {"addition": "1100"}, [400.0, 420.0, 410.0])
    del full["suites"]["perplexity_third"]
    third = {"value": 40.0, "words": 300, "source": "s", "windows": [[120.0, 100]] * 3}
    part = tmp_path / "base-third.json"
    part.write_text(json.dumps({"suites": {"perplexity_third": third,
                                           "perplexity": {"value": -1.0}}}))
    merged = with_suites_of(full, [part])
    assert merged["suites"]["perplexity_third"] == third
    assert merged["suites"]["perplexity"] == full["suites"]["perplexity"]  # the full run's wins
    core = _result("core", "1001100100", {"addition": "1000"}, [450.0, 470.0, 440.0])
    assert "perplexity per word, third text (held out)" not in paired_ratios(full, core)
    assert "perplexity per word, third text (held out)" in paired_ratios(merged, core)
