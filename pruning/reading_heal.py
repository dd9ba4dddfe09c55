"""Healing with a reading retain term: the whole core distilled from the base, last in the recipe.

After the cut, the refit and the vocabulary trim, every parameter of the core learns the base's
next-token distribution with the base reading its own tokens (`pruning.heal.aligned_targets`:
marginalized onto the trimmed tokenizer's pieces, so re-split tokens are taught too). The steps
alternate between two kinds of batch, in a fixed proportion (`heal_reading_share`):

- windows of the offline prose corpus (`pruning.corpus.general_corpus`, never an evaluation
  text) and, in the share `heal_reading_everyday`, of everyday prose sampled from the base
  (`pruning.everyday`), every position scored: what perplexity measures;
- the retain sets' examples (open-book, counterfactual and fictional reader prompts and the
  reasoning tasks, calibration split only), scored at the answer positions only: the reading
  retain term, every batch mixed across the sets (`mixed`: reader prompts and arithmetic in
  each). Closed-book fact questions never enter, so the healing has no term that rewards
  recall; the teacher's answers to counterfactual prompts follow the evidence. The
  reader prompts' targets end with the end-of-turn token (`end_turn`), so the core learns to
  stop where the base does: scored at the answer alone, the healed core went on stating the
  context's other facts up to the token limit.

A share of 0 is plain healing on prose (the control that isolates the reading term). At 4
examples a step a short run was a lottery: which retain batches it drew moved open-book reading
from 0.74x to 0.94x and addition from 0.61x to 1.09x of the base's, mixed or not; at 16 a step
the default core's 68 steps read and add like the base (docs/core-report.md).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pruning.calibration import PROSE_SETS, Example, encode_example
from pruning.heal import (
    AlignedBatch,
    PieceMap,
    aligned_targets,
    distill,
    pack_aligned,
    text_windows,
    window_batches,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from pruning.calibration import CalibrationSets
    from pruning.pipeline import PruneConfig

WINDOW = 128  # teacher tokens per prose window
BATCH = 4  # windows or examples per step unless the config says otherwise
CHARS_PER_TOKEN = 6  # prose characters read per window token (about 4.5 in this corpus)


def aligned_examples(teacher_tokenizer: PreTrainedTokenizerBase, pieces: PieceMap,
                     examples: Sequence[Example], *, batch_size: int = BATCH,
                     max_tokens: int = 384) -> list[AlignedBatch]:
    """Prompt-and-target examples as aligned batches scored at the target's pieces only,
    tokenized as the calibration sets are (`pruning.calibration.encode_example`), batched in
    the order given."""
    encoded = [encode_example(teacher_tokenizer, e, max_tokens) for e in examples]
    encoded = [(p, t) for p, t in encoded if p and t]
    pad = teacher_tokenizer.pad_token_id or 0
    chunks = (encoded[i : i + batch_size] for i in range(0, len(encoded), batch_size))
    return [pack_aligned([p + t for p, t in chunk], pieces, [len(p) for p, _ in chunk], pad)
            for chunk in chunks]


def schedule(steps: int, share: float) -> list[bool]:
    """Which of `steps` steps take a retain batch (True) rather than prose: `share` of them,
    spread evenly."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"the reading share {share} is outside [0, 1]")
    return [int((k + 1) * share) > int(k * share) for k in range(steps)]


def retain_examples(teacher_tokenizer: PreTrainedTokenizerBase, data: CalibrationSets,
                    end_turn: bool = True) -> dict[str, list[Example]]:
    """The retain sets' examples the reading term scores (every set but the prose ones), by set;
    with `end_turn`, the reader prompts' targets (chat turns) end with the end-of-turn token,
    as the base's replies do. The reasoning tasks are plain text: their targets are left
    alone."""
    from evaluation.data import READING_KINDS

    end = teacher_tokenizer.eos_token if end_turn else None
    if end_turn and not end:
        raise ValueError("the base's tokenizer names no end-of-turn token")
    return {name: [Example(e.prompt, e.target + end) if end and name in READING_KINDS else e
                   for e in items]
            for name, items in data.retain_examples.items() if name not in PROSE_SETS and items}


def mixed(sets: dict[str, list[Example]], seed: int = 0) -> list[Example]:
    """Every set's examples in a seeded random order, dealt in turn (one of each set, then the
    next of each), so any run of as many examples as there are sets holds one of each until
    the smaller sets run out."""
    rng = random.Random(seed)
    shuffled = [rng.sample(items, len(items)) for _, items in sorted(sets.items())]
    return [items[k] for k in range(max(map(len, shuffled), default=0))
            for items in shuffled if k < len(items)]


