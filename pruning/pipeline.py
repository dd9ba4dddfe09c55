"""One pruning run: (optionally) edit, score, cut, heal. A pure function of base, data, config.

The base model is never modified: the core is a deep copy, so the caller can evaluate both.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from cogcore.errors import CogcoreError
from evaluation.cost import parameter_counts
from pruning.attribution import collect_neuron_stats
from pruning.calibration import CalibrationSets
from pruning.compact import compact_mlp, intermediate_size, keep_top, mlp_modules
from pruning.heal import distill, refit_down_proj
from pruning.kfac import KfacConfig, kfac_edit
from pruning.scoring import (
    ContrastiveConfig,
    score_contrastive,
    score_magnitude,
    score_random,
    score_wanda,
)
from pruning.vocab import tokenizer_trimmed_spec, trim_vocabulary

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

METHODS = ("contrastive", "random", "magnitude", "wanda", "kfac", "kfac+contrastive")


class PruneConfigError(CogcoreError, ValueError):
    """A pruning configuration that cannot run."""


@dataclass(frozen=True)
class PruneConfig:
    """Everything that decides a pruning run."""

    method: str
    width: int | None = None  # kept neurons per layer; None keeps them all (kfac edit only)
    seed: int = 0
    refit: bool = True
    sequential_refit: bool = True
    heal_steps: int = 0
    heal_lr: float = 5e-5
    vocab_size: int | None = None  # keep the most frequent tokens only (pruning/vocab.py)
    contrastive: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    kfac: KfacConfig = field(default_factory=KfacConfig)

    def as_dict(self) -> dict[str, Any]:
        """The config as plain JSON-ready values."""
        return asdict(self)


@dataclass
class PruneResult:
    """The core model and what the run measured about itself."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase | None
    config: PruneConfig
    keep: dict[int, torch.Tensor] | None
    params_before: int
    params_after: int
    seconds: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def _scores(
    model: PreTrainedModel, data: CalibrationSets, cfg: PruneConfig
) -> list[torch.Tensor]:
    method = cfg.method.removeprefix("kfac+")
    if method == "random":
        return score_random(model, cfg.seed)
    if method == "magnitude":
        return score_magnitude(model)
    if method == "wanda":
        general = data.retain.get("general") or data.retain_batches()
        return score_wanda(model, collect_neuron_stats(model, general, gradients=False,
                                                       label="general"))
    fact = collect_neuron_stats(model, data.facts, label="facts")
    retain = {name: collect_neuron_stats(model, batches, label=name)
              for name, batches in data.retain.items()}
    return score_contrastive(fact, retain, cfg.contrastive)


def _check(model: PreTrainedModel, cfg: PruneConfig) -> bool:
    """Validate `cfg` against `model`; True when neurons are to be cut."""
    if cfg.method not in METHODS:
        raise PruneConfigError(f"unknown method {cfg.method!r}; choose from {METHODS}")
    full = intermediate_size(model)
    cut = cfg.width is not None and cfg.width < full
    if cfg.width is not None and not 0 < cfg.width <= full:
        raise PruneConfigError(f"width {cfg.width} is outside 1..{full}")
    if cfg.method == "kfac" and cut:
        raise PruneConfigError("kfac edits without cutting; use kfac+contrastive to cut")
    if cfg.method != "kfac" and not cut:
        raise PruneConfigError(f"{cfg.method} needs a width below {full} (or a sparsity)")
    if cfg.method.startswith("kfac"):
        try:
            cfg.kfac.check(len(mlp_modules(model)))
        except ValueError as exc:
            raise PruneConfigError(str(exc)) from exc
    return cut


def prune(
    base: PreTrainedModel, data: CalibrationSets, cfg: PruneConfig,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> PruneResult:
    """Build the core from a copy of `base`: edit, score, cut, refit, trim the vocabulary, distill.

    The core's tokenizer is `tokenizer`, or its trimmed copy when `cfg.vocab_size` is set.
    """
    cut = _check(base, cfg)
    if cfg.vocab_size is not None:
        if tokenizer is None:
            raise PruneConfigError("trimming the vocabulary needs the base's tokenizer")
        tokenizer_trimmed_spec(tokenizer, cfg.vocab_size)  # refuse a bad size before the work
    core = copy.deepcopy(base).eval()
    result = PruneResult(core, tokenizer, cfg, None, parameter_counts(base)[0], 0)
    clock = time.perf_counter()
    if cfg.method.startswith("kfac"):
        result.details["kfac_kept_components"] = kfac_edit(core, data.retain_batches(), cfg.kfac)
        result.seconds["kfac"], clock = time.perf_counter() - clock, time.perf_counter()
    if cut:
        # The refit reproduces the model as it was just before the cut (the edit included).
        reference = copy.deepcopy(core) if cfg.refit else None
        result.keep = keep_top(_scores(core, data, cfg), cfg.width)
        compact_mlp(core, result.keep)
        result.seconds["score_and_cut"], clock = time.perf_counter() - clock, time.perf_counter()
        if reference is not None:
            result.details["refit_residual"] = refit_down_proj(
                core, reference, data.retain_batches(), sequential=cfg.sequential_refit
            )
            result.seconds["refit"], clock = time.perf_counter() - clock, time.perf_counter()
            del reference
    if cfg.vocab_size is not None:
        # After scoring and refit (they use the base's token ids), before distillation: the
        # core is healed on text as its own tokenizer splits it.
        result.tokenizer = trim_vocabulary(core, tokenizer, cfg.vocab_size)
    if cfg.heal_steps:
        batches = (data.retain_batches() if cfg.vocab_size is None
                   else data.retain_batches_for(result.tokenizer))
        losses = distill(core, base, batches, steps=cfg.heal_steps, lr=cfg.heal_lr)
        result.details["distill_loss_first_last"] = [losses[0], losses[-1]]
        result.seconds["distill"] = time.perf_counter() - clock
    result.params_after = parameter_counts(core)[0]
    return result
