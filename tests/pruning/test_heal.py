"""Healing: the least-squares refit (exact without a cut, closer to the teacher with one) and
distillation, also onto a trimmed vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from pruning.calibration import Batch, calibration_sets
from pruning.compact import compact_mlp, intermediate_size, keep_top
from pruning.heal import distill
from pruning.refit import refit_down_proj
from pruning.scoring import score_random
from pruning.vocab import trim_vocabulary
from tests.pruning.tiny import load_fp32, one_thread  # noqa: F401 (autouse fixture)


def _batches(directory: Path) -> list[Batch]:
    tokenizer = AutoTokenizer.from_pretrained(directory)
    return calibration_sets(tokenizer, 4, batch_size=4, max_tokens=96).retain_batches()


def _logit_error(student, teacher, batches: list[Batch]) -> float:
    with torch.no_grad():
        return sum(float((student(input_ids=b.input_ids, attention_mask=b.attention_mask).logits
                          - teacher(input_ids=b.input_ids, attention_mask=b.attention_mask).logits
                          )[b.attention_mask.bool()].pow(2).mean()) for b in batches)


@pytest.mark.parametrize(("sequential", "target"),
                         [(True, "mlp"), (False, "mlp"), (True, "residual")])
def test_refit_without_a_cut_reproduces_the_teacher(tiny_checkpoint: Path, sequential: bool,
                                                    target: str) -> None:
    teacher, student = load_fp32(tiny_checkpoint), load_fp32(tiny_checkpoint)
    batches = _batches(tiny_checkpoint)
    with torch.no_grad():
        for mlp in student.model.layers:
            mlp.mlp.down_proj.weight.mul_(0.5)  # wrong on purpose: the refit must undo it
    residuals = refit_down_proj(student, teacher, batches, sequential=sequential, ridge=1e-9,
                                target=target)
    assert max(residuals) < 1e-6
    assert _logit_error(student, teacher, batches) < 1e-6


def test_refit_after_a_cut_moves_the_student_towards_the_teacher(tiny_checkpoint: Path) -> None:
    teacher, student = load_fp32(tiny_checkpoint), load_fp32(tiny_checkpoint)
    batches = _batches(tiny_checkpoint)
    width = intermediate_size(student) * 3 // 4
    compact_mlp(student, keep_top(score_random(student, seed=1), width))
    before = _logit_error(student, teacher, batches)
    residuals = refit_down_proj(student, teacher, batches)
    assert len(residuals) == student.config.num_hidden_layers and max(residuals) < 1.0
    assert _logit_error(student, teacher, batches) < 0.9 * before


def _last_state_error(student, teacher, batches: list[Batch]) -> float:
    """Squared distance of the student's last hidden states from the teacher's, real tokens."""
    with torch.no_grad():
        return sum(float((
            student(input_ids=b.input_ids, attention_mask=b.attention_mask,
                    output_hidden_states=True).hidden_states[-1]
            - teacher(input_ids=b.input_ids, attention_mask=b.attention_mask,
                      output_hidden_states=True).hidden_states[-1]
        )[b.attention_mask.bool()].pow(2).sum()) for b in batches)


def test_the_residual_target_corrects_the_drift_the_mlp_target_leaves(
    tiny_checkpoint: Path,
) -> None:
    """After the same cut, fitting each MLP to the teacher's stream lands the last layer nearer
    the teacher's states than fitting it to the teacher MLP's output on drifted inputs."""
    teacher, batches = load_fp32(tiny_checkpoint), _batches(tiny_checkpoint)
    keep = keep_top(score_random(teacher, seed=1), intermediate_size(teacher) // 2)
    errors = {}
    for target in ("mlp", "residual"):
        student = compact_mlp(load_fp32(tiny_checkpoint), keep)
        refit_down_proj(student, teacher, batches, target=target)
        errors[target] = _last_state_error(student, teacher, batches)
    assert errors["residual"] < 0.9 * errors["mlp"], errors


def test_the_residual_target_refuses_a_refit_on_the_teachers_states(
    tiny_checkpoint: Path,
) -> None:
    teacher, student = load_fp32(tiny_checkpoint), load_fp32(tiny_checkpoint)
    with pytest.raises(ValueError, match="sequential only"):
        refit_down_proj(student, teacher, _batches(tiny_checkpoint), sequential=False,
                        target="residual")
    with pytest.raises(ValueError, match="refit target"):
        refit_down_proj(student, teacher, _batches(tiny_checkpoint), target="logits")


def _kept_kl(student, teacher, batches: list[Batch]) -> float:
    """KL(teacher ‖ student) over the student's (kept) ids, summed over the batches' tokens."""
    vocab = student.config.vocab_size
    total = 0.0
    with torch.no_grad():
        for b in batches:
            real = b.attention_mask.bool()
            s = student(input_ids=b.input_ids, attention_mask=b.attention_mask).logits[real]
            t = teacher(input_ids=b.input_ids, attention_mask=b.attention_mask).logits[real]
            total += float(torch.nn.functional.kl_div(
                s.log_softmax(-1), t[:, :vocab].log_softmax(-1), log_target=True,
                reduction="sum"))
    return total


def test_distillation_after_a_vocabulary_trim_heals_on_the_cores_own_tokens(
    tiny_checkpoint: Path,
) -> None:
    teacher, student = load_fp32(tiny_checkpoint), load_fp32(tiny_checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    sets = calibration_sets(tokenizer, 4, batch_size=4, max_tokens=96)
    with torch.no_grad():
        compact_mlp(student, keep_top(score_random(student, 0), 64))
    trimmed = trim_vocabulary(student, tokenizer, 300, selection="rank")  # no corpus to count
    batches = sets.retain_batches_for(trimmed)
    assert max(int(b.input_ids.max()) for b in batches) < 300 <= max(
        int(b.input_ids.max()) for b in sets.retain_batches()), "the core's own token ids"
    before = _kept_kl(student, teacher, batches)
    losses = distill(student, teacher, batches, steps=30, lr=1e-4)
    assert len(losses) == 30
    assert _kept_kl(student, teacher, batches) < 0.8 * before
