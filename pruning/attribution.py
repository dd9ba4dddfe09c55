"""Per-neuron statistics of the MLPs over calibration batches, captured with hooks.

A neuron's activation is its input to `down_proj` (act(gate) * up). With gradients on, the
loss is the summed answer-token cross-entropy and each activation keeps its gradient, giving
attributions |a * dL/da| at the positions that predict an answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from cogcore.progress import track
from pruning.calibration import Batch, answer_loss, iterate
from pruning.compact import mlp_modules

if TYPE_CHECKING:
    from collections.abc import Iterator

    from transformers import PreTrainedModel


@dataclass(frozen=True)
class NeuronStats:
    """Means over answer positions per layer and neuron; `sq_norm` sums a² over all tokens."""

    attribution: list[torch.Tensor]
    activation: list[torch.Tensor]
    sq_norm: list[torch.Tensor]
    answer_tokens: int


@contextmanager
def capture_mlp_inputs(model: PreTrainedModel, gradients: bool) -> Iterator[list[torch.Tensor]]:
    """Yield a list that each forward pass fills with every layer's `down_proj` input."""
    captured: list[torch.Tensor] = []

    def keep(_module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        if gradients:
            args[0].retain_grad()
        captured.append(args[0])

    def grad_from_here(_m: torch.nn.Module, _a: tuple, output: torch.Tensor) -> torch.Tensor:
        # Gradients flow to the activations without any parameter needing a gradient.
        return output.requires_grad_() if gradients else output

    handles = [mlp.down_proj.register_forward_pre_hook(keep) for mlp in mlp_modules(model)]
    handles.append(model.get_input_embeddings().register_forward_hook(grad_from_here))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def collect_neuron_stats(
    model: PreTrainedModel,
    batches: Sequence[Batch],
    *,
    gradients: bool = True,
    label: str = "calibration",
) -> NeuronStats:
    """Mean |a·g| and |a| at answer positions, and Σa² over tokens, for every MLP neuron."""
    width = mlp_modules(model)[0].down_proj.in_features
    layers = len(mlp_modules(model))
    zeros = [torch.zeros(width, dtype=torch.float64) for _ in range(layers)]
    attribution, activation, sq_norm = (list(map(torch.clone, zeros)) for _ in range(3))
    answers = 0
    params = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        for batch in track(iterate(batches, model.device), f"scoring {label}",
                           total=len(batches)):
            with capture_mlp_inputs(model, gradients) as acts, torch.set_grad_enabled(gradients):
                loss = answer_loss(model, batch)
                if gradients:
                    loss.backward()
            at, real = batch.predicts, batch.attention_mask.bool()
            answers += int(at.sum())
            for layer, a in enumerate(acts):
                a_at = a.detach()[at].double()
                activation[layer] += a_at.abs().sum(0).cpu()
                sq_norm[layer] += a.detach()[real].double().pow(2).sum(0).cpu()
                if gradients:
                    attribution[layer] += (a_at * a.grad[at].double()).abs().sum(0).cpu()
    finally:
        for p, flag in zip(model.parameters(), params, strict=True):
            p.requires_grad_(flag)
    scale = 1.0 / max(answers, 1)
    return NeuronStats(
        [t * scale for t in attribution], [t * scale for t in activation], sq_norm, answers
    )
