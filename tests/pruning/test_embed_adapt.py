"""Embedding adaptation after a vocabulary trim: the teacher reads its own tokens, its targets
are marginalized onto the trimmed tokenizer's pieces, and only the embedding matrix learns."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from pruning.calibration import Batch, CalibrationSets
from pruning.heal import (
    PieceMap,
    aligned_batches,
    aligned_targets,
    distill,
    embeddings_only,
    same_ids_targets,
    student_ids_in_teacher,
)
from pruning.pipeline import PruneConfig, PruneConfigError, prune
from pruning.vocab import base_tokens, closure, parents, tokenizer_spec, trim_vocabulary
from tests.pruning.tiny import (
    QUICK_TRIM,
    base_and_tokenizer,
    kl_to_targets,
    load_fp32,
    one_thread,  # noqa: F401 (autouse fixture)
)

TEXT = ("The baker kneads the dough while the kettle boils, and the children count the loaves "
        "on the table before breakfast. ") * 6


def _trimmed(directory: Path):  # noqa: ANN202 - teacher, student and both tokenizers
    teacher, student = load_fp32(directory), load_fp32(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    return teacher, student, tokenizer, trim_vocabulary(student, tokenizer, 300, selection="rank")


def test_the_pieces_of_every_token_are_the_trimmed_tokenizers_split(tiny_llama_dir: Path) -> None:
    _, _, tokenizer, trimmed = _trimmed(tiny_llama_dir)
    pieces = PieceMap(tokenizer, trimmed)
    full = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    assert any(len(pieces.pieces[t]) > 1 for t in full), "the trim must re-split some token"
    assert [p for t in full for p in pieces.pieces[t]] == trimmed(
        TEXT, add_special_tokens=False)["input_ids"]


def test_on_its_own_ids_the_teacher_of_a_trim_alone_teaches_nothing(tiny_llama_dir: Path) -> None:
    teacher, student, tokenizer, trimmed = _trimmed(tiny_llama_dir)
    batches = aligned_batches(tokenizer, PieceMap(tokenizer, trimmed), [TEXT], window=32)
    same = [Batch(b.student_ids, b.student_mask, b.student_mask.bool()) for b in batches]
    assert abs(kl_to_targets(student, same_ids_targets(teacher, 300), same)) < 1e-3
    aligned = aligned_targets(teacher, PieceMap(tokenizer, trimmed), 300)
    assert kl_to_targets(student, aligned, batches) > 1


def test_embedding_adaptation_changes_only_the_embeddings_and_lowers_thekl_to_targets(
    tiny_llama_dir: Path,
) -> None:
    teacher, student, tokenizer, trimmed = _trimmed(tiny_llama_dir)
    pieces = PieceMap(tokenizer, trimmed)
    batches = aligned_batches(tokenizer, pieces, [TEXT], window=32, batch_size=4)
    targets = aligned_targets(teacher, pieces, 300)
    before_params = {n: p.detach().clone() for n, p in student.named_parameters()}
    before = kl_to_targets(student, targets, batches)
    losses = distill(student, teacher, batches, steps=20, lr=1e-2, trainable=embeddings_only,
                     targets=targets)
    assert len(losses) == 20
    changed = {n for n, p in student.named_parameters() if not torch.equal(p, before_params[n])}
    assert changed == {"model.embed_tokens.weight"}
    assert all(p.requires_grad for p in student.parameters()), "the filter's freeze is undone"
    assert kl_to_targets(student, targets, batches) < 0.8 * before


def test_the_pipeline_adapts_only_the_cores_embeddings_after_its_trim(
    tiny_llama_dir: Path, tiny_sets: CalibrationSets,
) -> None:
    base, tokenizer = base_and_tokenizer(tiny_llama_dir)
    cfg = QUICK_TRIM
    plain = prune(base, tiny_sets, cfg, tokenizer).model.state_dict()
    adapted = prune(base, tiny_sets, replace(cfg, adapt_embeddings_steps=2), tokenizer)
    changed = {k for k, v in adapted.model.state_dict().items() if not torch.equal(v, plain[k])}
    assert changed <= {"model.embed_tokens.weight", "lm_head.weight"}
    assert "model.embed_tokens.weight" in changed
    assert len(adapted.details["adapt_embeddings_loss_first_last"]) == 2
    with pytest.raises(PruneConfigError, match="vocabulary trim"):
        prune(base, tiny_sets, PruneConfig(method="random", width=96, adapt_embeddings_steps=2))


def test_healing_after_a_reindexing_trim_shows_the_teacher_its_own_tokens(
    tiny_llama_dir: Path,
) -> None:
    teacher, student = load_fp32(tiny_llama_dir), load_fp32(tiny_llama_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    # The tokens of TEXT (and the byte alphabet, closed under BPE ancestry): ids re-indexed.
    spec = tokenizer_spec(tokenizer)
    used = tokenizer.convert_ids_to_tokens(tokenizer(TEXT, add_special_tokens=False)["input_ids"])
    trimmed = trim_vocabulary(student, tokenizer,
                              keep=closure(base_tokens(spec) | set(used), parents(spec)))
    ids = student_ids_in_teacher(tokenizer, trimmed)
    assert not torch.equal(ids, torch.arange(len(ids))), "this trim must re-index"
    encoded = trimmed([TEXT], return_tensors="pt", add_special_tokens=False)
    batch = [Batch(encoded["input_ids"], encoded["attention_mask"],
                   encoded["attention_mask"].bool())]
    vocab = len(ids)
    assert abs(kl_to_targets(student, same_ids_targets(teacher, vocab, ids), batch)) < 1e-3
    # Read as the wrong tokens:
    assert kl_to_targets(student, same_ids_targets(teacher, vocab), batch) > 1
