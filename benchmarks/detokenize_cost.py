"""Cost per token of streaming a reply's text: `service.detokenizer.TextStream` (incremental,
`tokenizers`' DecodeStream) against decoding the whole reply again at every token (what the
engine did before), on the same tokens, with one stop string to watch.

    .venv/bin/python benchmarks/detokenize_cost.py [--model DIR] [--lengths 64,256,1024]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from transformers import AutoTokenizer

from service.detokenizer import TextStream
from service.settings import default_model_dir

REPO = Path(__file__).resolve().parent.parent
STOP = ("\n\nUser:",)


def incremental(tokenizer: object, ids: list[int]) -> str:
    """The text as the engine streams it now."""
    stream = TextStream(tokenizer, STOP)
    return "".join(stream.push(i) for i in ids) + stream.flush()


def full_decode(tokenizer: object, ids: list[int]) -> str:
    """The text as a full decode per token gives it (the quadratic baseline)."""
    sent = ""
    for n in range(1, len(ids) + 1):
        text = tokenizer.decode(ids[:n], skip_special_tokens=True)
        if not text.endswith("\ufffd"):
            sent = text
    return sent


def main() -> None:
    """Print microseconds per token of both ways, and their ratio, at each length."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=default_model_dir())
    parser.add_argument("--lengths", default="64,256,1024")
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    text = (REPO / "docs" / "service.md").read_text()
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    incremental(tokenizer, ids[:16]), full_decode(tokenizer, ids[:16])  # warm-up
    for n in (int(x) for x in args.lengths.split(",")):
        costs = {}
        for name, way in (("full decode per token", full_decode), ("incremental", incremental)):
            runs = []
            for _ in range(3):  # the best of three: the machine is shared
                started = time.perf_counter()
                out = way(tokenizer, ids[:n])
                runs.append(time.perf_counter() - started)
            costs[name] = min(runs) / n * 1e6
        assert out == tokenizer.decode(ids[:n], skip_special_tokens=True)
        full, new = costs["full decode per token"], costs["incremental"]
        print(f"{n:5d} tokens: full decode per token {full:7.1f} us/token, incremental "
              f"{new:6.1f} us/token ({full / new:.1f}x)", flush=True)


if __name__ == "__main__":
    main()
