"""Everyday English prose sampled from the base: the healing text the docstrings are not.

The offline prose corpus (`pruning.corpus`) is documentation; the healing learned it and left
everyday prose (the evaluation's second perplexity text) 1.5x further from the base than the
trim alone. No everyday corpus is on every machine, so the base writes one: short stories,
diary entries, letters and scenes about ordinary life (`FORMS` x `TOPICS`, through its chat
template), sampled once at a fixed seed and committed (`pruning/data/everyday-samples.json`),
so every machine heals on the same text. The prompts name no real place or person; a sample
sharing a run of `pruning.corpus.SHINGLE` words with a perplexity text is dropped on reading.

    python -m pruning.everyday --base artifacts/base/smollm2-135m-instruct [--batch 32]

API: `everyday_samples() -> list[str]`: the committed samples (empty when none are committed).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pruning.corpus import disjoint_from_perplexity

SAMPLES_FILE = Path(__file__).resolve().parent / "data" / "everyday-samples.json"
SEED = 0
TEMPERATURE = 0.8
TOP_P = 0.95
REPETITION_PENALTY = 1.1
MAX_NEW_TOKENS = 320

FORMS = (
    "Write a short story about {}.",
    "Write a diary entry about {}.",
    "Write a friendly letter to a cousin about {}.",
    "Describe, in a few paragraphs, {}.",
)
TOPICS = (
    "a rainy morning before work", "cooking dinner for a friend", "a long train journey",
    "moving into a new flat", "a child's first day at school", "a walk in the park in autumn",
    "fixing a leaking kitchen tap", "a birthday party that went wrong",
    "a visit to the grandparents", "learning to ride a bicycle", "a busy day at a small bakery",
    "a lost cat that came home", "planting a vegetable garden", "a quiet evening reading a book",
    "a job interview", "a power cut during a storm", "buying a second-hand car",
    "a picnic by the river", "a neighbour who plays the piano", "the first snow of winter",
    "a wedding in a small village", "waiting at the doctor's", "a summer holiday at the seaside",
    "cleaning out the attic", "a football match on Saturday afternoon",
    "a night shift at a hospital",
    "a market on a Sunday morning", "teaching a dog new tricks", "an argument between two brothers",
    "a school play", "a flat tyre on a country road", "a new colleague at the office",
    "baking bread for the first time", "a camping trip in the hills", "an old friend's phone call",
    "a family dinner on a holiday", "a broken washing machine", "a morning bus ride to town",
    "a garden party for the neighbours", "saying goodbye at the station",
)


def prompts() -> list[str]:
    """Every request the samples answer, forms within topics."""
    return [form.format(topic) for topic in TOPICS for form in FORMS]


def sample(base: Path, batch: int = 32, limit: int | None = None) -> list[dict]:
    """The base's answers to `prompts()` (the first `limit` of them), sampled at `SEED`."""
    import torch

    from cogcore.checkpoint import load_causal_lm
    from cogcore.progress import track

    model, tokenizer = load_causal_lm(base)
    tokenizer.padding_side = "left"
    requests = prompts()[:limit]
    torch.manual_seed(SEED)
    out = []
    for start in track(range(0, len(requests), batch), description="sampling everyday prose"):
        chunk = requests[start : start + batch]
        rendered = [tokenizer.apply_chat_template([{"role": "user", "content": p}],
                                                  tokenize=False, add_generation_prompt=True)
                    for p in chunk]
        encoded = tokenizer(rendered, return_tensors="pt", padding=True,
                            add_special_tokens=False)
        with torch.no_grad():
            generated = model.generate(**encoded, do_sample=True, temperature=TEMPERATURE,
                                       top_p=TOP_P,
                                       repetition_penalty=REPETITION_PENALTY,
                                       max_new_tokens=MAX_NEW_TOKENS,
                                       pad_token_id=tokenizer.pad_token_id)
        answers = tokenizer.batch_decode(generated[:, encoded["input_ids"].shape[1] :],
                                         skip_special_tokens=True)
        out += [{"prompt": p, "text": a.strip()} for p, a in zip(chunk, answers, strict=True)]
    return out


def everyday_samples() -> list[str]:
    """The committed samples' texts, none sharing a run of words with a perplexity text."""
    if not SAMPLES_FILE.is_file():
        return []
    record = json.loads(SAMPLES_FILE.read_text(encoding="utf-8"))
    return disjoint_from_perplexity([s["text"] for s in record["samples"] if s["text"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the base model's directory")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    parser.add_argument("--out", type=Path, default=SAMPLES_FILE)
    args = parser.parse_args()
    start = time.perf_counter()
    samples = sample(args.base, args.batch, args.limit)
    record = {"base": args.base.name, "seed": SEED, "temperature": TEMPERATURE, "top_p": TOP_P,
              "repetition_penalty": REPETITION_PENALTY, "max_new_tokens": MAX_NEW_TOKENS,
              "seconds": round(time.perf_counter() - start),
              "samples": samples}
    args.out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    print(f"{len(samples)} samples, {sum(len(s['text']) for s in samples)} characters, "
          f"{record['seconds']} s -> {args.out}")


if __name__ == "__main__":
    main()
