"""Shared fixtures: tiny random checkpoints and the real embedded default base model."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.tiny_models import save_tiny_checkpoint

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent


def benchmark_module(name: str) -> ModuleType:
    """`benchmarks/NAME.py` imported as a module (the benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark",
                                                  REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama checkpoint (multi-head attention, tied embeddings)."""
    return save_tiny_checkpoint("llama", tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 checkpoint (grouped-query attention, attention bias)."""
    return save_tiny_checkpoint("qwen2", tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(params=["llama", "qwen2"])
def tiny_checkpoint(request: pytest.FixtureRequest) -> Path:
    """Each tiny architecture in turn."""
    return request.getfixturevalue(f"tiny_{request.param}_dir")


def run_cogcore(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the real `cogcore` console command as a user would."""
    exe = Path(sys.executable).with_name("cogcore")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, cwd=REPO,
        env={**os.environ, **(env or {})}, timeout=900,
    )


@pytest.fixture(scope="session")
def default_base_dir() -> Path:
    """The real embedded default base model, imported once under artifacts/ (cached)."""
    result = run_cogcore("base", "import")
    assert result.returncode == 0, result.stderr
    return REPO / result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def default_kb_dir() -> Path:
    """The real default knowledge base, built once under artifacts/ (cached)."""
    result = run_cogcore("kb", "build")
    assert result.returncode == 0, result.stderr
    return REPO / "artifacts" / "kb" / "default"


@pytest.fixture(scope="session")
def served_model_dir(request: pytest.FixtureRequest) -> Path:
    """The real model that server tests serve: the default core when it is built (it takes
    10+ minutes, so a clean clone has none), else the imported default base (cached)."""
    core = REPO / "artifacts" / "core" / "default"
    if (core / "config.json").exists():
        return core
    return request.getfixturevalue("default_base_dir")
