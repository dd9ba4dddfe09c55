"""`benchmarks/reading_heal.py report`: a healed core's partial results paired with the full
run's base and default core, the default's reasoning headline over the same tasks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import benchmark_module

REPO = Path(__file__).resolve().parents[2]


def _reasoning(correct: dict[str, str]) -> dict:
    tasks = {t: {"accuracy": bits.count("1") / len(bits), "n": len(bits)}
             for t, bits in correct.items()}
    return {"headline_tasks": list(correct), "tasks": tasks, "correct": correct}


def _suites(open_book: str, reasoning: dict[str, str]) -> dict:
    return {"open_book": {"accuracy": open_book.count("1") / len(open_book), "n": len(open_book),
                          "items": "same", "correct": open_book},
            "reasoning": _reasoning(reasoning)}


@pytest.mark.parametrize(("measured_tasks", "runs"), [
    (("addition",), 1), (("addition", "next_number"), 1),
    (("addition", "next_number"), 2),  # each task in its own partial run: merged
])
def test_the_report_pairs_the_healed_core_with_the_base_and_the_default(
    tmp_path: Path, measured_tasks: tuple[str, ...], runs: int,
) -> None:
    base_bits = {"addition": "1111111100", "next_number": "1111111111"}
    default_bits = {"addition": "1111000000", "next_number": "1111111111"}
    healed_bits = {"addition": "1111110000", "next_number": "1111111110"}
    full = {"model": "base", "suites": _suites("1111111111", base_bits),
            "compare": [{"model": "default", "suites": _suites("1111100000", default_bits)}]}
    (tmp_path / "eval.json").write_text(json.dumps(full))
    parts = [measured_tasks] if runs == 1 else [(t,) for t in measured_tasks]
    results = []
    for k, tasks in enumerate(parts):
        healed = {"model": "healed", "seconds": 1.0,
                  "suites": _suites("1111111100", {t: healed_bits[t] for t in tasks})}
        results.append(str(tmp_path / f"healed{k}.json"))
        Path(results[-1]).write_text(json.dumps(healed))
    core = tmp_path / "core"
    core.mkdir()
    (core / "core_report.json").write_text(json.dumps(
        {"command": "heal", "config": {"heal_reading_lr": 3e-5}, "seconds": {}, "details": {}}))

    done = subprocess.run(
        [sys.executable, "benchmarks/reading_heal.py", "report", "--eval",
         str(tmp_path / "eval.json"), "--core", str(core), "--out", str(tmp_path / "r.json"),
         *results], capture_output=True, text=True, cwd=REPO, check=False)

    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["against_base"]["open-book"]["ratio"] == pytest.approx(0.8)
    assert report["default_against_base"]["open-book"]["ratio"] == pytest.approx(0.5)
    assert report["against_default"]["open-book"]["ratio"] == pytest.approx(1.6)
    # The default's headline counts only the tasks the healed core was measured on.
    headline = "reasoning (headline tasks)"
    right = {name: sum(bits[t].count("1") for t in measured_tasks)
             for name, bits in (("base", base_bits), ("default", default_bits),
                                ("healed", healed_bits))}
    assert report["default_against_base"][headline]["ratio"] == pytest.approx(
        right["default"] / right["base"])
    assert report["against_base"][headline]["ratio"] == pytest.approx(
        right["healed"] / right["base"])
    assert report["healing"]["config"] == {"heal_reading_lr": 3e-5}
    assert sorted(report["evaluated"]["suites"]["reasoning"]["tasks"]) == sorted(measured_tasks)
    assert "open-book: base 1.000, default 0.500, healed 0.800" in done.stdout


def test_a_reply_ends_its_turn_at_its_first_end_token() -> None:
    turn_length = benchmark_module("reading_heal").turn_length
    assert turn_length([5, 6, 2, 2, 2], 2) == 3  # then padded with the same id
    assert turn_length([2], 2) == 1
    assert turn_length([5, 6, 7], 2) is None


def test_pair_compares_two_reports_item_by_item_with_the_reference_extras(
        tmp_path: Path) -> None:
    reference = {"evaluated": {"model": "F", "suites": _suites("1111100000", {})}}
    del reference["evaluated"]["suites"]["reasoning"]  # measured later, in a partial run
    model = {"evaluated": {"model": "H", "suites": _suites("1111111100", {"addition": "1110"})}}
    extra = {"model": "F", "suites": {"reasoning": _reasoning({"addition": "1100"})}}
    for name, data in (("F", reference), ("H", model), ("extra", extra)):
        (tmp_path / f"{name}.json").write_text(json.dumps(data))

    done = subprocess.run(
        [sys.executable, "benchmarks/reading_heal.py", "pair", str(tmp_path / "H.json"),
         "--reference", str(tmp_path / "F.json"), "--extra", str(tmp_path / "extra.json"),
         "--out", str(tmp_path / "pair.json")],
        capture_output=True, text=True, cwd=REPO, check=False)

    assert done.returncode == 0, done.stderr
    ratios = json.loads((tmp_path / "pair.json").read_text())["ratios"]
    assert ratios["open-book"]["ratio"] == pytest.approx(1.6)
    assert ratios["reasoning: addition"]["ratio"] == pytest.approx(1.5)  # the extra's suite
    assert "open-book: 0.500 -> 0.800; 1.600" in done.stdout
