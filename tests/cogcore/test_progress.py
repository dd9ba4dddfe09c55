"""Progress off a terminal: lines in the log at the first item, when due, and at the last."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from cogcore import progress


def _log_console() -> Console:
    return Console(file=io.StringIO(), force_terminal=False)


def test_track_yields_every_item_and_logs_first_and_last(capsys: pytest.CaptureFixture) -> None:
    items = list(progress.track(range(5), "refit", every_seconds=3600, console=_log_console()))
    assert items == [0, 1, 2, 3, 4]
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == ["refit: 1/5", "refit: 5/5"]


def test_lines_are_first_last_and_every_interval(capsys: pytest.CaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 1.0, 2.0, 40.0, 41.0, 90.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    list(progress.track(iter(range(5)), "distilling", total=5, console=_log_console()))
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["distilling: 1/5 (1 s)", "distilling: 3/5 (40 s)",
                     "distilling: 5/5 (90 s)"]


def test_unknown_total_and_callback_form(capsys: pytest.CaptureFixture) -> None:
    list(progress.track((i for i in range(2)), "scoring", console=_log_console()))
    assert capsys.readouterr().err.splitlines()[0].startswith("scoring: 1 (")
    advance = progress.progress_lines("closed_book heldout", 300, every_seconds=3600)
    advance(32)
    advance(268)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == ["closed_book heldout: 32/300",
                                                       "closed_book heldout: 300/300"]