def prose_windows(teacher_tokenizer: PreTrainedTokenizerBase, count: int,
                  everyday: float = 0.0) -> list[list[int]]:
    """`count` prose windows of `WINDOW` tokens: `everyday` of them from the base's everyday
    samples (`pruning.everyday`), the rest from the docstring corpus, each source in its own
    order, spread evenly (`schedule`)."""
    from pruning.corpus import general_corpus
    from pruning.everyday import everyday_samples

    plan = schedule(count, everyday)
    wanted = plan.count(True)
    sampled = text_windows(teacher_tokenizer, everyday_samples(), WINDOW)[:wanted]
    if len(sampled) < wanted:
        raise ValueError(f"the everyday samples fill {len(sampled)} of {wanted} windows")
    docs = text_windows(teacher_tokenizer,
                        general_corpus(CHARS_PER_TOKEN * WINDOW * (count - wanted)), WINDOW)
    if len(docs) < count - wanted:
        raise ValueError(f"the prose corpus fills {len(docs)} of {count - wanted} windows")
    sources = iter(sampled), iter(docs)
    return [next(sources[0] if from_samples else sources[1]) for from_samples in plan]


def healing_batches(teacher_tokenizer: PreTrainedTokenizerBase, pieces: PieceMap,
                    data: CalibrationSets, steps: int, share: float, seed: int = 0,
                    end_turn: bool = True, batch_size: int = BATCH,
                    everyday: float = 0.0) -> list[AlignedBatch]:
    """The batch of every step: retain batches of examples `mixed` across the sets (cycled
    when the steps outnumber them), `prose_windows` in order (`everyday` of them sampled from
    the base), interleaved by `schedule`."""
    plan = schedule(steps, share)
    retain: list[AlignedBatch] = []
    if any(plan):
        examples = retain_examples(teacher_tokenizer, data, end_turn)
        if not examples:
            raise ValueError("these calibration sets keep no retain examples to heal on")
        retain = aligned_examples(teacher_tokenizer, pieces, mixed(examples, seed),
                                  batch_size=batch_size, max_tokens=data.max_tokens)
    prose_steps = plan.count(False)
    prose = window_batches(prose_windows(teacher_tokenizer, batch_size * prose_steps, everyday),
                           pieces, batch_size)
    out, r, p = [], 0, 0
    for reading in plan:
        if reading:
            out.append(retain[r % len(retain)])
            r += 1
        else:
            out.append(prose[p])
            p += 1
    return out


def heal_with_reading(core: PreTrainedModel, base: PreTrainedModel,
                      tokenizer: PreTrainedTokenizerBase, trimmed: PreTrainedTokenizerBase,
                      data: CalibrationSets, cfg: PruneConfig,
                      max_seconds: float | None = None, end_turn: bool = True) -> dict[str, Any]:
    """Distill every parameter of `core` (tokenizer `trimmed`) from `base` (tokenizer
    `tokenizer`) for `cfg.heal_reading_steps` steps, or until `max_seconds` have passed (the
    first k steps of any run are the k-step run's: the schedule, the retain order and the
    prose are prefixes); the steps taken, their losses and what they read, for the report.
    `end_turn=False` scores the reader answers without their end-of-turn token (the first
    run's term, kept as the control)."""
    pieces = PieceMap(tokenizer, trimmed)
    batches = healing_batches(tokenizer, pieces, data, cfg.heal_reading_steps,
                              cfg.heal_reading_share, cfg.seed, end_turn,
                              cfg.heal_reading_batch, cfg.heal_reading_everyday)
    targets = aligned_targets(base, pieces, core.get_output_embeddings().out_features)
    losses = distill(core, base, batches, steps=len(batches), lr=cfg.heal_reading_lr,
                     targets=targets, max_seconds=max_seconds)
    plan = schedule(len(losses), cfg.heal_reading_share)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else float("nan")

    def ends(reading: bool) -> list[float]:
        kind = [loss for loss, r in zip(losses, plan, strict=True) if r == reading]
        return [mean(kind[:5]), mean(kind[-5:])]

    return {"heal_reading_steps_taken": len(losses), "heal_reading_end_turn": end_turn,
            "heal_reading_loss_first_last_5": {"prose": ends(False), "retain": ends(True)},
            "heal_reading_scored_tokens": sum(b.scored_tokens for b in batches[: len(losses)])}
