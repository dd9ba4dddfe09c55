"""Paired comparison of two models: every headline ratio (model / base) with a 95% interval.

Both models answer the same items (every suite takes the first N of a fixed order), so the
comparison is paired: a bootstrap resample draws item indices once and scores both models on
them, which cancels the items' own difficulty out of the ratio's spread. Accuracy figures keep
their per-item 0/1 vectors in the result as strings of "0" and "1" (`bits`), with a digest of
the item ids so that two results are only paired when they asked the same items. Perplexity is
resampled over its windows (each window's summed negative log-likelihood and its words).

`paired_ratios(base, model)` is what the report prints and what a pruning run can call on two
`evaluate_model` results. numpy only; the seed is fixed, so the same results give the same
intervals on every machine.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

# Each perplexity figure's label and suite key; the third text is held out from every choice.
PERPLEXITY = (("perplexity per word", "perplexity"),
              ("perplexity per word, second text", "perplexity_second"),
              ("perplexity per word, third text (held out)", "perplexity_third"))

SEED = 0
RESAMPLES = 2000
LEVEL = 0.95


def bits(values: Iterable[bool | int]) -> str:
    """Per-item correctness as a compact string: "0110" for wrong, right, right, wrong."""
    return "".join("1" if v else "0" for v in values)


def unbits(text: str) -> np.ndarray:
    """The 0/1 vector of a `bits` string."""
    return np.frombuffer(text.encode(), dtype=np.uint8) - ord("0")


def digest(ids: Iterable[str]) -> str:
    """A short hash of the item ids, in order: equal digests mean the same items."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def _interval(draws: np.ndarray) -> tuple[float, float]:
    finite = draws[np.isfinite(draws)]
    if finite.size < draws.size * 0.5:  # the base is zero in most resamples: no interval
        return math.nan, math.nan
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def _divide(a: np.ndarray | float, b: np.ndarray | float) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(a, b)


