"""`cogcore prune` and `cogcore prune sweep` end to end on a tiny checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from pruning.methods import EDITS, SCORERS, sweep_methods
from tests.conftest import run_cogcore

ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # tiny models lose to thread contention on 2 cores


def test_prune_writes_checkpoint_and_report(tiny_qwen2_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "core"
    result = run_cogcore(
        "prune", "--base", str(tiny_qwen2_dir), "--method", "contrastive", "--sparsity", "0.25",
        "--vocab-size", "300", "--vocab-selection", "rank", "--calibration", "3",
        "--eval", "quick", "--device", "cpu", "--out", str(out),
        env=ONE_THREAD,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "core_report.json").read_text())
    assert report["width"] == 96
    assert report["params"]["core"] < report["params"]["base"]
    assert set(report["base_figures"]) == set(report["core_figures"])
    assert "counterfactual >= base" in report["done_when"]
    assert "| held-out closed-book |" in (out / "core_report.md").read_text()
    config = AutoModelForCausalLM.from_pretrained(out).config
    assert (config.intermediate_size, config.vocab_size) == (96, 300)
    assert len(AutoTokenizer.from_pretrained(out)) == 300


def test_sweep_writes_table_and_plot(tiny_llama_dir: Path, tmp_path: Path) -> None:
    result = run_cogcore(
        "prune", "sweep", "--base", str(tiny_llama_dir), "--methods", "random,magnitude",
        "--sparsities", "0.5", "--heal-steps", "0,2", "--kfac-masses", "0.5", "--kfac-layers", "1",
        "--kfac-projections", "up,down", "--calibration", "2", "--eval", "quick",
        "--device", "cpu", "--out", str(tmp_path), env=ONE_THREAD,
    )
    assert result.returncode == 0, result.stderr
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    assert [run["name"] for run in sweep["runs"]] == [
        "random s=0.5", "magnitude s=0.5", "random s=0.5 heal=2", "magnitude s=0.5 heal=2",
        "kfac mass=0.5 layers=1",
    ]
    assert [run["config"]["heal_steps"] for run in sweep["runs"]] == [0, 0, 2, 2, 0]
    assert sweep["runs"][4]["config"]["kfac"] == {
        "kept_mass": 0.5, "layers": [1], "projections": ["up_proj", "down_proj"]
    }
    assert (tmp_path / "sweep.png").stat().st_size > 0
    assert "random s=0.5" in (tmp_path / "sweep.md").read_text()


def test_bad_arguments_are_one_line(tiny_llama_dir: Path, tmp_path: Path) -> None:
    result = run_cogcore("prune", "--base", str(tiny_llama_dir), "--width", "64",
                         "--sparsity", "0.5", "--out", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == "error: give --width or --sparsity, not both"
    result = run_cogcore("prune", "--base", str(tiny_llama_dir), "--width", "64",
                         "--vocab-size", "20", "--eval", "none", "--out", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith("error: vocabulary size 20 must be above 259")
    result = run_cogcore("prune", "--base", str(tiny_llama_dir), "--width", "64",
                         "--adapt-embeddings-steps", "2", "--eval", "none", "--out", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (  # after the checkpoint's loading bar
        "error: adapting the embeddings needs a vocabulary trim (a vocab size)")
    result = run_cogcore("prune", "--base", str(tiny_llama_dir), "--method", "kfac",
                         "--kfac-layers", "1-x", "--out", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith("error: --kfac-layers takes 'all' or indices and ranges")
    result = run_cogcore("prune", "--base", str(tiny_llama_dir), "--method", "kfac+nope",
                         "--width", "64", "--out", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith("error: unknown method 'kfac+nope'; choose from contrastive")
    result = run_cogcore("prune", "sweep", "--base", str(tiny_llama_dir), "--methods",
                         "random,kfac", "--out", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == "error: --methods takes methods that cut; kfac only edits"


def test_help_lists_the_registered_methods() -> None:
    wide = {"COLUMNS": "300"}  # so that no name is split by the help's line wrapping
    result = run_cogcore("prune", "--help", env=wide)
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in (*SCORERS, *EDITS))
    result = run_cogcore("prune", "sweep", "--help", env=wide)
    assert f"[default: {','.join(sweep_methods())}]" in result.stdout
