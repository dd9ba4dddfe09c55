"""`benchmarks/core_frontier.py`: forgetting against reading from written reports, the Pareto
points marked, partial reading flagged and points without closed-book listed, not plotted."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from evaluation.compare import bits
from tests.conftest import benchmark_module

frontier = benchmark_module("core_frontier")


def _entry(ratio: float, low: float | None = None, high: float | None = None) -> dict:
    return {"ratio": ratio, "low": ratio - 0.05 if low is None else low,
            "high": ratio + 0.05 if high is None else high, "base": 0.5, "model": 0.5 * ratio,
            "n": 200}


def _report(path: Path, closed_book: float | None, reading: dict[str, float],
            **others: float) -> Path:
    against = {label: _entry(r) for label, r in reading.items()}
    if closed_book is not None:
        against["closed-book heldout"] = _entry(closed_book)
    against.update({label.replace("_", " "): _entry(r) for label, r in others.items()})
    path.write_text(json.dumps({"core": path.stem, "against_base": against}))
    return path


FULL_READING = {"open-book": 0.9, "counterfactual faithfulness": 0.8, "fictional": 1.0}


def test_pareto_marks_the_dominated_point(tmp_path: Path) -> None:
    good = _report(tmp_path / "good.json", 0.2, FULL_READING)
    # Remembers more and reads worse than `good`: dominated.
    worse = _report(tmp_path / "worse.json", 0.3,
                    {"open-book": 0.8, "counterfactual faithfulness": 0.7, "fictional": 0.9})
    # Forgets less than `good` but reads better: on the front too.
    reader = _report(tmp_path / "reader.json", 0.5,
                     {"open-book": 1.0, "counterfactual faithfulness": 1.0, "fictional": 1.0})

    result = frontier.frontier([f"good={good}", f"worse={worse}", f"reader={reader}"],
                               tmp_path / "out" / "frontier", "cmd")

    points = result["points"]
    assert result["pareto"] == ["good", "reader"]  # ordered by closed-book recall
    assert [points[k]["pareto"] for k in ("good", "worse", "reader")] == [True, False, True]
    assert points["good"]["reading"]["ratio"] == pytest.approx(0.9)
    # The y interval is the envelope of the three suites' intervals.
    assert points["good"]["reading"]["low"] == pytest.approx(0.75)
    assert points["good"]["reading"]["high"] == pytest.approx(1.05)
    assert not points["good"]["in_target"]  # reading 0.9 < 0.95
    assert points["reader"]["in_target"] is False  # closed-book 0.5 > 0.35
    written = json.loads((tmp_path / "out" / "frontier.json").read_text())
    assert written["pareto"] == ["good", "reader"]
    markdown = (tmp_path / "out" / "frontier.md").read_text()
    assert "| worse | 0.300 [0.25, 0.35] |" in markdown
    assert markdown.splitlines()[[i for i, line in enumerate(markdown.splitlines())
                                  if line.startswith("| good |")][0]].endswith("| yes | no |")
    png = tmp_path / "out" / "frontier.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_equal_points_do_not_dominate_each_other() -> None:
    rows = {k: frontier.point({"closed-book heldout": _entry(0.2),
                               **{r: _entry(0.96) for r in FULL_READING}}, k) for k in "ab"}
    assert frontier.mark_pareto(rows) == ["a", "b"]
    assert rows["a"]["in_target"] and rows["b"]["in_target"]


def test_a_report_without_fictional_is_plotted_with_the_mean_of_the_rest(tmp_path: Path) -> None:
    two = _report(tmp_path / "two.json", 0.25,
                  {"open-book": 0.9, "counterfactual faithfulness": 0.7},
                  perplexity_per_word=2.0)

    result = frontier.frontier([f"two={two}"], tmp_path / "frontier", "cmd")

    point = result["points"]["two"]
    assert point["plotted"]
    assert point["reading"]["ratio"] == pytest.approx(0.8)
    assert point["reading"]["partial"] is True
    assert point["reading"]["of"] == ["open-book", "counterfactual faithfulness"]
    assert point["missing"] == ["fictional"]
    assert point["figures"]["perplexity per word"]["ratio"] == pytest.approx(2.0)
    row = next(line for line in (tmp_path / "frontier.md").read_text().splitlines()
               if line.startswith("| two |"))
    assert "0.800 [0.65, 0.95] (mean of 2: no fictional)" in row
    assert "| 2.000 [1.95, 2.05] |" in row


def test_a_report_without_closed_book_is_listed_not_plotted(tmp_path: Path) -> None:
    plotted = _report(tmp_path / "plotted.json", 0.2, FULL_READING)
    blind = _report(tmp_path / "blind.json", None, FULL_READING)

    result = frontier.frontier([f"plotted={plotted}", f"blind={blind}"],
                               tmp_path / "frontier", "cmd")

    assert result["points"]["blind"]["plotted"] is False
    assert "pareto" not in result["points"]["blind"]
    assert result["pareto"] == ["plotted"]
    markdown = (tmp_path / "frontier.md").read_text()
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in table[2:]] == ["| plotted"]
    unplotted = markdown.split("## Not measured (not plotted)")[1]
    assert "- blind: no closed-book heldout; has open-book 0.900 [0.85, 0.95]" in unplotted


def test_an_unpaired_figure_counts_as_not_measured() -> None:
    nan = {"ratio": math.nan, "low": math.nan, "high": math.nan, "unpaired": "different items"}
    point = frontier.point({"closed-book heldout": nan,
                            **{r: _entry(0.9) for r in FULL_READING}}, "src")
    assert point["plotted"] is False
    assert point["missing"] == ["closed-book heldout"]


def _suites(heldout: str, reading: str) -> dict:
    def acc(correct: str) -> dict:
        return {"accuracy": correct.count("1") / len(correct), "items": "same",
                "correct": correct}

    return {"closed_book": {"heldout": acc(heldout)}, "open_book": acc(reading),
            "counterfactual": acc(reading), "fictional": acc(reading)}


def test_an_eval_json_pairs_the_base_with_the_chosen_compared_model(tmp_path: Path) -> None:
    full = {"model": "base", "suites": _suites(bits([1] * 10), bits([1] * 10)),
            "compare": [{"name": "first", "model": "m0",
                         "suites": _suites(bits([1] * 2 + [0] * 8), bits([1] * 9 + [0]))},
                        {"name": "second", "model": "m1",
                         "suites": _suites(bits([1] * 5 + [0] * 5), bits([1] * 10))}]}
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(full))

    result = frontier.frontier([f"first={path}", f"second={path}#1"], tmp_path / "f", "cmd")

    first, second = result["points"]["first"], result["points"]["second"]
    assert first["figures"]["closed-book heldout"]["ratio"] == pytest.approx(0.2)
    assert first["reading"]["ratio"] == pytest.approx(0.9)
    assert second["figures"]["closed-book heldout"]["ratio"] == pytest.approx(0.5)
    assert second["reading"]["ratio"] == pytest.approx(1.0)
    assert "#1 (second against base)" in second["source"]
    assert result["pareto"] == ["first", "second"]
