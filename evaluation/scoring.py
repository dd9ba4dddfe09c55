"""Log-likelihood scoring: multiple choice as lm-evaluation-harness does it, and perplexity."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

from evaluation.generation import OnBatch, length_batches, pad_id_of, pad_left

WINDOW_CHARS = 2048  # about 512 tokens of English prose for a 49k-token BPE vocabulary

if TYPE_CHECKING:
    from torch import Tensor
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def split_options(
    tokenizer: PreTrainedTokenizerBase, context: str, options: Sequence[str]
) -> tuple[list[int], list[list[int]]]:
    """Tokens of the context and of each option as it continues the context.

    As lm-evaluation-harness: an option's tokens are those of context+option past the encoded
    context's length, so the option is tokenized as it would be in running text.
    """
    context_ids = tokenizer(context)["input_ids"]
    return context_ids, [
        tokenizer(context + option)["input_ids"][len(context_ids) :] or [tokenizer.eos_token_id]
        for option in options
    ]


def _option_scores(model: PreTrainedModel, cache: object, first: Tensor, mask: Tensor,
                   positions: Tensor, rows: list[list[int]], pad_id: int) -> list[float]:
    """Summed log-probabilities of one option per row, continuing the contexts in `cache`."""
    import torch

    scores = [float(first[r, row[0]]) for r, row in enumerate(rows)]
    width = max(len(row) for row in rows)
    if width == 1:
        return scores
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    option_mask = torch.zeros_like(ids)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = torch.tensor(row)
        option_mask[r, : len(row)] = 1
    with torch.inference_mode():
        logits = model(
            input_ids=ids, attention_mask=torch.cat([mask, option_mask], dim=1),
            position_ids=positions[:, -1:] + 1 + torch.arange(width),
            past_key_values=copy.deepcopy(cache), use_cache=True,
        ).logits.float()
    logprobs = torch.log_softmax(logits, dim=-1)
    for r, row in enumerate(rows):
        scores[r] += sum(float(logprobs[r, k - 1, row[k]]) for k in range(1, len(row)))
    return scores


def choice_logliks(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[tuple[str, Sequence[str]]],
    *,
    batch_size: int = 16,
    on_batch: OnBatch | None = None,
) -> list[list[float]]:
    """For each (context, options), the summed log-probability of every option.

    Each context runs once and every option continues a copy of its key-value cache: the same
    numbers as scoring each context+option row on its own, for a fraction of the compute.
    """
    import torch

    encoded = [split_options(tokenizer, c, opts) for c, opts in questions]
    pad_id = pad_id_of(tokenizer)
    scores: list[list[float]] = [[] for _ in questions]
    # Every row of a batch has as many options as the others: batches are made per count.
    counts = sorted({len(opts) for _, opts in encoded})
    batches = [
        [group[i] for i in batch]
        for count in counts
        for group in [[i for i, (_, opts) in enumerate(encoded) if len(opts) == count]]
        for batch in length_batches([len(encoded[i][0]) for i in group], batch_size)
    ]
    for batch in batches:
        ids, mask, positions = pad_left([encoded[i][0] for i in batch], pad_id)
        with torch.inference_mode():
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                        use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
        for j in range(len(encoded[batch[0]][1])):
            rows = [encoded[i][1][j] for i in batch]
            column = _option_scores(model, out.past_key_values, first, mask, positions, rows,
                                    pad_id)
            for i, score in zip(batch, column, strict=True):
                scores[i].append(score)
        if on_batch is not None:
            on_batch(len(batch))
    return scores


def choose(logliks: Sequence[float]) -> int:
    """The chosen option: the highest log-likelihood, the first one on a tie."""
    return max(range(len(logliks)), key=lambda i: (logliks[i], -i))


def perplexity_span(text: str, windows: int) -> str:
    """The whole paragraphs at the start of `text` that fill about `windows` windows.

    The span is fixed in characters, not tokens, so checkpoints whose tokenizers differ (a
    trimmed vocabulary) are scored on the same text and their per-word perplexities compare.
    """
    kept: list[str] = []
    used = 0
    for paragraph in text.split("\n\n"):
        if kept and used + len(paragraph) > windows * WINDOW_CHARS:
            break
        kept.append(paragraph)
        used += len(paragraph) + 2
    return "\n\n".join(kept)


def perplexity_windows(span: str) -> list[str]:
    """`span` cut into windows of whole paragraphs of at most `WINDOW_CHARS` characters (a
    longer paragraph is a window of its own), in order: each is scored on its own, so two
    models are compared window by window on the same text whatever their tokenizers."""
    windows: list[list[str]] = []
    used = 0
    for paragraph in span.split("\n\n"):
        if not windows or used + len(paragraph) > WINDOW_CHARS:
            windows.append([])
            used = 0
        windows[-1].append(paragraph)
        used += len(paragraph) + 2
    return ["\n\n".join(w) for w in windows]


def text_nll(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    text: str,
    *,
    window: int = 512,
    on_batch: OnBatch | None = None,
) -> tuple[float, int]:
    """Summed next-token negative log-likelihood (nats) of `text`, and the tokens it scores."""
    import torch

    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    window = min(window, int(getattr(model.config, "max_position_embeddings", window)))
    total_nll, count = 0.0, 0
    # Windows overlap by one token, so every token after the first is predicted exactly once.
    for start in range(0, max(len(ids) - 1, 0), window - 1):
        chunk = torch.tensor([ids[start : start + window]], dtype=torch.long)
        with torch.inference_mode():
            loss = model(input_ids=chunk, labels=chunk).loss
        total_nll += float(loss) * (chunk.shape[1] - 1)
        count += chunk.shape[1] - 1
        if on_batch is not None:
            on_batch(1)
    return total_nll, count
