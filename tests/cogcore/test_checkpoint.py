"""Base import and checkpoint validation: errors are one line, imports are idempotent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cogcore.checkpoint import CheckpointError, import_gguf, validate_checkpoint
from tests.conftest import run_cogcore


def test_validate_accepts_tiny_checkpoints(tiny_checkpoint: Path) -> None:
    info = validate_checkpoint(tiny_checkpoint)
    assert info.architecture in {"LlamaForCausalLM", "Qwen2ForCausalLM"}
    assert 100_000 < info.params < 200_000


def test_validate_rejects_directory_without_config(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no config.json"):
        validate_checkpoint(tmp_path)


def test_import_rejects_corrupt_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(CheckpointError, match="cannot read"):
        import_gguf(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.gguf"], "staging dir left behind"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gguf", "/nonexistent/model.gguf"], "does not exist"),
        (["--gguf", "pyproject.toml"], "not a GGUF file"),
        (["--from", "tests"], "no config.json"),
    ],
)
def test_cli_errors_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_cogcore("base", "import", "--out", str(tmp_path / "out"), *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_cli_from_accepts_valid_directory(tiny_llama_dir: Path) -> None:
    result = run_cogcore("base", "import", "--from", str(tiny_llama_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tiny_llama_dir)


@pytest.mark.real_model
def test_default_base_is_a_clean_float_checkpoint(default_base_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = json.loads((default_base_dir / "config.json").read_text())
    assert "quantization_config" not in config
    model = AutoModelForCausalLM.from_pretrained(default_base_dir, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(default_base_dir, local_files_only=True)
    params = sum(p.numel() for p in model.parameters())
    assert round(params / 1e6, 1) == 134.5
    assert tokenizer.chat_template
    assert tokenizer.model_max_length == config["max_position_embeddings"]


@pytest.mark.real_model
def test_second_import_changes_nothing(default_base_dir: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in default_base_dir.iterdir()}
    result = run_cogcore("base", "import")
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stderr
    assert {p.name: p.stat().st_mtime_ns for p in default_base_dir.iterdir()} == before


@pytest.mark.real_model
def test_generate_knows_the_capital_of_france(default_base_dir: Path) -> None:
    result = run_cogcore(
        "generate", "--model", str(default_base_dir), "What is the capital of France?"
    )
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
