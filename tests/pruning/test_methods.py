"""The method registry: names parse one way, unknown ones are refused, a new scorer just works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from pruning.calibration import CalibrationSets
from pruning.compact import intermediate_size, mlp_modules
from pruning.methods import (
    EDITS,
    SCORERS,
    Deferred,
    Method,
    PruneConfigError,
    method_names,
    parse_method,
    sweep_methods,
)
from pruning.pipeline import PruneConfig, prune
from tests.conftest import REPO
from tests.pruning.tiny import load_fp32, one_thread  # noqa: F401 (autouse fixture)

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def test_every_registered_name_and_combination_parses() -> None:
    names = method_names()
    assert len(names) == len(set(names)) == len(SCORERS) + len(EDITS) * (1 + len(SCORERS))
    for name in names:  # each parses back to the parts it is written with
        method = parse_method(name)
        assert "+".join(p for p in (method.edit, method.scorer) if p) == name
    assert parse_method("contrastive") == Method(None, "contrastive")
    assert parse_method("kfac") == Method("kfac", None)
    assert parse_method("kfac+wanda") == Method("kfac", "wanda")


def test_the_sweep_default_is_unchanged_and_cuts() -> None:
    assert sweep_methods() == ("contrastive", "random", "magnitude", "wanda", "kfac+contrastive")
    assert all(parse_method(name).scorer for name in sweep_methods())


@pytest.mark.parametrize(
    "name", ["nope", "", "Random", "kfac+", "+wanda", "wanda+kfac", "kfac+kfac", "kfac+nope",
             "kfac+random+wanda"])
def test_unknown_names_are_refused_with_the_choices(name: str) -> None:
    with pytest.raises(PruneConfigError) as error:
        parse_method(name)
    message = str(error.value)
    assert message.startswith(f"unknown method {name!r}; choose from ")
    assert message.endswith(", ".join(method_names()))


def test_registered_functions_exist() -> None:
    edits = [function for edit in EDITS.values() for function in (edit.apply, edit.check)]
    for function in [*SCORERS.values(), *edits]:
        assert isinstance(function, Deferred) and callable(function.resolve()), function


def test_the_registry_imports_without_torch() -> None:
    # The command line builds its help from the registry; `cogcore --help` must stay instant.
    code = "import sys, pruning.methods; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def keep_last(
    model: PreTrainedModel, data: CalibrationSets, cfg: PruneConfig
) -> list[torch.Tensor]:
    """A scorer rising with the neuron index: the cut keeps each layer's last neurons."""
    return [torch.arange(intermediate_size(model), dtype=torch.float32) for _ in mlp_modules(model)]


@pytest.mark.parametrize("method", ["last", "kfac+last"])
def test_a_registered_scorer_runs_through_prune(
    method: str, monkeypatch: pytest.MonkeyPatch, tiny_llama_dir: Path, tiny_sets: CalibrationSets
) -> None:
    monkeypatch.setitem(SCORERS, "last", keep_last)
    assert method in method_names()
    result = prune(load_fp32(tiny_llama_dir), tiny_sets, PruneConfig(method=method, width=96))
    assert result.model.config.intermediate_size == 96
    assert result.keep is not None
    assert all(torch.equal(kept, torch.arange(32, 128)) for kept in result.keep.values())
    assert ("kfac_kept_components" in result.details) == method.startswith("kfac+")
