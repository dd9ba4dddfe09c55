"""What the torch engine leaves on the table: its model in other forms, same engine, same prompts.

Usage: .venv/bin/python benchmarks/torch_engine_variants.py [--rounds 3] [--tokens 64]
           [--streams 1 32] [--variants fp32 int8 bf16 compile] [--out FILE.json]

The service's continuous-batching engine (service/engine.py) serves the default core as
- fp32: what `cogcore serve` runs today (the baseline of every ratio);
- int8: `torch.ao.quantization.quantize_dynamic` on every nn.Linear (int8 weights, activations
  quantized per batch; fbgemm's AVX-512 VNNI kernels where the CPU has them);
- bf16: the weights and activations in bfloat16 (fast only where the CPU has native bf16:
  AVX512-BF16 or AMX; emulated otherwise);
- compile: fp32 with `torch.compile(model.forward, dynamic=True)`.
Each variant answers `--streams` concurrent requests of exactly `--tokens` new tokens (EOS
ignored) for the same chat prompt; the variants take turns within each round, so the shared
machine's load falls on all alike; medians over the rounds, and each variant's ratio to fp32.
The greedy text of one stream is compared with fp32's (`same_text`): what the form costs in
output, next to what it buys in tokens/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from cogcore.checkpoint import load_causal_lm
from cogcore.paths import default_core_dir

PROMPT = [{"role": "user", "content": "Explain in a few sentences why the sky is blue."}]
VARIANTS: dict[str, Callable[[torch.nn.Module], torch.nn.Module]] = {
    "fp32": lambda model: model,
    "int8": lambda model: torch.ao.quantization.quantize_dynamic(
        model, {torch.nn.Linear}, dtype=torch.qint8),
    "bf16": lambda model: model.to(torch.bfloat16),
    "compile": lambda model: setattr(model, "forward", torch.compile(
        model.forward, dynamic=True)) or model,
}


async def generate(engine, prompt: list[int], streams: int, tokens: int
                   ) -> tuple[float, float, str]:
    """`streams` concurrent requests: (tokens/s over all, first token p50 s, stream 0's text)."""
    from service.generation import GenerationRequest
    from service.sampling import SamplingParams

    async def one() -> tuple[float, str, int]:
        began, first, text, made = time.perf_counter(), 0.0, "", 0
        request = GenerationRequest(prompt, SamplingParams(max_tokens=tokens))
        async for delta in engine.submit(request):
            if not first and delta.completion_tokens:
                first = time.perf_counter() - began
            text, made = text + delta.text, delta.completion_tokens
        return first, text, made

    began = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(streams)))
    elapsed = time.perf_counter() - began
    assert all(made == tokens for _, _, made in results), [r[2] for r in results]
    return streams * tokens / elapsed, statistics.median(r[0] for r in results), results[0][1]


def main() -> None:
    """Every variant at every stream count, `--rounds` times taking turns; print and save."""
    from service.engine import Engine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=default_core_dir())
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    engines = {}
    for name in args.variants:
        model, tokenizer = load_causal_lm(args.model)
        engine = Engine(VARIANTS[name](model.eval()), tokenizer, max_batch_size=max(args.streams))
        engine.eos_ids = set()  # exactly `--tokens` tokens per request
        engine.start()
        engines[name] = engine
    text = tokenizer.apply_chat_template(PROMPT, tokenize=False, add_generation_prompt=True)
    prompt = tokenizer(text, add_special_tokens=False).input_ids
    runs: dict[tuple[str, int], list[tuple[float, float, str]]] = {}
    try:
        for engine in engines.values():  # warm-up: allocations, compilation
            for streams in args.streams:
                asyncio.run(generate(engine, prompt, streams, args.tokens))
        for round_ in range(args.rounds):
            for streams in args.streams:
                for name, engine in engines.items():
                    result = asyncio.run(generate(engine, prompt, streams, args.tokens))
                    runs.setdefault((name, streams), []).append(result)
                    print(f"round {round_ + 1}: {name}, {streams} streams: {result[0]:.1f} tok/s,"
                          f" first token p50 {result[1] * 1000:.0f} ms", flush=True)
    finally:
        for engine in engines.values():
            engine.stop()
    summary: dict[str, dict] = {}
    print("\n| form | streams | tok/s (median) | x fp32 | first token p50 ms | same text as fp32 |")
    print("|---|---|---|---|---|---|")
    for (name, streams), rows in runs.items():
        tps = statistics.median(r[0] for r in rows)
        base = statistics.median(r[0] for r in runs[("fp32", streams)]) if (
            "fp32", streams) in runs else float("nan")
        same = rows[0][2] == runs[("fp32", streams)][0][2] if ("fp32", streams) in runs else None
        summary[f"{name}/{streams}"] = {
            "tokens_per_s": tps, "x_fp32": tps / base,
            "first_token_ms": statistics.median(r[1] for r in rows) * 1000,
            "runs_tokens_per_s": [round(r[0], 1) for r in rows], "same_text_as_fp32": same}
        print(f"| {name} | {streams} | {tps:.1f} | {tps / base:.2f}x | "
              f"{summary[f'{name}/{streams}']['first_token_ms']:.0f} | {same} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                        "threads": torch.get_num_threads(),
                                        "results": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
