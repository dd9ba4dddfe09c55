"""Healing a pruned model by distillation from the base (KL between next-token
distributions on retain text and prose), after any vocabulary trim, so that the core learns its
own tokenization of the same text. The least-squares refit that comes before it is
`pruning.refit`.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from cogcore.progress import track
from pruning.calibration import Batch

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


Targets = Callable[[Any], tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]
"""A batch -> the student's input ids and attention mask, where it is scored, and the target
probabilities over the student's vocabulary at those positions (row-major order)."""


def same_ids_targets(teacher: PreTrainedModel, vocab: int,
                     teacher_ids: torch.Tensor | None = None) -> Targets:
    """The teacher on the student's tokens, renormalized over the student's vocabulary.

    `teacher_ids[s]` is the teacher's id of the student's token s (`student_ids_in_teacher`),
    as after a trim that re-indexes; None: the student's ids are the teacher's first `vocab`.
    After a trim alone (no other change) the two agree exactly: see `aligned_targets`.
    """

    @torch.no_grad()
    def targets(batch: Batch) -> tuple[torch.Tensor, ...]:
        batch = batch.to(teacher.device)
        real = batch.attention_mask.bool()
        ids = batch.input_ids if teacher_ids is None else teacher_ids.to(teacher.device)[
            batch.input_ids]
        logits = teacher(input_ids=ids, attention_mask=batch.attention_mask).logits[real]
        logits = logits[:, :vocab] if teacher_ids is None else logits[:, teacher_ids]
        return batch.input_ids, batch.attention_mask, real, logits.float().softmax(-1)

    return targets


def student_ids_in_teacher(teacher_tokenizer: PreTrainedTokenizerBase,
                           student_tokenizer: PreTrainedTokenizerBase) -> torch.Tensor:
    """The teacher's id of each of the student's tokens, in the student's id order."""
    full = teacher_tokenizer.get_vocab()
    kept = sorted(student_tokenizer.get_vocab().items(), key=lambda item: item[1])
    if [i for _, i in kept] != list(range(len(kept))):
        raise ValueError("the student's token ids are not 0..N-1")
    return torch.tensor([full[token] for token, _ in kept])


def embeddings_only(name: str) -> bool:
    """The parameter filter of an embedding adaptation: the (tied) token embedding matrix."""
    return "embed_tokens" in name or name.endswith("lm_head.weight")


