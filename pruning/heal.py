"""Healing a pruned model on retain data only (never the closed-book fact questions).

First a closed-form least-squares refit, layer by layer: each pruned MLP's kept `down_proj`
columns are solved so that the MLP reproduces the base MLP's output on the same inputs (as
SparseGPT and FLAP compensate). Sequentially, the inputs are the pruned model's own hidden
states, so each layer also corrects the drift of the layers below it. Then, optionally, a short
distillation from the base (KL between next-token distributions on retain text), after any
vocabulary trim, so that the core learns its own tokenization of the same text.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from rich.console import Console
from rich.progress import track

from pruning.calibration import Batch, iterate
from pruning.compact import decoder_layers, mlp_modules

if TYPE_CHECKING:
    from transformers import PreTrainedModel

console = Console(stderr=True)


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
    masks: Sequence[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """X Xᵀ and Y Xᵀ over real tokens, X the student's neurons and Y the teacher MLP output."""
    width = student_mlp.down_proj.in_features
    xx = torch.zeros(width, width, dtype=torch.float64)
    yx = torch.zeros(teacher_mlp.down_proj.out_features, width, dtype=torch.float64)
    yy = 0.0
    mask: list[torch.Tensor] = []

    def capture(_m: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        nonlocal xx, yx, yy
        h = args[0][mask[0]]
        x = _neurons(student_mlp, h).double()
        # Through the submodules: calling the hooked MLP itself would re-enter this hook.
        y = teacher_mlp.down_proj(_neurons(teacher_mlp, h)).double()
        if student_mlp.down_proj.bias is not None:
            y = y - student_mlp.down_proj.bias.double()
        xx += (x.T @ x).cpu()
        yx += (y.T @ x).cpu()
        yy += float(y.pow(2).sum())

    handle = source_mlp.register_forward_pre_hook(capture)
    try:
        for (hidden, kwargs), real in zip(states, masks, strict=True):
            mask[:] = [real]
            layer(hidden, **kwargs)
    finally:
        handle.remove()
    return xx, yx, yy


@torch.no_grad()
def refit_down_proj(
    student: PreTrainedModel,
    teacher: PreTrainedModel,
    batches: Sequence[Batch],
    *,
    sequential: bool = True,
    ridge: float = 1e-3,
) -> list[float]:
    """Solve each layer's `down_proj` in place; returns the relative residual per layer.

    The hidden states are carried from layer to layer (each layer runs twice: once to gather
    the moments, once, refitted, to feed the next), so the cost is about two forward passes.
    """
    residuals = []
    students, teachers = mlp_modules(student), mlp_modules(teacher)
    source = student if sequential else teacher
    layers, sources = decoder_layers(source), mlp_modules(source)
    states = _first_layer_inputs(source, batches)
    masks = [batch.attention_mask.bool().to(source.device) for batch in batches]
    for index in track(range(len(students)), "least-squares refit", console=console):
        xx, yx, yy = _layer_moments(layers[index], sources[index], students[index],
                                    teachers[index], states, masks)
        damp = ridge * xx.diagonal().mean().clamp_min(1e-12)
        gram = xx + damp * torch.eye(xx.shape[0], dtype=xx.dtype)
        weight = torch.linalg.solve(gram, yx.T).T  # W = Y Xᵀ (X Xᵀ + λI)⁻¹
        # ||Y - W X||² = yy - 2 tr(W (Y Xᵀ)ᵀ) + tr(W X Xᵀ Wᵀ), without keeping X or Y.
        error = yy - 2 * (weight * yx).sum() + (weight @ xx * weight).sum()
        residuals.append(float(error.clamp_min(0) / max(yy, 1e-12)))
        down = students[index].down_proj
        down.weight.copy_(weight.to(down.weight.dtype).to(down.weight.device))
        states = [(layers[index](hidden, **kwargs), kwargs) for hidden, kwargs in states]
    return residuals


def distill(
    student: PreTrainedModel,
    teacher: PreTrainedModel,
    batches: Sequence[Batch],
    *,
    steps: int,
    lr: float = 5e-5,
) -> list[float]:
    """A short KL(teacher ‖ student) distillation on retain text; returns the loss per step.

    A student with a trimmed vocabulary (its ids a prefix of the teacher's) learns the teacher's
    next-token distribution renormalized over the tokens it kept.
    """
    if steps <= 0:
        return []
    vocab = student.get_output_embeddings().out_features
    student.train()
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    cycle = itertools.cycle(batches)
    for _ in track(range(steps), "distilling from the base", console=console):
        batch = next(cycle).to(student.device)
        real = batch.attention_mask.bool()
        with torch.no_grad():
            target = teacher(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
            target_logp = target.logits[real][:, :vocab].float().log_softmax(-1)
        logits = student(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        loss = torch.nn.functional.kl_div(
            logits[real].float().log_softmax(-1), target_logp, log_target=True,
            reduction="batchmean",
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
    student.eval()
    return losses
