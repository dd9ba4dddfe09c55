"""What a vocabulary trim alone costs: keep-set rules at one size, no neuron cut, against the base.

Each rule trims the base's vocabulary in memory and runs the reading suites and both perplexity
texts at the full evaluation's sizes (`evaluation.partial`), paired item by item (window by window
for perplexity) with the base's results in a full `cogcore eval` run. A rule is
`NAME=rank` (the ids below the size: merge rank), `NAME=use:SHORT:WORD_SHARE` (the keep-set
by use of `pruning.vocab` with pieces of up to SHORT letters and that share of the fill's weight
from word frequencies) or `NAME=file:PATH` (a keep-set written by `pruning.keep_set_build`).
`--suites` may add closed_book: what the trim forgets. Usage:

    python benchmarks/vocab_trim.py --eval docs/pruning/core-v2-eval/eval.json --size 16384 \
        rank=rank use=use:2:0.5 --out docs/pruning/vocab-trim

Writes OUT/vocab-trim.json and OUT/vocab-trim.md (and OUT/<name>.json per rule, reused when
present).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from evaluation.compare import PERPLEXITY, paired_ratios
from evaluation.partial import run_model, with_suites_of

DEFAULT_SUITES = ("open_book", "counterfactual", "fictional", "perplexity", "perplexity_second",
                  "perplexity_third")
SUITES = ("closed_book", *DEFAULT_SUITES)
FIGURES = ("closed-book heldout", "closed-book paraphrase", "open-book",
           "counterfactual faithfulness", "fictional", *(label for label, _ in PERPLEXITY))


def keep_for(rule: str, base: Path, size: int) -> list[str]:
    """The keep-set of `size` tokens that `rule` picks for the tokenizer at `base`."""
    from transformers import AutoTokenizer

    from pruning import vocab

    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    spec = vocab.tokenizer_spec(tokenizer)
    if rule == "rank":
        return vocab.rank_keep(spec, size)
    if rule.startswith("file:"):
        keep = vocab.read_keep_set(Path(rule.removeprefix("file:")), spec, size)
        if keep is None:
            raise SystemExit(f"{rule}: no keep-set of {size} tokens for this tokenizer")
        return keep
    kind, short, share = rule.split(":")
    if kind != "use":
        raise SystemExit(f"unknown rule {rule!r}: rank, use:SHORT:WORD_SHARE or file:PATH")
    counts, required = vocab.use_counts(tokenizer, word_share=float(share))
    return vocab.select_keep_set(spec, size, counts, short_letters=int(short),
                                 required=required)


def evaluate(rule: str, base: Path, size: int, out: Path, suites: tuple[str, ...]) -> dict:
    """The trim-only model's figures on `suites`, written to `out`."""
    import torch

    from cogcore.checkpoint import load_causal_lm
    from pruning import vocab

    torch.manual_seed(0)
    model, tokenizer = load_causal_lm(base)
    trimmed = vocab.trim_vocabulary(model, tokenizer, keep=keep_for(rule, base, size))
    return run_model(model, trimmed, f"{base} trimmed to {size} ({rule})", out, suites)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, required=True, help="the base's full eval.json")
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("rules", nargs="+",
                        help="NAME=rank, NAME=use:SHORT:WORD_SHARE or NAME=file:PATH")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--eval-extra", type=Path, action="append", default=[],
                        help="a partial run of the base on suites its full run lacks (repeatable)")
    parser.add_argument("--suites", default=",".join(DEFAULT_SUITES),
                        help=f"comma-separated subset of {','.join(SUITES)}")
    args = parser.parse_args()
    suites = tuple(args.suites.split(","))
    if not set(suites) <= set(SUITES):
        parser.error(f"--suites: choose from {','.join(SUITES)}")
    full = with_suites_of(json.loads(args.eval.read_text()), args.eval_extra)
    base = Path(full["model"])
    args.out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for spec in args.rules:
        name, _, rule = spec.partition("=")
        path = args.out / f"{name}.json"
        result = json.loads(path.read_text()) if path.is_file() else None
        if result is None or not set(suites) <= set(result["suites"]):
            result = evaluate(rule, base, args.size, path, suites)
        ratios = paired_ratios(full, result)
        rows[name] = {"rule": rule, **{f: ratios[f] for f in FIGURES if f in ratios}}
    command = "python benchmarks/vocab_trim.py " + " ".join(
        [f"--eval {args.eval}", *(f"--eval-extra {p}" for p in args.eval_extra),
         f"--size {args.size}", *args.rules, f"--out {args.out}",
         *([f"--suites {args.suites}"] if suites != DEFAULT_SUITES else [])])
    (args.out / "vocab-trim.json").write_text(json.dumps(
        {"command": command, "size": args.size, "rows": rows}, indent=2) + "\n")
    lines = [f"# Vocabulary trim alone at {args.size} tokens, against the base", "",
             f"`{command}`", "", "| rule | " + " | ".join(FIGURES) + " |",
             "|" + " --- |" * (len(FIGURES) + 1)]
    for name, row in rows.items():
        cells = [f"{row[f]['ratio']:.3f} [{row[f]['low']:.2f}, {row[f]['high']:.2f}]"
                 if f in row else "–" for f in FIGURES]
        lines.append(f"| {name} ({row['rule']}) | " + " | ".join(cells) + " |")
    (args.out / "vocab-trim.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