def distill(
    student: PreTrainedModel,
    teacher: PreTrainedModel,
    batches: Sequence[Any],
    *,
    steps: int,
    lr: float = 5e-5,
    trainable: Callable[[str], bool] | None = None,
    targets: Targets | None = None,
    max_seconds: float | None = None,
) -> list[float]:
    """A short KL(teacher ‖ student) distillation; returns the loss per step.

    By default on the student's ids with every parameter trained (`same_ids_targets`);
    `trainable` picks the parameters by name (the rest stay frozen), `targets` the teacher's
    view (`aligned_targets`: the teacher reads its own tokens), `max_seconds` stops it early.
    """
    if steps <= 0:
        return []
    targets = targets or same_ids_targets(teacher, student.get_output_embeddings().out_features)
    named = dict(student.named_parameters())
    params = [p for name, p in named.items() if trainable is None or trainable(name)]
    if not params:
        raise ValueError("no parameter of the student matches the filter")
    frozen = [p for p in named.values()
              if p.requires_grad and not any(p is q for q in params)]
    for p in frozen:
        p.requires_grad_(False)
    student.train()
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    losses: list[float] = []
    cycle, started = itertools.cycle(batches), time.perf_counter()
    try:
        for _ in track(range(steps), "distilling from the base"):
            if max_seconds is not None and time.perf_counter() - started > max_seconds:
                break
            input_ids, mask, where, probs = targets(next(cycle))
            logits = student(input_ids=input_ids.to(student.device),
                             attention_mask=mask.to(student.device)).logits
            logp = logits[where.to(student.device)].float().log_softmax(-1)
            probs = probs.to(logp.device)
            # KL(p ‖ q) = Σ p log p − Σ p log q; p may hold zeros (xlogy(0, 0) = 0).
            loss = (torch.xlogy(probs, probs) - probs * logp).sum(-1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            losses.append(float(loss.detach()))
    finally:
        for p in frozen:
            p.requires_grad_(True)
        student.eval()
    return losses


class PieceMap:
    """How a trimmed tokenizer splits each token of the full one (its BPE applied to the token).

    `first[t]`: the student id of teacher token t's first piece. `continuing[prefix]`: the
    teacher tokens whose pieces start with `prefix` and go on, and the piece that follows it.
    """

    def __init__(self, teacher_tokenizer: PreTrainedTokenizerBase,
                 student_tokenizer: PreTrainedTokenizerBase) -> None:
        full, kept = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
        bpe = student_tokenizer.backend_tokenizer.model
        self.pieces: list[tuple[int, ...]] = [()] * (max(full.values()) + 1)
        for token, tid in full.items():
            self.pieces[tid] = ((kept[token],) if token in kept
                                else tuple(piece.id for piece in bpe.tokenize(token)))
        if not all(self.pieces):
            raise ValueError("a token of the full vocabulary has no pieces in the trimmed one")
        self.first = torch.tensor([p[0] for p in self.pieces])
        grouped: dict[tuple[int, ...], list[tuple[int, int]]] = defaultdict(list)
        for tid, pieces in enumerate(self.pieces):
            for depth in range(1, len(pieces)):
                grouped[pieces[:depth]].append((tid, pieces[depth]))
        self.continuing = {key: (torch.tensor([t for t, _ in pairs]),
                                 torch.tensor([n for _, n in pairs]))
                           for key, pairs in grouped.items()}


@dataclass(frozen=True)
class AlignedBatch:
    """Windows of text as the teacher's ids and as the student's pieces of those ids.

    Student position `rows[i]` (batch, position) predicts from the teacher's distribution at
    `sources[i]`: the next teacher token's first piece when `prefixes[i]` is None (the student
    is at a teacher token's end), else the piece after `prefixes[i]` inside the same token.
    """

    teacher_ids: torch.Tensor
    student_ids: torch.Tensor
    student_mask: torch.Tensor
    rows: torch.Tensor
    sources: torch.Tensor
    prefixes: list[tuple[int, ...] | None]

    @property
    def scored_tokens(self) -> int:
        """How many student positions carry a target."""
        return len(self.prefixes)


def _align(teacher_ids: Sequence[int], pieces: PieceMap, start: int, b: int,
           rows: list, sources: list, prefixes: list) -> list[int]:
    """The student's pieces of `teacher_ids`; appends a target row (see `AlignedBatch`) for
    every piece that predicts a piece of teacher token `start` (>= 1) or a later one."""
    seq: list[int] = []
    for j, tid in enumerate(teacher_ids):
        split = pieces.pieces[tid]
        for i in range(len(split)):
            if i == len(split) - 1 and start <= j + 1 < len(teacher_ids):
                rows.append((b, len(seq) + i)), sources.append((b, j))
                prefixes.append(None)
            elif i < len(split) - 1 and j >= start:
                rows.append((b, len(seq) + i)), sources.append((b, j - 1))
                prefixes.append(split[: i + 1])
        seq.extend(split)
    return seq


def pack_aligned(teacher_seqs: Sequence[Sequence[int]], pieces: PieceMap,
                 starts: Sequence[int], pad_id: int = 0) -> AlignedBatch:
    """One batch of teacher token sequences (right-padded with `pad_id`: the teacher is causal,
    so padding after a sequence changes none of its positions), scored from `starts[b]` on."""
    seqs: list[list[int]] = []
    rows: list = []
    sources: list = []
    prefixes: list = []
    for b, (ids, start) in enumerate(zip(teacher_seqs, starts, strict=True)):
        if start < 1:
            raise ValueError("the teacher has no distribution for its first token")
        seqs.append(_align(ids, pieces, start, b, rows, sources, prefixes))
    teacher = torch.full((len(seqs), max(map(len, teacher_seqs))), pad_id, dtype=torch.long)
    student = torch.zeros(len(seqs), max(map(len, seqs)), dtype=torch.long)
    mask = torch.zeros_like(student)
    for b, (ids, seq) in enumerate(zip(teacher_seqs, seqs, strict=True)):
        teacher[b, : len(ids)] = torch.tensor(list(ids))
        student[b, : len(seq)], mask[b, : len(seq)] = torch.tensor(seq), 1
    return AlignedBatch(teacher, student, mask, torch.tensor(rows), torch.tensor(sources),
                        prefixes)


def aligned_batches(teacher_tokenizer: PreTrainedTokenizerBase, pieces: PieceMap,
                    texts: Sequence[str], *, window: int = 128,
                    batch_size: int = 8) -> list[AlignedBatch]:
    """`texts` (joined by blank lines) cut into windows of `window` teacher tokens, batched;
    every position after a window's first token is scored."""
    return window_batches(text_windows(teacher_tokenizer, texts, window), pieces, batch_size)


def text_windows(teacher_tokenizer: PreTrainedTokenizerBase, texts: Sequence[str],
                 window: int = 128) -> list[list[int]]:
    """`texts` joined by blank lines, as consecutive windows of `window` teacher token ids."""
    # One long text, cut into windows here: the model-length warning does not apply.
    ids = teacher_tokenizer("\n\n".join(texts), add_special_tokens=False,
                            verbose=False)["input_ids"]
    return [ids[i : i + window] for i in range(0, len(ids) - window + 1, window)]


def window_batches(windows: Sequence[list[int]], pieces: PieceMap,
                   batch_size: int = 8) -> list[AlignedBatch]:
    """Token windows in batches of `batch_size`, every position after a window's first scored."""
    return [pack_aligned(windows[start : start + batch_size], pieces,
                         [1] * len(windows[start : start + batch_size]))
            for start in range(0, len(windows), batch_size)]


def aligned_targets(teacher: PreTrainedModel, pieces: PieceMap, vocab: int) -> Targets:
    """The teacher reading its own tokens, its next-token distribution marginalized onto the
    student's next piece (the first piece of the next token, or the next piece of this one).

    The only teacher view that teaches a trimmed model anything about its new splits: on the
    student's own ids the teacher is the trimmed model's unchanged ancestor.
    """

    @torch.no_grad()
    def targets(batch: AlignedBatch) -> tuple[torch.Tensor, ...]:
        logits = teacher(input_ids=batch.teacher_ids.to(teacher.device)).logits
        probs = logits[..., : len(pieces.pieces)].float().softmax(-1)
        source = probs[batch.sources[:, 0], batch.sources[:, 1]].cpu()
        out = torch.zeros(len(source), vocab)
        ends = torch.tensor([p is None for p in batch.prefixes])
        out[ends] = out[ends].index_add_(1, pieces.first, source[ends])
        for i, prefix in enumerate(batch.prefixes):
            if prefix is None:
                continue
            ids, following = pieces.continuing[prefix]
            out[i].index_add_(0, following, source[i, ids])
            total = out[i].sum()
            if total > 0:
                out[i] /= total
            else:  # the teacher gave the token itself no mass in float32: the text decides
                b, k = batch.rows[i]
                out[i, batch.student_ids[b, k + 1]] = 1.0
        where = torch.zeros_like(batch.student_mask, dtype=torch.bool)
        where[batch.rows[:, 0], batch.rows[:, 1]] = True
        return batch.student_ids, batch.student_mask, where, out

    return targets
