"""One stream, 64 new tokens: llama.cpp (in-process, exported GGUF) against the service's engine.

Usage: .venv/bin/python benchmarks/llamacpp_speed.py [--rounds 3] [--tokens 64]
           [--types f32 q8_0] [--threads 2] [--out docs/llamacpp-speed.json]
(needs the llama.cpp extra: `make llamacpp`)

For the base and the default core, each precision is exported with `cogcore export gguf` and
run by llama-cpp-python (greedy, EOS ignored, so every run makes exactly `--tokens` tokens);
the service's own engine (service/engine.py, fp32, EOS ignored likewise) runs the same chat
prompt in the same run. The configurations take turns within each round, so the shared
machine's load falls on all alike; medians over the rounds. tokens/s is end to end (prefill
included); the first token's latency is reported beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cogcore.checkpoint import load_causal_lm
from cogcore.gguf_export import export_gguf
from cogcore.paths import default_base_dir, default_core_dir

PROMPT = [{"role": "user", "content": "Explain in a few sentences why the sky is blue."}]

Run = Callable[[], tuple[float, float, int]]  # () -> (first token s, total s, tokens)


def llama_cpp_runner(path: Path, prompt: list[int], tokens: int, threads: int) -> Run:
    """Greedy generation of `tokens` tokens with llama.cpp's own sampler path."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=512, n_threads=threads,
                          n_threads_batch=threads, verbose=False)

    def run() -> tuple[float, float, int]:
        llm.reset()
        began = time.perf_counter()
        first, made = 0.0, 0
        for _ in llm.generate(prompt, top_k=1, temp=0.0, reset=True):
            made += 1
            if made == 1:
                first = time.perf_counter() - began
            if made == tokens:
                break
        return first, time.perf_counter() - began, made

    return run


def engine_runner(checkpoint: Path, prompt: list[int], tokens: int) -> Run:
    """The service's continuous-batching engine, one request, fp32."""
    from service.engine import Engine
    from service.generation import GenerationRequest
    from service.sampling import SamplingParams

    model, tokenizer = load_causal_lm(checkpoint)

    async def once() -> tuple[float, float, int]:
        engine = Engine(model, tokenizer, max_batch_size=1)
        engine.eos_ids = set()  # exactly `tokens` tokens, as llama.cpp makes (stop_ids too)
        engine.start()
        try:
            began = time.perf_counter()
            first, made = 0.0, 0
            request = GenerationRequest(prompt, SamplingParams(max_tokens=tokens))
            async for delta in engine.submit(request):
                if not first and delta.completion_tokens:
                    first = time.perf_counter() - began
                made = delta.completion_tokens
            return first, time.perf_counter() - began, made
        finally:
            engine.stop()

    return lambda: asyncio.run(once())


def main() -> None:
    """Run every configuration `--rounds` times, taking turns; print and save medians."""
    from transformers import AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--types", nargs="+", default=["f32", "q8_0"])
    parser.add_argument("--threads", type=int, default=2, help="for llama.cpp and torch alike")
    parser.add_argument("--base", type=Path, default=default_base_dir())
    parser.add_argument("--core", type=Path, default=default_core_dir())
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)  # the same thread count for both runtimes
    runs: dict[str, Run] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, checkpoint in (("base", args.base), ("core", args.core)):
            tokenizer = AutoTokenizer.from_pretrained(checkpoint)
            text = tokenizer.apply_chat_template(PROMPT, tokenize=False, add_generation_prompt=True)
            prompt = tokenizer(text, add_special_tokens=False).input_ids
            runs[f"{name}, service engine, fp32"] = engine_runner(checkpoint, prompt, args.tokens)
            for out_type in args.types:
                gguf = export_gguf(checkpoint, Path(scratch) / f"{name}-{out_type}.gguf", out_type)
                runs[f"{name}, llama.cpp, {out_type}"] = llama_cpp_runner(
                    gguf.path, prompt, args.tokens, args.threads)
        for run in runs.values():
            run()  # warm-up: first-call allocations and caches
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in runs}
        for round_ in range(args.rounds):
            for name, run in runs.items():
                results[name].append(run())
                first, total, made = results[name][-1]
                print(f"round {round_ + 1}: {name}: {made / total:.1f} tok/s, "
                      f"first token {first * 1000:.0f} ms", flush=True)
    summary = {}
    for name, rows in results.items():
        assert all(made == args.tokens for _, _, made in rows), (name, rows)
        summary[name] = {
            "tokens_per_s": statistics.median(made / total for _, total, made in rows),
            "first_token_ms": statistics.median(first for first, _, _ in rows) * 1000,
            "runs_tokens_per_s": [round(made / total, 1) for _, total, made in rows],
        }
    print("\n| model, runtime, precision | tok/s (median) | x service engine | first token ms |")
    print("|---|---|---|---|")
    for name, row in summary.items():
        engine = summary[f"{name.split(',')[0]}, service engine, fp32"]["tokens_per_s"]
        print(f"| {name} | {row['tokens_per_s']:.1f} | {row['tokens_per_s'] / engine:.2f}x "
              f"| {row['first_token_ms']:.0f} |")
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                        "results": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
