"""The committed keep-sets of `pruning.vocab`: how each one is measured, and the command that
selects and writes them.

    python -m pruning.keep_set_build --size 16384 [--size 12288] [--short-letters N] \
        [--rule use|prose] [--out PATH]

writes `pruning/data/keep-set-N.json` (`keep-set-prose-N.json` by the prose rule): the token
list, the rule that chose it, the tokenizer's digest, and what the trim would change (tokens
re-split on the perplexity texts, reading answers whose tokens change).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pruning.vocab import (
    CORPUS_CHARS,
    SHORT_LETTERS,
    USE_RULES,
    WORD_SHARE,
    WORDS,
    keep_set_file,
    select_keep_set,
    spec_digest,
    token_counts,
    tokenizer_spec,
    use_counts,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def resplit_fraction(tokenizer: PreTrainedTokenizerBase, keep: Iterable[str],
                     texts: Sequence[str]) -> float:
    """The fraction of the tokens of `texts` (as `tokenizer` splits them) not in `keep`."""
    counts = token_counts(tokenizer, texts)
    kept = set(keep)
    total = sum(counts.values())
    return sum(c for t, c in counts.items() if t not in kept) / max(1, total)


def changed_answers(tokenizer: PreTrainedTokenizerBase, keep: Iterable[str],
                    answers: Sequence[str]) -> float:
    """The fraction of `answers` (each read after a space) whose tokens are not all kept."""
    kept = set(keep)
    backend = tokenizer.backend_tokenizer
    changed = sum(
        any(t not in kept for t in backend.encode(" " + a, add_special_tokens=False).tokens)
        for a in answers)
    return changed / max(1, len(answers))


def keep_set_stats(tokenizer: PreTrainedTokenizerBase, keep: Sequence[str]) -> dict[str, float]:
    """Re-split tokens on the perplexity texts, changed answers of the reading suites."""
    from evaluation.data import reading_items
    from pruning.corpus import perplexity_texts

    stats = {"resplit_perplexity_text": resplit_fraction(tokenizer, keep, perplexity_texts())}
    for kind in ("open_book", "counterfactual", "fictional"):
        answers = [item.expected.answer for item in reading_items(kind)]
        stats[f"changed_answers_{kind}"] = changed_answers(tokenizer, keep, answers)
    return {k: round(v, 4) for k, v in stats.items()}


def build_keep_set_file(base: Path, size: int, short_letters: int = SHORT_LETTERS,
                        out: Path | None = None, rule: str = "use") -> Path:
    """Select the keep-set of `size` tokens for the tokenizer at `base` and write it as JSON."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    spec = tokenizer_spec(tokenizer)
    counts, required = use_counts(tokenizer, **USE_RULES[rule])
    keep = select_keep_set(spec, size, counts, short_letters=short_letters, required=required)
    flags = (f" --rule {rule}" if rule != "use" else "") + (f" --out {out}" if out else "")
    record = {
        "size": size,
        "tokenizer": spec_digest(spec),
        "rule": {"short_letters": short_letters, "corpus_chars": CORPUS_CHARS,
                 "words": WORDS, "word_share": WORD_SHARE, "name": rule, **USE_RULES[rule],
                 "required_tokens": len(required)},
        "stats": keep_set_stats(tokenizer, keep),
        "command": f"python -m pruning.keep_set_build --size {size} "
                   f"--short-letters {short_letters}{flags}",
        "tokens": keep,
    }
    path = out or keep_set_file(size, rule)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m pruning.keep_set_build --size N`: write pruning/data/keep-set[-RULE]-N.json."""
    from cogcore.paths import default_base_dir

    parser = argparse.ArgumentParser(prog="python -m pruning.keep_set_build",
                                     description="select and write a committed keep-set")
    parser.add_argument("--size", type=int, action="append", required=True)
    parser.add_argument("--short-letters", type=int, default=SHORT_LETTERS)
    parser.add_argument("--base", type=Path, default=default_base_dir())
    parser.add_argument("--rule", choices=tuple(USE_RULES), default="use",
                        help="use: the knowledge base's tokens required; prose: not, and "
                        "part of the fill from the base's everyday samples")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.out is not None and len(args.size) != 1:
        parser.error("--out takes one --size")
    for size in args.size:
        path = build_keep_set_file(args.base, size, args.short_letters, args.out, args.rule)
        stats = json.loads(path.read_text(encoding="utf-8"))["stats"]
        print(f"{path}: {size} tokens {stats}")


if __name__ == "__main__":
    main()