def _resampled(
    strata: Sequence[tuple[np.ndarray, np.ndarray]],
    statistic: Callable[[list[np.ndarray]], np.ndarray],
    resamples: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Base and model statistics over `resamples` paired resamples (rows), each stratum
    resampled on its own (the same indices for both models)."""
    rng = np.random.default_rng(seed)
    base_rows, model_rows = [], []
    for base, model in strata:
        idx = rng.integers(0, len(base), size=(resamples, len(base)))
        base_rows.append(base[idx])
        model_rows.append(model[idx])
    return statistic(base_rows), statistic(model_rows)


def _mean_of_means(samples: list[np.ndarray]) -> np.ndarray:
    return np.mean([s.mean(axis=-1) for s in samples], axis=0)


def accuracy_ratio(
    base: Sequence[np.ndarray], model: Sequence[np.ndarray], *, resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict[str, float]:
    """Ratio of the model's accuracy to the base's, with its 95% paired-bootstrap interval.

    `base` and `model` are strata of 0/1 vectors (one per reasoning task, or a single one); the
    accuracy is the mean of the strata's means (the headline's mean over tasks), and each
    stratum is resampled within itself.
    """
    if len(base) != len(model) or any(len(b) != len(m) for b, m in zip(base, model,
                                                                           strict=True)):
        raise ValueError("paired vectors must have the same shapes")
    base = [np.asarray(b, dtype=float) for b in base]
    model = [np.asarray(m, dtype=float) for m in model]
    base_value = float(_mean_of_means([b[None] for b in base])[0])
    model_value = float(_mean_of_means([m[None] for m in model])[0])
    base_draws, model_draws = _resampled(list(zip(base, model, strict=True)), _mean_of_means,
                                         resamples, seed)
    low, high = _interval(_divide(model_draws, base_draws))
    return {"ratio": float(_divide(model_value, base_value)), "low": low, "high": high,
            "base": base_value, "model": model_value, "n": int(sum(len(b) for b in base))}


def perplexity_ratio(
    base_nll: Sequence[float], model_nll: Sequence[float], words: Sequence[int], *,
    resamples: int = RESAMPLES, seed: int = SEED,
) -> dict[str, float]:
    """Ratio of per-word perplexities over the same windows, with its 95% bootstrap interval
    (windows resampled; perplexity = exp(summed nll / summed words))."""
    base_arr, model_arr = np.asarray(base_nll, float), np.asarray(model_nll, float)
    words_arr = np.asarray(words, float)
    if not base_arr.shape == model_arr.shape == words_arr.shape:
        raise ValueError("paired windows must have the same shapes")

    def per_word(nll: np.ndarray, count: np.ndarray) -> np.ndarray:
        return np.exp(nll.sum(axis=-1) / count.sum(axis=-1))

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(words_arr), size=(resamples, len(words_arr)))
    draws = _divide(per_word(model_arr[idx], words_arr[idx]),
                    per_word(base_arr[idx], words_arr[idx]))
    base_value, model_value = per_word(base_arr, words_arr), per_word(model_arr, words_arr)
    low, high = _interval(draws)
    return {"ratio": float(model_value / base_value), "low": low, "high": high,
            "base": float(base_value), "model": float(model_value), "n": len(words_arr)}


# (label, path to the dict holding the figure, key of its bits) of every accuracy ratio.
ACCURACY_FIGURES = (
    ("closed-book calibration", ("closed_book", "calibration"), "correct"),
    ("closed-book heldout", ("closed_book", "heldout"), "correct"),
    ("closed-book paraphrase", ("closed_book", "paraphrase"), "correct"),
    ("open-book", ("open_book",), "correct"),
    ("counterfactual faithfulness", ("counterfactual",), "correct"),
    ("counterfactual memory override", ("counterfactual",), "override"),
    ("fictional", ("fictional",), "correct"),
)


def _at(suites: dict, path: tuple[str, ...]) -> dict | None:
    value: Any = suites
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _unpaired(why: str) -> dict[str, Any]:
    return {"ratio": math.nan, "low": math.nan, "high": math.nan, "unpaired": why}


def _accuracy_entry(base: dict | None, model: dict | None, key: str) -> dict[str, Any] | None:
    if base is None or model is None:
        return None
    if key not in base or key not in model:
        return _unpaired("no per-item results (an older eval.json)")
    if base.get("items") != model.get("items"):
        return _unpaired("different items")
    return accuracy_ratio([unbits(base[key])], [unbits(model[key])])


def _reasoning_entries(base: dict, model: dict) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    base_bits, model_bits = base.get("correct"), model.get("correct")
    tasks = [t for t in base.get("tasks", {}) if t in model.get("tasks", {})]
    for task in tasks:
        if not base_bits or not model_bits or task not in base_bits or task not in model_bits:
            out[f"reasoning: {task}"] = _unpaired("no per-item results (an older eval.json)")
        elif len(base_bits[task]) != len(model_bits[task]):
            out[f"reasoning: {task}"] = _unpaired("different items")
        else:
            out[f"reasoning: {task}"] = accuracy_ratio([unbits(base_bits[task])],
                                                       [unbits(model_bits[task])])
    headline = [t for t in base.get("headline_tasks", []) if t in model.get("headline_tasks", [])]
    if headline and all("unpaired" not in out[f"reasoning: {t}"] for t in headline):
        out["reasoning (headline tasks)"] = accuracy_ratio(
            [unbits(base_bits[t]) for t in headline], [unbits(model_bits[t]) for t in headline])
    elif headline:
        out["reasoning (headline tasks)"] = _unpaired("no per-item results or different items")
    return out


def _perplexity_entry(base: dict | None, model: dict | None) -> dict[str, Any] | None:
    if base is None or model is None:
        return None
    if "windows" not in base or "windows" not in model:
        return _unpaired("no per-window results (an older eval.json)")
    base_w, model_w = base["windows"], model["windows"]
    if [w for _, w in base_w] != [w for _, w in model_w] or base.get("source") != model.get(
            "source"):
        return _unpaired("different windows")
    return perplexity_ratio([n for n, _ in base_w], [n for n, _ in model_w],
                            [w for _, w in base_w])


def paired_ratios(base: dict, model: dict) -> dict[str, dict[str, Any]]:
    """Every headline ratio of `model` to `base` (two `evaluate_model`/`evaluate_checkpoint`
    results), each {"ratio", "low", "high", "base", "model", "n"}; "unpaired" says why a
    figure has no interval (then ratio, low and high are NaN)."""
    b, m = base["suites"], model["suites"]
    ratios: dict[str, dict[str, Any]] = {}
    for label, path, key in ACCURACY_FIGURES:
        entry = _accuracy_entry(_at(b, path), _at(m, path), key)
        if entry is not None:
            ratios[label] = entry
    if "reasoning" in b and "reasoning" in m:
        reasoning = _reasoning_entries(b["reasoning"], m["reasoning"])
        headline = reasoning.pop("reasoning (headline tasks)", None)
        if headline is not None:
            ratios["reasoning (headline tasks)"] = headline
        ratios.update(reasoning)
    for label, key in PERPLEXITY:
        entry = _perplexity_entry(b.get(key), m.get(key))
        if entry is not None:
            ratios[label] = entry
    return ratios
