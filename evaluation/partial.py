"""Some suites of the full evaluation on one checkpoint, when the whole run does not fit.

`python -m evaluation.partial CHECKPOINT OUT.json [TASK ...]` runs, at the full mode's sizes,
only the suites added for issue 15, most needed first, writing OUT.json after each step: the
reasoning tasks named (default: `HEADLINE_TASKS`) at `FULL.reasoning_count(task)` items each,
one task at a time, then both perplexity texts, then the closed-book paraphrase set. Same code
path as `cogcore eval` (the suite functions of `evaluation.suites`), so the figures equal the
full run's for those suites; for a machine too busy to run the whole evaluation.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from evaluation.data import closed_book_paraphrase_items, reasoning_items
from evaluation.lm import HFEvalModel
from evaluation.suites import (
    CLOSED_BOOK_TOKENS,
    FULL,
    HEADLINE_TASKS,
    answer_figures,
    perplexity_figures,
    reasoning_figures,
)


def _track(label: str, total: int):
    started = time.perf_counter()
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        print(f"{label}: {done[0]}/{total} ({time.perf_counter() - started:.0f} s)", flush=True)

    return advance


def main(checkpoint: Path, out: Path, tasks: tuple[str, ...] = HEADLINE_TASKS) -> None:
    """Run the suites and write their figures (with per-item results) to `out`."""
    import torch

    from cogcore.checkpoint import load_causal_lm

    started = time.perf_counter()
    torch.manual_seed(0)
    model, tokenizer = load_causal_lm(checkpoint)
    lm = HFEvalModel(model, tokenizer, 32)
    suites: dict[str, dict] = {}
    items, logliks = [], []
    for task in tasks:
        done = reasoning_items(task, "heldout", FULL.reasoning_count(task))
        logliks += lm.choice_logliks([(i.context, i.choices) for i in done],
                                     _track(f"reasoning {task}", len(done)))
        items += done
        suites["reasoning"] = reasoning_figures(items, logliks)
        out.write_text(json.dumps({"suites": suites}, indent=2) + "\n")
    for key, text in (("perplexity", "general"), ("perplexity_second", "everyday")):
        suites[key] = perplexity_figures(lm, FULL.perplexity_windows, _track, text)
    out.write_text(json.dumps({"suites": suites}, indent=2) + "\n")
    paraphrase = closed_book_paraphrase_items()[: FULL.paraphrase_count()]
    replies = lm.generate([i.prompt for i in paraphrase], CLOSED_BOOK_TOKENS,
                          _track("closed_book paraphrase", len(paraphrase)))
    suites["closed_book"] = {"paraphrase": answer_figures(paraphrase, replies)}
    result = {"model": str(checkpoint), "mode": "full (partial: evaluation.partial)",
              "suites": suites, "seconds": time.perf_counter() - started,
              "threads": torch.get_num_threads()}
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), tuple(sys.argv[3:]) or HEADLINE_TASKS)
