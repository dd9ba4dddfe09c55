"""The least-squares refit: exact when nothing is cut, closer to the teacher when something is."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from pruning.calibration import Batch, calibration_sets
from pruning.compact import compact_mlp, intermediate_size, keep_top
from pruning.heal import refit_down_proj
from pruning.scoring import score_random
from tests.pruning.tiny import load_fp32, one_thread  # noqa: F401 (autouse fixture)


def _batches(directory: Path) -> list[Batch]:
    tokenizer = AutoTokenizer.from_pretrained(directory)
    return calibration_sets(tokenizer, 4, batch_size=4, max_tokens=96).retain_batches()


def _logit_error(student, teacher, batches: list[Batch]) -> float:
    with torch.no_grad():
        return sum(float((student(input_ids=b.input_ids, attention_mask=b.attention_mask).logits
                          - teacher(input_ids=b.input_ids, attention_mask=b.attention_mask).logits
                          )[b.attention_mask.bool()].pow(2).mean()) for b in batches)


@pytest.mark.parametrize("sequential", [True, False])
def test_refit_without_a_cut_reproduces_the_teacher(tiny_checkpoint: Path,
                                                    sequential: bool) -> None:
    teacher, student = load_fp32(tiny_checkpoint), load_fp32(tiny_checkpoint)
    batches = _batches(tiny_checkpoint)
    with torch.no_grad():
        for mlp in student.model.layers:
            mlp.mlp.down_proj.weight.mul_(0.5)  # wrong on purpose: the refit must undo it
    residuals = refit_down_proj(student, teacher, batches, sequential=sequential, ridge=1e-9)
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
