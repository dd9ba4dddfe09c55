"""Physical removal of MLP neurons: a smaller model that stock transformers still loads.

A neuron j of a gated MLP is row j of `gate_proj` and `up_proj` and column j of `down_proj`.
Removing the same number in every layer keeps one `intermediate_size` in the config, which is
what `from_pretrained` (and vLLM, lm-evaluation-harness) require.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from cogcore.errors import CogcoreError

if TYPE_CHECKING:
    from transformers import PreTrainedModel


class CompactionError(CogcoreError):
    """The model's MLPs cannot be pruned as asked."""


def decoder_layers(model: PreTrainedModel) -> list[nn.Module]:
    """The decoder layers, first to last (Llama, Qwen2, Mistral layout)."""
    layers = getattr(model.get_decoder(), "layers", None)
    if layers is None:
        raise CompactionError(f"{type(model).__name__} has no decoder layers to prune")
    return list(layers)


def mlp_modules(model: PreTrainedModel) -> list[nn.Module]:
    """The gated MLP of every decoder layer (Llama, Qwen2, Mistral layout)."""
    mlps = [layer.mlp for layer in decoder_layers(model)]
    for mlp in mlps:
        if not all(hasattr(mlp, name) for name in ("gate_proj", "up_proj", "down_proj")):
            raise CompactionError(f"{type(mlp).__name__} is not a gated MLP (gate/up/down)")
    return mlps


def intermediate_size(model: PreTrainedModel) -> int:
    """The number of neurons in each MLP."""
    return int(model.config.intermediate_size)


def keep_top(scores: list[torch.Tensor], width: int) -> dict[int, torch.Tensor]:
    """Per layer, the sorted indices of the `width` neurons with the highest score."""
    if not 0 < width <= scores[0].numel():
        raise CompactionError(f"width {width} is outside 1..{scores[0].numel()}")
    return {
        layer: torch.topk(score.float(), width).indices.sort().values
        for layer, score in enumerate(scores)
    }


def width_for_sparsity(model: PreTrainedModel, sparsity: float) -> int:
    """The kept width when a fraction `sparsity` of each MLP's neurons is removed."""
    if not 0.0 <= sparsity < 1.0:
        raise CompactionError(f"sparsity {sparsity} is outside [0, 1)")
    return max(1, round(intermediate_size(model) * (1.0 - sparsity)))


def _check_keep(model: PreTrainedModel, keep: dict[int, torch.Tensor]) -> int:
    mlps = mlp_modules(model)
    if sorted(keep) != list(range(len(mlps))):
        raise CompactionError("keep must name every layer exactly once")
    widths = {int(idx.numel()) for idx in keep.values()}
    if len(widths) != 1:
        raise CompactionError(f"every layer must keep the same count, got {sorted(widths)}")
    return widths.pop()


def _slice_linear(linear: nn.Linear, index: torch.Tensor, dim: int) -> nn.Linear:
    weight = linear.weight.detach().index_select(dim, index.to(linear.weight.device))
    out_features, in_features = weight.shape
    bias = linear.bias is not None
    new = nn.Linear(in_features, out_features, bias=bias, device=weight.device, dtype=weight.dtype)
    new.weight.data.copy_(weight)
    if bias:
        # A bias is per output: rows of gate/up lose theirs, down_proj keeps its whole bias.
        kept = linear.bias.detach().index_select(0, index) if dim == 0 else linear.bias.detach()
        new.bias.data.copy_(kept)
    return new


@torch.no_grad()
def compact_mlp(model: PreTrainedModel, keep: dict[int, torch.Tensor]) -> PreTrainedModel:
    """Remove every MLP neuron not in `keep[layer]`, in place; returns the model."""
    width = _check_keep(model, keep)
    for layer, mlp in enumerate(mlp_modules(model)):
        index = keep[layer].long()
        mlp.gate_proj = _slice_linear(mlp.gate_proj, index, 0)
        mlp.up_proj = _slice_linear(mlp.up_proj, index, 0)
        mlp.down_proj = _slice_linear(mlp.down_proj, index, 1)
        if hasattr(mlp, "intermediate_size"):
            mlp.intermediate_size = width
    model.config.intermediate_size = width
    return model


@torch.no_grad()
def mask_mlp(model: PreTrainedModel, keep: dict[int, torch.Tensor]) -> PreTrainedModel:
    """Zero the `down_proj` columns of the neurons not kept, in place: compaction's reference."""
    _check_keep(model, keep)
    for layer, mlp in enumerate(mlp_modules(model)):
        dropped = torch.ones(mlp.down_proj.in_features, dtype=torch.bool)
        dropped[keep[layer].long()] = False
        mlp.down_proj.weight[:, dropped.to(mlp.down_proj.weight.device)] = 0.0
    return model
