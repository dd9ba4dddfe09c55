"""Neuron scores: per layer, one number per MLP neuron, higher meaning keep.

`contrastive` keeps the neurons that matter to reading, reasoning and general text relative to
closed-book facts; `random`, `magnitude` and `wanda` are the controls that ignore facts. The
`*_scorer` functions are what pruning/methods.py registers: one signature for every scorer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch

from pruning.attribution import NeuronStats, collect_neuron_stats
from pruning.calibration import GENERAL
from pruning.compact import mlp_modules

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from pruning.calibration import CalibrationSets
    from pruning.pipeline import PruneConfig

Attribution = Literal["grad_x_act", "activation"]


@dataclass(frozen=True)
class ContrastiveConfig:
    """How fact and retain attributions combine into one keep score."""

    attribution: Attribution = "grad_x_act"
    combine: Literal["ratio", "difference"] = "ratio"
    retain_reduce: Literal["mean", "max"] = "mean"
    retain_weight: float = 1.0  # alpha in fact - alpha * retain
    eps: float = 0.05  # added to the normalized retain score so ratios stay finite


def _pick(stats: NeuronStats, attribution: Attribution) -> list[torch.Tensor]:
    return stats.attribution if attribution == "grad_x_act" else stats.activation


def _normalized(values: torch.Tensor) -> torch.Tensor:
    # Per-layer normalization: layers (and retain sets) differ in scale by orders of magnitude.
    return values / values.mean().clamp_min(1e-12)


def score_contrastive(
    fact: NeuronStats, retain: Mapping[str, NeuronStats], cfg: ContrastiveConfig
) -> list[torch.Tensor]:
    """Keep score = minus how much more a neuron serves facts than the retain sets."""
    if not retain:
        raise ValueError("contrastive scoring needs at least one retain set")
    fact_values = _pick(fact, cfg.attribution)
    scores = []
    for layer, f in enumerate(fact_values):
        per_set = torch.stack(
            [_normalized(_pick(stats, cfg.attribution)[layer]) for stats in retain.values()]
        )
        r = per_set.max(0).values if cfg.retain_reduce == "max" else per_set.mean(0)
        f = _normalized(f)
        forget = f / (r + cfg.eps) if cfg.combine == "ratio" else f - cfg.retain_weight * r
        scores.append(-forget.float())
    return scores


def score_random(model: PreTrainedModel, seed: int = 0) -> list[torch.Tensor]:
    """A seeded random score: the size-only control."""
    generator = torch.Generator().manual_seed(seed)
    width = mlp_modules(model)[0].down_proj.in_features
    return [torch.rand(width, generator=generator) for _ in mlp_modules(model)]


@torch.no_grad()
def score_magnitude(model: PreTrainedModel) -> list[torch.Tensor]:
    """The L2 norm of each neuron's weights (gate row, up row, down column together)."""
    return [
        (
            mlp.gate_proj.weight.float().pow(2).sum(1)
            + mlp.up_proj.weight.float().pow(2).sum(1)
            + mlp.down_proj.weight.float().pow(2).sum(0)
        ).sqrt().cpu()
        for mlp in mlp_modules(model)
    ]


@torch.no_grad()
def score_wanda(model: PreTrainedModel, general: NeuronStats) -> list[torch.Tensor]:
    """Structured Wanda: ||X_j|| (activation norm on general text) times ||W_down[:, j]||_1."""
    return [
        (mlp.down_proj.weight.float().abs().sum(0).cpu() * general.sq_norm[layer].sqrt()).float()
        for layer, mlp in enumerate(mlp_modules(model))
    ]


def contrastive_scorer(
    model: PreTrainedModel, data: CalibrationSets, cfg: PruneConfig
) -> list[torch.Tensor]:
    """`score_contrastive` on attributions collected from the fact and every retain set."""
    fact = collect_neuron_stats(model, data.facts, label="facts")
    retain = {name: collect_neuron_stats(model, batches, label=name)
              for name, batches in data.retain.items()}
    return score_contrastive(fact, retain, cfg.contrastive)


def random_scorer(
    model: PreTrainedModel, data: CalibrationSets, cfg: PruneConfig
) -> list[torch.Tensor]:
    """`score_random` seeded by `cfg.seed`."""
    return score_random(model, cfg.seed)


def magnitude_scorer(
    model: PreTrainedModel, data: CalibrationSets, cfg: PruneConfig
) -> list[torch.Tensor]:
    """`score_magnitude`: weights only."""
    return score_magnitude(model)


def wanda_scorer(
    model: PreTrainedModel, data: CalibrationSets, cfg: PruneConfig
) -> list[torch.Tensor]:
    """`score_wanda` with activation norms on the general text (every retain set if absent)."""
    general = data.retain.get(GENERAL) or data.retain_batches()
    return score_wanda(model, collect_neuron_stats(model, general, gradients=False,
                                                   label=GENERAL))
