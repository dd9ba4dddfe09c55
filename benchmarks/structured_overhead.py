"""The per-token cost of grammar-constrained decoding against a decode step, in one run.

For each grammar library that is installed (llguidance through service.structured, which the
service uses; xgrammar and outlines-core for the comparison), on the served checkpoint's own
tokenizer:
- coverage: each of the 10 example schemas (service/structured/examples.py) compiles, takes
  its valid document and refuses its invalid one;
- per-token cost at 1 and 32 rows: every row replays the tokens of a valid document (cycling
  over the schemas, a fresh matcher when one ends); a step computes every row's mask into one
  int32 bitmask, applies it to a (rows x vocab) logits tensor and advances each matcher;
- the baseline: a decode step of the model itself (service.batch.decode) at the same rows.

    python benchmarks/structured_overhead.py --out docs/structured
    PYTHONPATH=/tmp/cands python benchmarks/structured_overhead.py ...  # candidates put aside

Writes structured_overhead.json and structured_overhead.md under --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from service import batch
from service.structured import GrammarCompiler, MaskBatch
from service.structured.examples import EXAMPLES
from service.structured.grammar import JSON_FORMAT, apply_bitmask, bitmask_words


@dataclass
class Library:
    """One library's three operations: compile a schema, start a matcher, mask and advance."""

    name: str
    compile: Callable[[dict], Any]
    start: Callable[[Any], Any]
    fill: Callable[[list[tuple[Any, int]], torch.Tensor], None]  # (matcher, row) -> bitmask
    advance: Callable[[Any, int], bool]


def llguidance_library(tokenizer, vocab: int, eos: int) -> Library:
    compiler = GrammarCompiler(tokenizer, vocab_size=vocab, eos_ids=[eos])
    masks = MaskBatch(vocab, 64)

    def fill(rows: list[tuple[Any, int]], bitmask: torch.Tensor) -> None:
        masks.bitmask = bitmask  # the product's own path, into the step's bitmask
        masks.fill([(r, c) for c, r in rows])

    def advance(constraint: Any, token: int) -> bool:
        try:
            constraint.advance(token)
        except RuntimeError:  # the token breaks the grammar
            return False
        return True

    return Library("llguidance", compiler.json_schema, compiler.constraint, fill, advance)


def xgrammar_library(tokenizer, vocab: int, eos: int) -> Library:
    import xgrammar as xgr

    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab, stop_token_ids=[eos])
    compiler = xgr.GrammarCompiler(info)
    batcher = xgr.BatchGrammarMatcher()

    def compile_schema(schema: dict) -> Any:
        return compiler.compile_json_schema(json.dumps(schema), any_whitespace=False,
                                            separators=(", ", ": "))

    def fill(rows: list[tuple[Any, int]], bitmask: torch.Tensor) -> None:
        batcher.batch_fill_next_token_bitmask([m for m, _ in rows], bitmask,
                                              [r for _, r in rows])

    return Library("xgrammar", compile_schema, xgr.GrammarMatcher, fill,
                   lambda m, token: m.accept_token(token))


def outlines_library(tokenizer, vocab: int, eos: int) -> Library:
    import outlines_core as oc
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    # outlines-core's own loader fetches tokenizer.json from the hub; the table is built here
    # from the byte-level vocabulary instead (the way its Python wrapper does).
    byte_of = {c: b for b, c in bytes_to_unicode().items()}
    table: dict[bytes, list[int]] = {}
    for token, i in tokenizer.get_vocab().items():
        if i not in tokenizer.all_special_ids and all(c in byte_of for c in token):
            table.setdefault(bytes(byte_of[c] for c in token), []).append(i)
    vocabulary = oc.Vocabulary(eos, table)

    def compile_schema(schema: dict) -> Any:
        return oc.Index(oc.json_schema.build_regex_from_schema(json.dumps(schema)), vocabulary)

    def fill(rows: list[tuple[Any, int]], bitmask: torch.Tensor) -> None:
        for guide, r in rows:
            row = bitmask[r]
            guide.write_mask_into(row.data_ptr(), row.numel(), 4)

    def advance(guide: Any, token: int) -> bool:
        if token == eos:  # a finished guide has no transition on EOS: the caller stops there
            return guide.is_finished()
        try:
            guide.advance(token, return_tokens=False)
        except ValueError:
            return False
        return True

    return Library("outlines-core", compile_schema, oc.Guide, fill, advance)


BUILDERS = {"llguidance": llguidance_library, "xgrammar": xgrammar_library,
            "outlines-core": outlines_library}


def replay(lib: Library, grammar: Any, tokens: list[int]) -> bool:
    """Whether a fresh matcher takes all of `tokens` (a document, then EOS)."""
    matcher = lib.start(grammar)
    return all(lib.advance(matcher, t) for t in tokens)


def coverage(lib: Library, tokenizer, eos: int) -> tuple[list[dict], dict]:
    """Each example: compiled? valid taken? invalid refused? And the compiled grammars."""
    rows, grammars = [], {}
    for ex in EXAMPLES:
        row: dict[str, Any] = {"schema": ex.name}
        started = time.perf_counter()
        try:
            grammar = lib.compile(ex.schema)
        except Exception as exc:  # a library's refusal is a result here, not a crash
            rows.append({**row, "compiles": False, "error": str(exc)[:200]})
            continue
        row["compile_ms"] = round(1000 * (time.perf_counter() - started), 2)
        valid, invalid = (tokenizer(t, add_special_tokens=False)["input_ids"] + [eos]
                          for t in (ex.valid, ex.invalid))
        row.update(compiles=True, takes_valid=replay(lib, grammar, valid),
                   refuses_invalid=not replay(lib, grammar, invalid))
        if row["takes_valid"]:
            grammars[ex.name] = (grammar, valid)
        rows.append(row)
    return rows, grammars


