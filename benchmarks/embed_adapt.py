"""Embedding adaptation after a vocabulary trim: the tied embedding matrix alone, distilled from
the base reading its own tokens (`pruning.heal.aligned_targets`), then measured against the base.

The student is the base trimmed in memory by a rule of `benchmarks/vocab_trim.py` (`--rule`), or
a checkpoint whose vocabulary is already trimmed (`--checkpoint`, e.g. the default core). The
training text is the offline prose corpus (`pruning.corpus.general_corpus`, built without the
evaluation's perplexity texts; checked again here). Usage:

    python benchmarks/embed_adapt.py --eval docs/pruning/core-v2-eval/eval.json --rule rank \
        --seconds 420 --before docs/pruning/vocab-trim/rank.json \
        --out docs/pruning/embed-adapt-rank.json

Writes OUT (the figures with per-item results, the training cost and the paired ratios against
the base's full run and against `--before`, the same model unadapted).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from evaluation.compare import paired_ratios
from evaluation.partial import run_model

SUITES = "open_book,counterfactual,fictional,perplexity,perplexity_second,perplexity_third"


def training_texts(chars: int) -> list[str]:
    """`chars` of the prose corpus; refuses any paragraph that shares a shingle with the
    evaluation's perplexity texts."""
    from pruning import corpus

    texts = corpus.general_corpus(chars)
    def shingles(text: str) -> set[int]:
        return set(corpus._shingles(corpus._words(text)))

    held_out = set().union(*map(shingles, corpus.perplexity_texts()))
    leaks = [t for t in texts if not held_out.isdisjoint(shingles(t))]
    if leaks:
        raise SystemExit(f"{len(leaks)} training paragraphs overlap the perplexity texts")
    return texts


def student(args: argparse.Namespace, base: Path):  # noqa: ANN201 - a model and its tokenizer
    from cogcore.checkpoint import load_causal_lm

    if args.checkpoint is not None:
        return load_causal_lm(args.checkpoint)
    from vocab_trim import keep_for  # benchmarks/ is the script's directory

    from pruning import vocab

    model, tokenizer = load_causal_lm(base)
    return model, vocab.trim_vocabulary(model, tokenizer, keep=keep_for(args.rule, base, args.size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, required=True, help="the base's full eval.json")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--rule", help="a trim rule of vocab_trim.py: rank or use:SHORT:SHARE")
    source.add_argument("--checkpoint", type=Path, help="a checkpoint with a trimmed vocabulary")
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--seconds", type=float, default=420, help="training time budget")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--prose-chars", type=int, default=2_000_000)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--skip", type=int, default=0,
                        help="training batches to pass over (those a previous run trained on)")
    parser.add_argument("--suites", default=SUITES)
    parser.add_argument("--tasks", default="addition")
    parser.add_argument("--before", type=Path, help="the unadapted model's figures (partial run)")
    parser.add_argument("--save", type=Path, help="also save the adapted checkpoint here")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import torch

    from cogcore.checkpoint import load_causal_lm, save_checkpoint
    from pruning.heal import PieceMap, aligned_batches, aligned_targets, distill, embeddings_only

    torch.manual_seed(0)
    full = json.loads(args.eval.read_text())
    base = Path(full["model"])
    teacher, teacher_tokenizer = load_causal_lm(base)
    model, tokenizer = student(args, base)
    pieces = PieceMap(teacher_tokenizer, tokenizer)
    batches = aligned_batches(teacher_tokenizer, pieces, training_texts(args.prose_chars),
                              window=args.window, batch_size=args.batch)[args.skip :]
    started = time.perf_counter()
    losses = distill(model, teacher, batches, steps=len(batches), lr=args.lr,
                     trainable=embeddings_only, max_seconds=args.seconds,
                     targets=aligned_targets(teacher, pieces,
                                             model.get_output_embeddings().out_features))
    seconds = time.perf_counter() - started
    del teacher
    if args.save is not None:
        save_checkpoint(model, tokenizer, args.save)
    name = f"{args.checkpoint or base} ({args.rule or 'as built'}), embeddings adapted"
    result = run_model(model, tokenizer, name, args.out, args.suites.split(","),
                       args.tasks.split(","))
    result["training"] = {
        "command": "python benchmarks/embed_adapt.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None),
        "steps": len(losses), "seconds": seconds, "lr": args.lr,
        "scored_tokens": sum(b.scored_tokens for b in batches[: len(losses)]),
        "student_tokens": sum(int(b.student_mask.sum()) for b in batches[: len(losses)]),
        "loss_first_last": [losses[0], losses[-1]] if losses else [],
        "loss_mean_first_last_5": [sum(losses[:5]) / 5, sum(losses[-5:]) / 5],
        "threads": torch.get_num_threads()}
    result["against_base"] = paired_ratios(full, result)
    if args.before is not None:
        result["against_before"] = paired_ratios(json.loads(args.before.read_text()), result)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for key in ("against_base", "against_before"):
        for label, entry in result.get(key, {}).items():
            print(f"{key} {label}: {entry['ratio']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]")
    print(json.dumps(result["training"], indent=2))


if __name__ == "__main__":
    main()
