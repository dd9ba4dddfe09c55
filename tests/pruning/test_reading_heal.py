"""Healing with a reading retain term: answer positions only, prose and retain steps in a fixed
proportion, every parameter trained, last in the pipeline."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from pruning.calibration import CalibrationSets, Example, encode_example
from pruning.heal import PieceMap, aligned_targets
from pruning.pipeline import PruneConfig, PruneConfigError, prune
from pruning.reading_heal import (
    aligned_examples,
    healing_batches,
    mixed,
    retain_examples,
    schedule,
)
from pruning.vocab import trim_vocabulary
from tests.conftest import run_cogcore
from tests.pruning.tiny import (
    QUICK_TRIM,
    base_and_tokenizer,
    kl_to_targets,
    load_fp32,
    one_thread,  # noqa: F401 (autouse fixture)
)

EXAMPLES = [Example("Evidence: Paris is the capital of Mirrowdale. Question: what is the capital "
                    "of Mirrowdale? Answer:", " the capital, Paris"),
            Example("Two plus three is", " five")]


def _trimmed(directory: Path):  # noqa: ANN202 - the base tokenizer and its trim
    tokenizer = AutoTokenizer.from_pretrained(directory)
    return tokenizer, trim_vocabulary(load_fp32(directory), tokenizer, 300, selection="rank")


def test_examples_are_scored_at_every_piece_of_the_answer_and_nowhere_else(
    tiny_llama_dir: Path,
) -> None:
    tokenizer, trimmed = _trimmed(tiny_llama_dir)
    pieces = PieceMap(tokenizer, trimmed)
    (batch,) = aligned_examples(tokenizer, pieces, EXAMPLES, batch_size=2)
    answers = [t for e in EXAMPLES for t in encode_example(tokenizer, e, 384)[1]]
    assert any(len(pieces.pieces[t]) > 1 for t in answers), "the trim must re-split an answer"
    for b, example in enumerate(EXAMPLES):  # batched in the order given
        prompt, target = encode_example(tokenizer, example, 384)
        answer_pieces = [p for t in target for p in pieces.pieces[t]]
        scored = sorted(int(k) for row, k in batch.rows.tolist() if row == b)
        student_prompt = sum(len(pieces.pieces[t]) for t in prompt)
        # One row per answer piece: the position before each one.
        assert scored == list(range(student_prompt - 1, student_prompt - 1 + len(answer_pieces)))
        seq = batch.student_ids[b, : int(batch.student_mask[b].sum())].tolist()
        assert seq[student_prompt:] == answer_pieces
        assert all(int(j) >= len(prompt) - 1 for row, j in batch.sources.tolist() if row == b)


def test_the_schedule_spreads_the_share_and_any_prefix_is_the_shorter_run() -> None:
    assert schedule(6, 0.0) == [False] * 6 and schedule(4, 1.0) == [True] * 4
    assert schedule(8, 0.5) == [False, True] * 4
    assert sum(schedule(100, 0.3)) == 30
    assert schedule(100, 0.3)[:37] == schedule(37, 0.3)
    with pytest.raises(ValueError, match="outside"):
        schedule(4, 1.5)


def test_reader_targets_end_the_turn_and_reasoning_targets_do_not(
    tiny_llama_dir: Path, tiny_sets: CalibrationSets,
) -> None:
    tokenizer, trimmed = _trimmed(tiny_llama_dir)
    end = tokenizer.eos_token_id
    by_set = retain_examples(tokenizer, tiny_sets)
    assert "general" not in by_set and set(by_set) >= {"open_book", "counterfactual"}
    with_end = [e for items in by_set.values() for e in items]
    without = [e for items in retain_examples(tokenizer, tiny_sets, end_turn=False).values()
               for e in items]
    assert len(with_end) == len(without) > 0
    readers = {e.prompt for kind in ("open_book", "counterfactual", "fictional")
               for e in tiny_sets.retain_examples[kind]}
    assert readers and readers < {e.prompt for e in without}
    for ended, plain in zip(with_end, without, strict=True):
        target = encode_example(tokenizer, ended, 384)[1]
        if ended.prompt in readers:
            # The answer's tokens, then the end-of-turn token as one special token.
            assert target == encode_example(tokenizer, plain, 384)[1] + [end]
        else:
            assert ended == plain
    # The end-of-turn token is scored: a target row predicts it in every reader example.
    pieces = PieceMap(tokenizer, trimmed)
    reader_only = [e for e in with_end if e.prompt in readers]
    for batch in aligned_examples(tokenizer, pieces, reader_only, batch_size=2):
        for b in range(batch.student_ids.shape[0]):
            last = int(batch.student_mask[b].sum()) - 1
            assert int(batch.student_ids[b, last]) == trimmed.convert_tokens_to_ids(
                tokenizer.eos_token)
            assert (b, last - 1) in {tuple(r) for r in batch.rows.tolist()}


def test_mixed_deals_one_example_of_every_set_in_turn() -> None:
    sets = {name: [Example(f"{name} {k}", " x") for k in range(n)]
            for name, n in (("open_book", 4), ("addition", 4), ("fictional", 2))}
    order = mixed(sets, seed=3)
    assert sorted(order, key=str) == sorted((e for v in sets.values() for e in v), key=str)
    kinds = [e.prompt.split()[0] for e in order]
    assert [set(kinds[i : i + 3]) for i in (0, 3)] == [set(sets)] * 2  # one of each, twice
    assert kinds[6:] == ["addition", "open_book"] * 2  # the smaller set ran out
    assert order == mixed(sets, seed=3) and order != mixed(sets, seed=4)


def test_every_retain_batch_holds_every_set(
    tiny_llama_dir: Path, tiny_sets: CalibrationSets,
) -> None:
    tokenizer, trimmed = _trimmed(tiny_llama_dir)
    by_set = retain_examples(tokenizer, tiny_sets)
    owner: dict[tuple[int, ...], set[str]] = {}  # each example's whole sequence: its sets
    for name, items in by_set.items():
        for e in items:
            prompt, target = encode_example(tokenizer, e, tiny_sets.max_tokens)
            owner.setdefault(tuple(prompt + target), set()).add(name)
    batches = healing_batches(tokenizer, PieceMap(tokenizer, trimmed), tiny_sets, 4, 1.0,
                              batch_size=len(by_set))
    smallest = min(map(len, by_set.values()))
    for batch in batches[:smallest]:
        assert batch.teacher_ids.shape[0] == len(by_set)
        read: set[str] = set()
        for row in batch.teacher_ids.tolist():  # right-padded: each row opens with its example
            read |= {n for seq, names in owner.items() if row[: len(seq)] == list(seq)
                     for n in names}
        assert read == set(by_set)


def test_healing_batches_never_read_the_fact_questions(
    tiny_llama_dir: Path, tiny_sets: CalibrationSets,
) -> None:
    tokenizer, trimmed = _trimmed(tiny_llama_dir)
    batches = healing_batches(tokenizer, PieceMap(tokenizer, trimmed), tiny_sets, 6, 0.5)
    retain = batches[1::2]
    assert len(batches) == 6 and all(b.teacher_ids.shape[1] == 128 for b in batches[0::2])
    read = {tuple(row[row != (tokenizer.pad_token_id or 0)].tolist())
            for b in retain for row in b.teacher_ids}
    facts = {tuple(row[mask.bool()].tolist())
             for fb in tiny_sets.facts for row, mask in zip(fb.input_ids, fb.attention_mask,
                                                            strict=True)}
    assert read and not read & facts


def test_the_pipeline_heals_every_parameter_last_and_lowers_the_retain_kl(
    tiny_llama_dir: Path, tiny_sets: CalibrationSets,
) -> None:
    base, tokenizer = base_and_tokenizer(tiny_llama_dir)
    cfg = QUICK_TRIM
    plain = prune(base, tiny_sets, cfg, tokenizer)
    healed = prune(base, tiny_sets, replace(cfg, heal_reading_steps=12, heal_reading_lr=3e-3,
                                            heal_reading_share=1.0), tokenizer)
    before = plain.model.state_dict()
    changed = {k for k, v in healed.model.state_dict().items() if not torch.equal(v, before[k])}
    assert "model.layers.0.mlp.down_proj.weight" in changed
    assert "model.embed_tokens.weight" in changed
    assert healed.details["heal_reading_steps_taken"] == 12
    assert "heal_reading" in healed.seconds

    pieces = PieceMap(tokenizer, healed.tokenizer)
    batches = aligned_examples(tokenizer, pieces, [e for name, items in
                                                   tiny_sets.retain_examples.items()
                                                   if name != "general" for e in items])
    targets = aligned_targets(base, pieces, 300)

    assert kl_to_targets(healed.model, targets, batches) < 0.8 * kl_to_targets(
        plain.model, targets, batches)


def test_healing_needs_the_tokenizer_and_a_share_in_range(
    tiny_llama_dir: Path, tiny_sets: CalibrationSets,
) -> None:
    base = load_fp32(tiny_llama_dir)
    with pytest.raises(PruneConfigError, match="base's tokenizer"):
        prune(base, tiny_sets, PruneConfig(method="random", width=96, heal_reading_steps=2))
    with pytest.raises(PruneConfigError, match="outside"):
        prune(base, tiny_sets, PruneConfig(method="random", width=96, heal_reading_steps=2,
                                           heal_reading_share=2.0))


def test_cogcore_prune_records_the_healing_in_the_recipe(tiny_llama_dir: Path,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "core"
    result = run_cogcore(
        "prune", "--base", str(tiny_llama_dir), "--method", "random", "--sparsity", "0.25",
        "--vocab-size", "300", "--vocab-selection", "rank", "--calibration", "3",
        "--heal-reading-steps", "3", "--heal-reading-share", "0.34", "--eval", "none",
        "--device", "cpu", "--out", str(out), env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "core_report.json").read_text())
    assert (report["config"]["heal_reading_steps"], report["config"]["heal_reading_share"]) == (
        3, 0.34)
    assert report["details"]["heal_reading_steps_taken"] == 3
    bad = run_cogcore("prune", "--base", str(tiny_llama_dir), "--sparsity", "0.25",
                      "--heal-reading-share", "1.5", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "heal-reading-share" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_prose_windows_take_their_everyday_share_from_the_samples_spread_evenly(
    tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pruning import corpus, everyday, reading_heal

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    stories = [f"Story {k}: the kettle boiled while the rain fell on the quiet street." * 20
               for k in range(4)]
    docs = [f"Doc {k}: returns the value of the attribute named in the argument." * 20
            for k in range(40)]
    monkeypatch.setattr(everyday, "everyday_samples", lambda: stories)
    monkeypatch.setattr(corpus, "general_corpus", lambda max_chars=None: docs)
    from_stories = reading_heal.text_windows(tokenizer, stories, reading_heal.WINDOW)
    from_docs = reading_heal.text_windows(tokenizer, docs, reading_heal.WINDOW)

    windows = reading_heal.prose_windows(tokenizer, 8, everyday=0.25)
    assert windows == [from_docs[0], from_docs[1], from_docs[2], from_stories[0],
                       from_docs[3], from_docs[4], from_docs[5], from_stories[1]]
    assert reading_heal.prose_windows(tokenizer, 5) == from_docs[:5]
    with pytest.raises(ValueError, match="everyday samples fill"):
        reading_heal.prose_windows(tokenizer, len(from_stories) + 1, everyday=1.0)


def test_the_committed_everyday_samples_answer_every_prompt_and_avoid_the_perplexity_texts(
) -> None:
    from pruning import everyday
    from pruning.corpus import disjoint_from_perplexity

    record = json.loads(everyday.SAMPLES_FILE.read_text(encoding="utf-8"))
    assert [s["prompt"] for s in record["samples"]] == everyday.prompts()
    texts = everyday.everyday_samples()
    assert len(texts) >= 0.95 * len(record["samples"])
    assert disjoint_from_perplexity(texts) == texts
    assert sum(len(t) for t in texts) > 100_000
