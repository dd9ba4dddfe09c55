"""The harness end to end: any checkpoint, the keys tools read, --compare, the real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.report import write_report
from evaluation.run import evaluate_checkpoint
from evaluation.suites import Sizes
from tests.conftest import run_cogcore

TINY = Sizes(calibration=3, heldout=3, reading=3, reasoning=4, perplexity_windows=1)
KEYS = [
    "params", "non_embedding_params", "checkpoint_bytes",
    "suites.closed_book.calibration.accuracy", "suites.closed_book.calibration.n",
    "suites.closed_book.heldout.accuracy", "suites.closed_book.heldout.n",
    "suites.open_book.accuracy", "suites.open_book.n",
    "suites.counterfactual.faithfulness", "suites.counterfactual.memory_override",
    "suites.counterfactual.n", "suites.fictional.accuracy", "suites.fictional.n",
    "suites.reasoning.accuracy", "suites.reasoning.n", "suites.perplexity.value",
    "speed.tokens_per_s_batch1", "speed.tokens_per_s_batch32",
]


def _get(result: dict, dotted: str) -> object:
    for key in dotted.split("."):
        result = result[key]
    return result


def _assert_keys(result: dict) -> None:
    for key in KEYS:
        assert isinstance(_get(result, key), int | float), key
    for task in result["suites"]["reasoning"]["tasks"].values():
        assert set(task) == {"accuracy", "chance", "n"}


@pytest.fixture(scope="module")
def tiny_results(tiny_llama_dir: Path, tiny_qwen2_dir: Path) -> list[dict]:
    """The harness on both tiny architectures, with a handful of items per suite."""
    return [evaluate_checkpoint(d, sizes=TINY, batch_size=4) for d in
            (tiny_llama_dir, tiny_qwen2_dir)]


def test_harness_runs_on_tiny_llama_and_qwen2(tiny_results: list[dict]) -> None:
    for result in tiny_results:
        _assert_keys(result)
        assert result["suites"]["open_book"]["n"] == 3
        assert result["suites"]["reasoning"]["tasks"]["syllogism"]["n"] == 4
        assert 0 < result["non_embedding_params"] < result["params"]
        assert result["checkpoint_bytes"] > 4 * result["params"] * 0.9


def test_compare_reuses_earlier_reports_in_one_table(tiny_results: list[dict],
                                                     tmp_path: Path) -> None:
    for i, result in enumerate(tiny_results):
        write_report([result], tmp_path / f"run{i}")
    out = tmp_path / "both"
    done = run_cogcore("eval", "--model", str(tmp_path / "run0"), "--compare",
                       str(tmp_path / "run1"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "eval.json").read_text())
    assert report["name"] == tiny_results[0]["name"]
    assert [c["name"] for c in report["compare"]] == [tiny_results[1]["name"]]
    header = (out / "eval.md").read_text().split("## Headline")[1].splitlines()[2]
    assert tiny_results[0]["name"] in header and tiny_results[1]["name"] in header
    assert (out / "eval-headline.png").stat().st_size > 0


def test_eval_rejects_a_directory_that_is_no_checkpoint(tmp_path: Path) -> None:
    done = run_cogcore("eval", "--model", str(tmp_path), "--out", str(tmp_path / "out"))
    assert done.returncode == 1 and "neither a checkpoint" in " ".join(done.stderr.split())


@pytest.mark.real_model
def test_quick_eval_on_the_default_base(default_base_dir: Path, tmp_path: Path) -> None:
    done = run_cogcore("eval", "--model", str(default_base_dir), "--quick", "--out",
                       str(tmp_path))
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "eval.json").read_text())
    _assert_keys(result)
    # The reader prompt is what makes the base model read: far above its closed-book recall.
    assert result["suites"]["open_book"]["accuracy"] > 0.6
    assert result["suites"]["fictional"]["accuracy"] > 0.6


def test_evaluation_is_deterministic(tiny_results: list[dict], tiny_llama_dir: Path) -> None:
    again = evaluate_checkpoint(tiny_llama_dir, sizes=TINY, batch_size=4)
    assert again["suites"] == tiny_results[0]["suites"]
