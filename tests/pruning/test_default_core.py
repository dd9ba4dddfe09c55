"""The default core is built once, replaced whole, and rebuilt when its recipe or base changes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pruning import default_core
from pruning.runs import RunSettings


@pytest.fixture
def fake_prune(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """`prune_job` replaced by one that writes a checkpoint stub and its report: logic only."""
    built: list[Path] = []

    def prune_job(settings: RunSettings, cfg, out: Path) -> dict:
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")
        report = {"config": cfg.as_dict(), "base": str(settings.base), "out": str(out)}
        (out / "core_report.json").write_text(json.dumps(report))
        built.append(out)
        return report

    monkeypatch.setattr(default_core, "prune_job", prune_job)
    return built


def test_built_once_then_current(tmp_path: Path, fake_prune: list[Path]) -> None:
    settings = RunSettings(tmp_path / "base", "cpu", 4, None)
    out = tmp_path / "core"
    assert default_core.build_default_core(settings, out)
    assert fake_prune == [tmp_path / "core.partial"] and not fake_prune[0].exists()
    assert json.loads((out / "core_report.json").read_text())["out"] == str(out)
    assert not default_core.build_default_core(settings, out)
    assert default_core.build_default_core(settings, out, force=True)
    assert len(fake_prune) == 2


def test_another_base_or_recipe_rebuilds(tmp_path: Path, fake_prune: list[Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "core"
    default_core.build_default_core(RunSettings(tmp_path / "a", "cpu", 4, None), out)
    assert default_core.build_default_core(RunSettings(tmp_path / "b", "cpu", 4, None), out)
    monkeypatch.setattr(default_core, "DEFAULT_VOCAB", default_core.DEFAULT_VOCAB // 2)
    assert default_core.build_default_core(RunSettings(tmp_path / "b", "cpu", 4, None), out)
    assert len(fake_prune) == 3


def test_a_half_written_core_is_not_current(tmp_path: Path) -> None:
    out = tmp_path / "core"
    out.mkdir()
    (out / "config.json").write_text("{}")
    assert not default_core.is_current(out, tmp_path, default_core.default_config())


def test_a_core_built_before_an_option_existed_is_current_at_its_default(
        tmp_path: Path, fake_prune: list[Path]) -> None:
    settings = RunSettings(tmp_path / "base", "cpu", 4, None)
    out = tmp_path / "core"
    default_core.build_default_core(settings, out)
    report = json.loads((out / "core_report.json").read_text())
    del report["config"]["adapt_embeddings_steps"]  # as recorded before the option was added
    del report["config"]["contrastive"]["eps"]
    (out / "core_report.json").write_text(json.dumps(report))
    assert default_core.is_current(out, settings.base, default_core.default_config())
    changed = replace(default_core.default_config(), heal_reading_steps=5)
    assert not default_core.is_current(out, settings.base, changed)
    report["config"]["unknown_option"] = 1  # a field this code does not know: another recipe
    (out / "core_report.json").write_text(json.dumps(report))
    assert not default_core.is_current(out, settings.base, default_core.default_config())
