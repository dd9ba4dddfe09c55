"""The closed-form least-squares refit of a pruned model, layer by layer.

Each pruned MLP's kept `down_proj` columns are solved so that the MLP reproduces the base MLP's
output on the same inputs (as SparseGPT and FLAP compensate). Sequentially, the inputs are the
pruned model's own hidden states, so each layer is fitted where the layers below it leave the
stream. With the target "residual", each MLP is fitted instead to what takes the pruned model's
residual stream back to the base's after the layer (the base's layer output less the pruned
model's stream after attention), so it also corrects the drift the layers below it left.
Distillation (`pruning.heal`) follows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from cogcore.progress import track
from pruning.calibration import Batch, iterate
from pruning.compact import decoder_layers, mlp_modules

if TYPE_CHECKING:
    from transformers import PreTrainedModel


class _StopForward(Exception):
    """Raised by a hook once the layer of interest has been seen: the rest is not needed."""


def _first_layer_inputs(
    model: PreTrainedModel, batches: Sequence[Batch]
) -> list[tuple[torch.Tensor, dict[str, Any]]]:
    """Per batch, the hidden states entering decoder layer 0 and the arguments every layer takes."""
    captured: list[tuple[torch.Tensor, dict[str, Any]]] = []

    def grab(_m: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        kwargs = dict(kwargs)
        hidden = args[0] if args else kwargs.pop("hidden_states")
        captured.append((hidden, kwargs))
        raise _StopForward

    handle = decoder_layers(model)[0].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        for batch in iterate(batches, model.device):
            try:
                model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                      use_cache=False)
            except _StopForward:
                pass
    finally:
        handle.remove()
    return captured


def _neurons(mlp: torch.nn.Module, h: torch.Tensor) -> torch.Tensor:
    """The gated MLP's neuron activations (the input of its down_proj)."""
    return mlp.act_fn(mlp.gate_proj(h)) * mlp.up_proj(h)


def _layer_moments(
    layer: torch.nn.Module, source_mlp: torch.nn.Module, student_mlp: torch.nn.Module,
    teacher_mlp: torch.nn.Module, states: Sequence[tuple[torch.Tensor, dict[str, Any]]],
    masks: Sequence[torch.Tensor], teacher_out: Sequence[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """X Xᵀ and Y Xᵀ over real tokens, X the student's neurons and Y the teacher MLP output
    on the same input, or, given the teacher layer's outputs, those less the source's residual
    stream after attention (what the MLP must add to land on the teacher's stream)."""
    width = student_mlp.down_proj.in_features
    xx = torch.zeros(width, width, dtype=torch.float64)
    yx = torch.zeros(teacher_mlp.down_proj.out_features, width, dtype=torch.float64)
    yy = 0.0
    batch: list[int] = [0]
    stream: list[torch.Tensor] = []  # the source's residual stream after attention

    def after_attention(_m: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        stream[:] = [args[0]]

    def capture(_m: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        nonlocal xx, yx, yy
        real = masks[batch[0]]
        h = args[0][real]
        x = _neurons(student_mlp, h).double()
        if teacher_out is None:
            # Through the submodules: calling the hooked MLP itself would re-enter this hook.
            y = teacher_mlp.down_proj(_neurons(teacher_mlp, h)).double()
        else:
            y = (teacher_out[batch[0]][real] - stream[0][real]).double()
        if student_mlp.down_proj.bias is not None:
            y = y - student_mlp.down_proj.bias.double()
        xx += (x.T @ x).cpu()
        yx += (y.T @ x).cpu()
        yy += float(y.pow(2).sum())

    handles = [source_mlp.register_forward_pre_hook(capture),
               layer.post_attention_layernorm.register_forward_pre_hook(after_attention)]
    try:
        for index, (hidden, kwargs) in enumerate(states):
            batch[0] = index
            layer(hidden, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return xx, yx, yy


REFIT_TARGETS = ("mlp", "residual")
"""What each refitted MLP reproduces: the base MLP on the same input, or the base's stream."""


def check_refit_target(target: str, sequential: bool) -> None:
    """Refuse an unknown target, or the residual one on the base's own states."""
    if target not in REFIT_TARGETS:
        raise ValueError(f"refit target {target!r}: one of {', '.join(REFIT_TARGETS)}")
    if target == "residual" and not sequential:
        raise ValueError("the residual refit target needs the sequential refit (sequential "
                         "only: it corrects the pruned model's own drift)")


@torch.no_grad()
def refit_down_proj(
    student: PreTrainedModel,
    teacher: PreTrainedModel,
    batches: Sequence[Batch],
    *,
    sequential: bool = True,
    ridge: float = 1e-3,
    target: str = "mlp",
) -> list[float]:
    """Solve each layer's `down_proj` in place; returns the relative residual per layer.

    The hidden states are carried from layer to layer (each layer runs twice: once to gather
    the moments, once, refitted, to feed the next), so the cost is about two forward passes;
    target "residual" (sequential only) carries the teacher's states beside them, one more.
    """
    check_refit_target(target, sequential)
    residuals = []
    students, teachers = mlp_modules(student), mlp_modules(teacher)
    source = student if sequential else teacher
    layers, sources = decoder_layers(source), mlp_modules(source)
    teacher_layers = decoder_layers(teacher)
    states = _first_layer_inputs(source, batches)
    teacher_states = [hidden for hidden, _ in states] if target == "residual" else None
    masks = [batch.attention_mask.bool().to(source.device) for batch in batches]
    for index in track(range(len(students)), "least-squares refit"):
        teacher_out = None
        if teacher_states is not None:
            teacher_out = [teacher_layers[index](hidden, **kwargs)
                           for hidden, (_, kwargs) in zip(teacher_states, states, strict=True)]
        xx, yx, yy = _layer_moments(layers[index], sources[index], students[index],
                                    teachers[index], states, masks, teacher_out)
        damp = ridge * xx.diagonal().mean().clamp_min(1e-12)
        gram = xx + damp * torch.eye(xx.shape[0], dtype=xx.dtype)
        weight = torch.linalg.solve(gram, yx.T).T  # W = Y Xᵀ (X Xᵀ + λI)⁻¹
        # ||Y - W X||² = yy - 2 tr(W (Y Xᵀ)ᵀ) + tr(W X Xᵀ Wᵀ), without keeping X or Y.
        error = yy - 2 * (weight * yx).sum() + (weight @ xx * weight).sum()
        residuals.append(float(error.clamp_min(0) / max(yy, 1e-12)))
        down = students[index].down_proj
        down.weight.copy_(weight.to(down.weight.dtype).to(down.weight.device))
        states = [(layers[index](hidden, **kwargs), kwargs) for hidden, kwargs in states]
        teacher_states = teacher_out
    return residuals
