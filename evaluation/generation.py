"""Generation for evaluation: batched greedy answers with left padding, and one chat turn."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

OnBatch = Callable[[int], None]


def pad_left(rows: Sequence[list[int]], pad_id: int) -> tuple:
    """Token rows left-padded into (input_ids, attention_mask, position_ids) tensors."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    # Positions count real tokens only, so a left-padded row sees the positions it would alone.
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, positions


def pad_id_of(tokenizer: PreTrainedTokenizerBase) -> int:
    """The padding id: the tokenizer's own, else its end-of-sequence id."""
    pad = tokenizer.pad_token_id
    return int(pad if pad is not None else tokenizer.eos_token_id)


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding), in a fixed order."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def greedy_generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    max_new_tokens: int,
    batch_size: int = 32,
    on_batch: OnBatch | None = None,
) -> list[str]:
    """Greedy continuations of rendered prompts, batched, each cut at its first newline."""
    import torch

    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    pad_id = pad_id_of(tokenizer)
    replies = [""] * len(texts)
    for batch in length_batches([len(e) for e in encoded], batch_size):
        ids, mask, _ = pad_left([encoded[i] for i in batch], pad_id)
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                do_sample=False, pad_token_id=pad_id, stop_strings=["\n"], tokenizer=tokenizer,
            )
        for row, i in enumerate(batch):
            text = tokenizer.decode(out[row, ids.shape[1] :], skip_special_tokens=True)
            replies[i] = text.split("\n", 1)[0]
        if on_batch is not None:
            on_batch(len(batch))
    return replies


def chat_once(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    *,
    system: str | None = None,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    seed: int = 0,
) -> str:
    """Answer one user turn through the chat template; greedy when temperature is 0."""
    import torch

    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    input_ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"].to(model.device)
    torch.manual_seed(seed)
    sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {
        "do_sample": False
    }
    with torch.inference_mode():
        output = model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            **sampling,
        )
    return tokenizer.decode(output[0, input_ids.shape[1] :], skip_special_tokens=True).strip()
