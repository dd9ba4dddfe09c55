"""The curvature edit of Goodfire (arXiv 2510.24256): keep high-curvature weight components.

Per MLP projection W (out x in), K-FAC approximates the loss curvature by A ⊗ G with
A = E[a aᵀ] over the projection's inputs and G = E[g gᵀ] over the gradients at its outputs.
In the eigenbases of A and G, component (i, j) of W has curvature λ_G[i]·μ_A[j]; the components
holding the top `kept_mass` of total curvature are kept and W is rebuilt from them. Directions of
low curvature are the ones memorization uses; the edit keeps every shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from cogcore.progress import track
from pruning.calibration import Batch, answer_loss, iterate
from pruning.compact import mlp_modules

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from pruning.calibration import CalibrationSets
    from pruning.pipeline import PruneConfig

PROJECTIONS = ("gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class KfacConfig:
    """Which projections of which layers to edit, and the curvature mass each keeps."""

    kept_mass: float = 0.8
    layers: tuple[int, ...] | None = None  # None: every layer
    projections: tuple[str, ...] = PROJECTIONS

    def check(self, layer_count: int) -> None:
        """Raise `ValueError` unless this edit fits a model of `layer_count` decoder layers."""
        outside = sorted(i for i in self.layers or () if not 0 <= i < layer_count)
        if outside:
            raise ValueError(f"K-FAC layers {outside} are outside 0..{layer_count - 1}")
        if not self.projections or set(self.projections) - set(PROJECTIONS):
            raise ValueError(f"K-FAC projections must be among {PROJECTIONS}")
        if not 0.0 < self.kept_mass <= 1.0:
            raise ValueError(f"K-FAC kept mass {self.kept_mass} is outside (0, 1]")


def _targets(model: PreTrainedModel, cfg: KfacConfig) -> dict[str, torch.nn.Linear]:
    mlps = mlp_modules(model)
    cfg.check(len(mlps))
    layers = range(len(mlps)) if cfg.layers is None else cfg.layers
    return {f"{i}.{p}": getattr(mlps[i], p) for i in layers for p in cfg.projections}


def kfac_factors(
    model: PreTrainedModel, batches: Sequence[Batch], cfg: KfacConfig
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(A, G) per edited projection, averaged over the real tokens of `batches`."""
    targets = _targets(model, cfg)
    inputs: dict[str, torch.Tensor] = {}
    outputs: dict[str, torch.Tensor] = {}

    def hook(name: str):  # noqa: ANN202 - a hook factory
        def record(_m: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
            inputs[name] = args[0].detach()
            output.retain_grad()
            outputs[name] = output
        return record

    # The factors stay on the model's device: their products and eigendecompositions are the cost.
    zeros = {"dtype": torch.float64, "device": model.device}
    factors = {n: [torch.zeros(m.in_features, m.in_features, **zeros),
                   torch.zeros(m.out_features, m.out_features, **zeros)]
               for n, m in targets.items()}
    handles = [m.register_forward_hook(hook(n)) for n, m in targets.items()]
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    handles.append(model.get_input_embeddings().register_forward_hook(
        lambda _m, _a, out: out.requires_grad_()))
    tokens = 0
    try:
        with torch.enable_grad():
            for batch in track(iterate(batches, model.device), "K-FAC factors", total=len(batches)):
                answer_loss(model, batch).backward()
                real = batch.attention_mask.bool()
                tokens += int(real.sum())
                for name, (a_sum, g_sum) in factors.items():
                    a = inputs[name][real].double()
                    g = outputs[name].grad[real].double()
                    a_sum += a.T @ a
                    g_sum += g.T @ g
    finally:
        for handle in handles:
            handle.remove()
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)
    return {n: (a / tokens, g / tokens) for n, (a, g) in factors.items()}


def curvature_edit(
    weight: torch.Tensor, a: torch.Tensor, g: torch.Tensor, kept_mass: float
) -> tuple[torch.Tensor, float]:
    """W rebuilt from its top-curvature components; also the fraction of components kept."""
    mu, u_a = torch.linalg.eigh(a)
    lam, u_g = torch.linalg.eigh(g)
    curvature = lam.clamp_min(0)[:, None] * mu.clamp_min(0)[None, :]
    order = curvature.flatten().argsort(descending=True)
    mass = curvature.flatten()[order].cumsum(0)
    count = int(torch.searchsorted(mass, kept_mass * mass[-1]).item()) + 1
    keep = torch.zeros(curvature.numel(), dtype=torch.bool, device=curvature.device)
    keep[order[:count]] = True
    coefficients = u_g.T @ weight.double() @ u_a
    rebuilt = u_g @ (coefficients * keep.view_as(curvature)) @ u_a.T
    return rebuilt.to(weight.dtype), count / curvature.numel()


def kfac_edit(
    model: PreTrainedModel, batches: Sequence[Batch], cfg: KfacConfig
) -> dict[str, float]:
    """Apply the curvature edit in place; returns the kept fraction of components per weight."""
    factors = kfac_factors(model, batches, cfg)
    kept = {}
    for name, module in _targets(model, cfg).items():
        a, g = factors[name]
        rebuilt, kept[name] = curvature_edit(module.weight.detach(), a, g, cfg.kept_mass)
        with torch.no_grad():
            module.weight.copy_(rebuilt.to(module.weight.device))
    return kept


def check_kfac(model: PreTrainedModel, cfg: PruneConfig) -> None:
    """The registered edit's check (pruning/methods.py): `cfg.kfac` fits `model`."""
    cfg.kfac.check(len(mlp_modules(model)))


def apply_kfac(
    model: PreTrainedModel, data: CalibrationSets, cfg: PruneConfig
) -> dict[str, Any]:
    """The registered edit: `kfac_edit` with `cfg.kfac` on the retain batches (never facts)."""
    return {"kfac_kept_components": kfac_edit(model, data.retain_batches(), cfg.kfac)}
