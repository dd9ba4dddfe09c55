"""One pruning run: (optionally) edit, score, cut, heal. A pure function of base, data, config.

The base model is never modified: the core is a deep copy, so the caller can evaluate both.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from evaluation.cost import parameter_counts
from pruning.calibration import CalibrationSets
from pruning.compact import compact_mlp, intermediate_size, keep_top
from pruning.heal import (
    PieceMap,
    aligned_batches,
    aligned_targets,
    distill,
    embeddings_only,
    same_ids_targets,
    student_ids_in_teacher,
)
from pruning.kfac import KfacConfig
from pruning.methods import EDITS, SCORERS, Method, PruneConfigError, parse_method
from pruning.refit import check_refit_target, refit_down_proj
from pruning.scoring import ContrastiveConfig
from pruning.vocab import check_size, trim_vocabulary

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

@dataclass(frozen=True)
class PruneConfig:
    """Everything that decides a pruning run."""

    method: str  # a name pruning/methods.py parses: edit, scorer or edit+scorer
    width: int | None = None  # kept neurons per layer; None keeps them all (an edit only)
    seed: int = 0
    refit: bool = True
    sequential_refit: bool = True
    heal_steps: int = 0
    heal_lr: float = 5e-5
    refit_prose_chars: int = 0  # general prose the refit also reproduces (pruning/corpus.py)
    # What each refitted MLP reproduces (pruning.refit.REFIT_TARGETS): "mlp", the base MLP on
    # the core's own inputs; "residual", the base's stream after the layer (drift corrected).
    refit_target: str = "mlp"
    # The base's everyday samples (pruning/everyday.py) as a retain set of the cut and half the
    # refit's prose: the calibration sets are built with them (pruning.calibration).
    everyday_prose: bool = False
    vocab_size: int | None = None  # keep the most frequent tokens only (pruning/vocab.py)
    vocab_selection: str = "use"  # "use"/"prose": a keep-set by use; "rank": ids below vocab_size
    adapt_embeddings_steps: int = 0  # after the trim: embeddings only, base reading its tokens
    adapt_embeddings_lr: float = 3e-4
    # Last: every parameter distilled from the base reading its own tokens, on prose windows
    # and (this share of the steps) the retain sets' answer positions (pruning/reading_heal.py).
    heal_reading_steps: int = 0
    heal_reading_lr: float = 5e-5
    heal_reading_share: float = 0.5
    heal_reading_batch: int = 4  # prose windows or retain examples per step
    heal_reading_everyday: float = 0.0  # of the prose windows, sampled from the base
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


def _check(model: PreTrainedModel, cfg: PruneConfig) -> Method:
    """Validate `cfg` against `model`; the parsed method, whose scorer (if any) cuts."""
    method = parse_method(cfg.method)
    full = intermediate_size(model)
    cut = cfg.width is not None and cfg.width < full
    if cfg.width is not None and not 0 < cfg.width <= full:
        raise PruneConfigError(f"width {cfg.width} is outside 1..{full}")
    if method.scorer is None and cut:
        raise PruneConfigError(f"{cfg.method} edits without cutting; name a scorer to cut "
                               f"too, e.g. {cfg.method}+{next(iter(SCORERS))}")
    if method.scorer is not None and not cut:
        raise PruneConfigError(f"{cfg.method} needs a width below {full} (or a sparsity)")
    try:
        check_refit_target(cfg.refit_target, cfg.sequential_refit)
    except ValueError as exc:
        raise PruneConfigError(str(exc)) from exc
    if cfg.adapt_embeddings_steps and cfg.vocab_size is None:
        raise PruneConfigError("adapting the embeddings needs a vocabulary trim (a vocab size)")
    if cfg.heal_reading_steps and not 0.0 <= cfg.heal_reading_share <= 1.0:
        raise PruneConfigError(f"the reading share {cfg.heal_reading_share} is outside [0, 1]")
    if cfg.heal_reading_steps and not 0.0 <= cfg.heal_reading_everyday <= 1.0:
        raise PruneConfigError(
            f"the everyday share {cfg.heal_reading_everyday} is outside [0, 1]")
    if cfg.heal_reading_steps and cfg.heal_reading_batch < 1:
        raise PruneConfigError(f"the healing batch {cfg.heal_reading_batch} is not positive")
    if method.edit is not None:
        try:
            EDITS[method.edit].check(model, cfg)
        except ValueError as exc:
            raise PruneConfigError(str(exc)) from exc
    return method


def prune(
    base: PreTrainedModel, data: CalibrationSets, cfg: PruneConfig,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> PruneResult:
    """Build the core from a copy of `base`: edit, score, cut, refit, trim the vocabulary,
    distill, heal with a reading term.

    The core's tokenizer is `tokenizer`, or its trimmed copy when `cfg.vocab_size` is set.
    """
    method = _check(base, cfg)
    if cfg.heal_reading_steps and tokenizer is None:
        raise PruneConfigError("healing with a reading term needs the base's tokenizer")
    if cfg.vocab_size is not None:
        if tokenizer is None:
            raise PruneConfigError("trimming the vocabulary needs the base's tokenizer")
        check_size(tokenizer, cfg.vocab_size, cfg.vocab_selection)  # refuse a bad size first
    core = copy.deepcopy(base).eval()
    result = PruneResult(core, tokenizer, cfg, None, parameter_counts(base)[0], 0)
    clock = time.perf_counter()
    if method.edit is not None:
        result.details.update(EDITS[method.edit].apply(core, data, cfg))
        result.seconds[method.edit], clock = time.perf_counter() - clock, time.perf_counter()
    if method.scorer is not None and cfg.width is not None:  # _check: a scorer has a width
        # The refit reproduces the model as it was just before the cut (the edit included).
        reference = copy.deepcopy(core) if cfg.refit else None
        result.keep = keep_top(SCORERS[method.scorer](core, data, cfg), cfg.width)
        compact_mlp(core, result.keep)
        result.seconds["score_and_cut"], clock = time.perf_counter() - clock, time.perf_counter()
        if reference is not None:
            if cfg.refit_prose_chars and tokenizer is None:
                raise PruneConfigError("a refit on prose needs the base's tokenizer")
            batches = (data.refit_batches(tokenizer, cfg.refit_prose_chars)
                       if cfg.refit_prose_chars else data.retain_batches())
            result.details["refit_residual"] = refit_down_proj(
                core, reference, batches, sequential=cfg.sequential_refit,
                target=cfg.refit_target)
            result.seconds["refit"], clock = time.perf_counter() - clock, time.perf_counter()
            del reference
    if cfg.vocab_size is not None:
        # After scoring and refit (they use the base's token ids), before distillation: the
        # core is healed on text as its own tokenizer splits it.
        result.tokenizer = trim_vocabulary(core, tokenizer, cfg.vocab_size,
                                           selection=cfg.vocab_selection)
    if cfg.adapt_embeddings_steps:
        result.details["adapt_embeddings_loss_first_last"] = adapt_embeddings(
            core, base, tokenizer, result.tokenizer, cfg)
        result.seconds["adapt_embeddings"], clock = time.perf_counter() - clock, time.perf_counter()
    if cfg.heal_steps:
        batches = (data.retain_batches() if cfg.vocab_size is None
                   else data.retain_batches_for(result.tokenizer))
        targets = (None if cfg.vocab_size is None else same_ids_targets(  # re-indexed ids
            base, cfg.vocab_size, student_ids_in_teacher(tokenizer, result.tokenizer)))
        losses = distill(core, base, batches, steps=cfg.heal_steps, lr=cfg.heal_lr,
                         targets=targets)
        result.details["distill_loss_first_last"] = [losses[0], losses[-1]]
        result.seconds["distill"], clock = time.perf_counter() - clock, time.perf_counter()
    if cfg.heal_reading_steps:
        from pruning.reading_heal import heal_with_reading

        result.details.update(heal_with_reading(core, base, tokenizer, result.tokenizer, data,
                                                cfg))
        result.seconds["heal_reading"] = time.perf_counter() - clock
    result.params_after = parameter_counts(core)[0]
    return result


def adapt_embeddings(core: PreTrainedModel, base: PreTrainedModel,
                     tokenizer: PreTrainedTokenizerBase, trimmed: PreTrainedTokenizerBase,
                     cfg: PruneConfig, window: int = 128, batch_size: int = 8) -> list[float]:
    """Distill the core's embedding matrix alone from the base reading its own tokens, on the
    offline prose corpus (no evaluation text); the first and last step's loss."""
    from pruning.corpus import general_corpus

    pieces = PieceMap(tokenizer, trimmed)
    chars = 6 * window * batch_size * cfg.adapt_embeddings_steps  # about 4.5 per token
    batches = aligned_batches(tokenizer, pieces, general_corpus(chars), window=window,
                              batch_size=batch_size)
    targets = aligned_targets(base, pieces, core.get_output_embeddings().out_features)
    losses = distill(core, base, batches, steps=cfg.adapt_embeddings_steps,
                     lr=cfg.adapt_embeddings_lr, trainable=embeddings_only, targets=targets)
    return [losses[0], losses[-1]]