def mask_step_ms(lib: Library, grammars: dict, rows: int, vocab: int, steps: int) -> dict:
    """Median and best time of one step (mask every row, apply to logits, advance every
    row)."""
    plans = list(grammars.values())
    state = []  # per row: [matcher, grammar, tokens, position]
    for r in range(rows):
        grammar, tokens = plans[r % len(plans)]
        state.append([lib.start(grammar), grammar, tokens, 0])
    bitmask = torch.zeros((rows, bitmask_words(vocab)), dtype=torch.int32)
    logits = torch.randn(rows, vocab)
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        lib.fill([(s[0], r) for r, s in enumerate(state)], bitmask)
        apply_bitmask(logits, bitmask, range(rows))
        for s in state:
            if not lib.advance(s[0], s[2][s[3]]):
                raise RuntimeError(f"{lib.name} refused a token of a valid document")
            s[3] += 1
            if s[3] == len(s[2]):
                s[0], s[3] = lib.start(s[1]), 0
        times.append(time.perf_counter() - started)
    return summary(times)


def summary(times: list[float]) -> dict:
    """Mean (what throughput pays: fresh matchers' first steps included), median and best
    (least disturbed by other processes) of `times`, in ms."""
    return {"mean": 1000 * statistics.mean(times), "median": 1000 * statistics.median(times),
            "best": 1000 * min(times)}


def decode_step_ms(model, tokenizer, rows: int, steps: int) -> dict:
    """Median and best time of one decode step of the model at `rows` rows (chat prompts)."""
    prompts = []
    for r in range(rows):
        ex = EXAMPLES[r % len(EXAMPLES)]
        text = tokenizer.apply_chat_template([{"role": "user", "content": ex.request}],
                                             add_generation_prompt=True, tokenize=False)
        prompts.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    state, logits = batch.prefill(model, prompts, tokenizer.pad_token_id or 0)
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        logits = batch.decode(model, state, logits.argmax(-1).tolist())
        times.append(time.perf_counter() - started)
    return summary(times)


def markdown(report: dict) -> str:
    """The report as the tables docs/structured.md quotes (mean, and median in brackets)."""
    rows = report["rows"]

    def pair(d: dict, fmt: str) -> str:
        return f"{d['mean']:{fmt}} ({d['median']:{fmt}})"

    lines = [f"Model `{report['model']}` (vocabulary {report['vocab']}), "
             f"{report['steps']} constrained steps and {report['decode_steps']} decode steps "
             "per row count: mean (median); shares are of the mean decode step.", "",
             "| library | token table (s) | schemas compiled / valid taken / invalid refused | "
             + " | ".join(f"step at {r} rows (ms) | share of a decode step at {r}"
                          for r in rows) + " |", "|---" * (3 + 2 * len(rows)) + "|"]
    for lib in report["libraries"]:
        if "error" in lib:
            lines.append(f"| {lib['name']} | {lib['error']} |" + " |" * (1 + 2 * len(rows)))
            continue
        counts = "/".join(str(sum(bool(c.get(k)) for c in lib["coverage"]))
                          for k in ("compiles", "takes_valid", "refuses_invalid"))
        cells = " | ".join(f"{pair(lib['step_ms'][str(r)], '.2f')} | "
                           f"{lib['ratio'][str(r)]:.2%}" for r in rows)
        lines.append(f"| {lib['name']} | {lib['table_s']:.2f} | {counts} | {cells} |")
    lines += ["", "Decode step of the model: " + ", ".join(
        f"{pair(report['decode_ms'][str(r)], '.1f')} ms at {r} rows" for r in rows) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="artifacts/core/default")
    parser.add_argument("--libraries", default="llguidance,xgrammar,outlines-core")
    parser.add_argument("--rows", default="1,32")
    parser.add_argument("--steps", type=int, default=300, help="constrained steps")
    parser.add_argument("--decode-steps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("docs/structured"))
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    tokenizer = AutoTokenizer.from_pretrained(args.model, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    vocab, eos = model.config.vocab_size, int(model.generation_config.eos_token_id)
    rows = [int(r) for r in args.rows.split(",")]
    decode = {str(r): decode_step_ms(model, tokenizer, r, args.decode_steps) for r in rows}
    libraries = []
    for name in args.libraries.split(","):
        started = time.perf_counter()
        try:
            lib = BUILDERS[name](tokenizer, vocab, eos)
        except ImportError as exc:
            libraries.append({"name": name, "error": f"not installed ({exc.name})"})
            continue
        entry: dict[str, Any] = {"name": name, "table_s": time.perf_counter() - started}
        entry["coverage"], grammars = coverage(lib, tokenizer, eos)
        entry["step_ms"] = {str(r): mask_step_ms(lib, grammars, r, vocab, args.steps)
                            for r in rows}
        entry["ratio"] = {k: v["mean"] / decode[k]["mean"] for k, v in entry["step_ms"].items()}
        libraries.append(entry)
    report = {"model": args.model, "vocab": vocab, "steps": args.steps,
              "decode_steps": args.decode_steps, "rows": rows,
              "json_format": JSON_FORMAT, "decode_ms": decode, "libraries": libraries}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "structured_overhead.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (args.out / "structured_overhead.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
