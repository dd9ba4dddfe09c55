"""What a checkpoint costs: parameters, bytes on disk, generation speed, peak memory."""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from evaluation.generation import OnBatch, pad_id_of, pad_left

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

WEIGHT_SUFFIXES = (".safetensors", ".bin")


def parameter_counts(model: PreTrainedModel) -> tuple[int, int]:
    """Total parameters and non-embedding ones (without input embeddings and an untied head)."""
    total = sum(p.numel() for p in model.parameters())  # a tied head is counted once here
    embedding = model.get_input_embeddings().weight
    embedding_count = embedding.numel()
    head = model.get_output_embeddings()
    if head is not None and head.weight is not embedding:
        embedding_count += head.weight.numel()
    return total, total - embedding_count


def checkpoint_bytes(directory: Path) -> int:
    """Bytes of the weight files of a checkpoint directory."""
    return sum(
        f.stat().st_size for f in directory.iterdir() if f.name.endswith(WEIGHT_SUFFIXES)
    )


def peak_rss_bytes() -> int:
    """The peak resident memory of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def tokens_per_second(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    new_tokens: int,
) -> float:
    """Generated tokens per second for one static batch of `texts`, exactly `new_tokens` each."""
    import torch

    pad_id = pad_id_of(tokenizer)
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    ids, mask, _ = pad_left(rows, pad_id)
    ids, mask = ids.to(model.device), mask.to(model.device)
    cuda = model.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()  # time the generation, not work queued before it
    start = time.perf_counter()
    with torch.inference_mode():
        model.generate(
            input_ids=ids, attention_mask=mask, do_sample=False, pad_token_id=pad_id,
            max_new_tokens=new_tokens, min_new_tokens=new_tokens,
        )
    if cuda:
        torch.cuda.synchronize()
    return len(texts) * new_tokens / (time.perf_counter() - start)


def measure_speed(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    new_tokens: int,
    on_batch: OnBatch | None = None,
) -> dict[str, float | int]:
    """Tokens/s at batch 1 and batch 32 on the same prompts, in the same run (for the ratio)."""
    results: dict[str, float | int] = {"new_tokens": new_tokens}
    for size in (1, 32):
        batch = [texts[i % len(texts)] for i in range(size)]
        results[f"tokens_per_s_batch{size}"] = tokens_per_second(model, tokenizer, batch,
                                                                 new_tokens)
        if on_batch is not None:
            on_batch(1)
    return results
