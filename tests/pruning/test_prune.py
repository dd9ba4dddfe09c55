"""Every pruning method on the tiny Llama and Qwen2: smaller, and stock transformers loads it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from cogcore.checkpoint import save_checkpoint
from pruning.calibration import CalibrationSets
from pruning.kfac import KfacConfig
from pruning.methods import method_names, parse_method
from pruning.pipeline import PruneConfig, PruneConfigError, prune
from tests.pruning.tiny import load_fp32, one_thread  # noqa: F401 (autouse fixture)


@pytest.mark.parametrize("method", method_names())
def test_every_method_prunes_and_reloads(
    method: str, tiny_checkpoint: Path, tiny_sets: CalibrationSets, tmp_path: Path
) -> None:
    base = load_fp32(tiny_checkpoint)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    width = None if parse_method(method).scorer is None else 96  # an edit alone keeps the width
    result = prune(base, tiny_sets, PruneConfig(method=method, width=width, heal_steps=1))
    assert all(torch.equal(v, before[k]) for k, v in base.state_dict().items()), "base changed"
    save_checkpoint(result.model, AutoTokenizer.from_pretrained(tiny_checkpoint), tmp_path)
    core = load_fp32(tmp_path)
    assert core.config.intermediate_size == (width or 128)
    if width is None:
        assert result.params_after == result.params_before
    else:
        assert result.params_after < result.params_before
        assert len(result.details["refit_residual"]) == core.config.num_hidden_layers
    ids = torch.randint(0, core.config.vocab_size, (1, 12))
    with torch.no_grad():
        assert torch.isfinite(core(ids).logits).all()


def test_config_errors_are_explicit(tiny_llama_dir: Path, tiny_sets: CalibrationSets) -> None:
    base = load_fp32(tiny_llama_dir)
    with pytest.raises(PruneConfigError, match="unknown method"):
        prune(base, tiny_sets, PruneConfig(method="nope", width=64))
    with pytest.raises(PruneConfigError, match="kfac edits without cutting"):
        prune(base, tiny_sets, PruneConfig(method="kfac", width=64))
    with pytest.raises(PruneConfigError, match="needs a width"):
        prune(base, tiny_sets, PruneConfig(method="random"))
    with pytest.raises(PruneConfigError, match=r"K-FAC layers \[7\] are outside 0..1"):
        prune(base, tiny_sets, PruneConfig(method="kfac", kfac=KfacConfig(layers=(1, 7))))
    with pytest.raises(PruneConfigError, match="K-FAC projections must be among"):
        prune(base, tiny_sets, PruneConfig(method="kfac", kfac=KfacConfig(projections=("q",))))
    with pytest.raises(PruneConfigError, match=r"kept mass 0.0 is outside"):
        prune(base, tiny_sets, PruneConfig(method="kfac", kfac=KfacConfig(kept_mass=0.0)))
    with pytest.raises(PruneConfigError, match="refit target 'logits'"):
        prune(base, tiny_sets, PruneConfig(method="random", width=64, refit_target="logits"))
    with pytest.raises(PruneConfigError, match="residual refit target needs the sequential"):
        prune(base, tiny_sets, PruneConfig(method="random", width=64, refit_target="residual",
                                           sequential_refit=False))


def test_kfac_edits_only_the_chosen_layers_and_projections(
    tiny_llama_dir: Path, tiny_sets: CalibrationSets
) -> None:
    base = load_fp32(tiny_llama_dir)
    cfg = PruneConfig(method="kfac", kfac=KfacConfig(kept_mass=0.5, layers=(1,),
                                                     projections=("up_proj",)))
    core = prune(base, tiny_sets, cfg).model
    changed = {name for name, value in core.state_dict().items()
               if not torch.equal(value, base.state_dict()[name])}
    assert changed == {"model.layers.1.mlp.up_proj.weight"}
