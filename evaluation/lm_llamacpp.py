"""`EvalModel` over a GGUF computed by llama.cpp in-process (the optional `llamacpp` extra).

What a quantized export (q8_0, q4_k_m) costs in accuracy is measured by the same suites as the
checkpoint itself: the checkpoint's tokenizer encodes every text (the export tokenizes exactly
as transformers does), llama.cpp computes the logits, and the choices are made in Python as
`evaluation.generation` and `evaluation.scoring` make them over a torch model: greedy replies
cut at the first newline, option log-likelihoods continuing the encoded context, per-window
negative log-likelihood of running text.

The rows of a batch are sequences of one unified KV cache; a multiple-choice context is decoded
once into every option's sequence.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from cogcore.llamacpp import LlamaContext, free_cores
from cogcore.prompts import Prompt
from evaluation.generation import OnBatch, length_batches
from evaluation.scoring import split_options

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Token = tuple[int, int, tuple[int, ...], bool]  # token, position, sequence ids, wants logits

N_CTX = 16384  # KV cells shared by a batch's rows
WINDOW = 512  # tokens per perplexity window, as `evaluation.scoring.text_nll`


def _fits(lengths: Sequence[int], batch_size: int, n_ctx: int) -> list[list[int]]:
    """`length_batches`, each batch split further until its rows' cells fit in `n_ctx`."""
    out = []
    for batch in length_batches(lengths, batch_size):
        while batch:
            take = len(batch)
            while take > 1 and sum(lengths[i] for i in batch[:take]) > n_ctx:
                take //= 2
            out.append(batch[:take])
            batch = batch[take:]
    return out


class LlamaCppEvalModel:
    """The evaluation's model interface over one GGUF file."""

    def __init__(self, gguf: Path, tokenizer: PreTrainedTokenizerBase, eos_ids: set[int], *,
                 batch_size: int = 32, threads: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.batch_size = batch_size
        self.llama = LlamaContext(gguf, N_CTX, n_seq=max(batch_size, 32), n_batch=WINDOW,
                                  threads=threads or free_cores())

    def close(self) -> None:
        self.llama.close()

    def _greedy(self, rows: list[list[int]], max_new_tokens: int, stop_at_newline: bool
                ) -> list[list[int]]:
        """Greedy continuations of token rows decoded together (each its own sequence)."""
        self.llama.clear()
        tokens: list[Token] = [(t, pos, (r,), pos == len(row) - 1)
                               for r, row in enumerate(rows) for pos, t in enumerate(row)]
        logits = self.llama.decode(tokens)
        out: list[list[int]] = [[] for _ in rows]
        live = list(range(len(rows)))
        for step in range(max_new_tokens):
            nexts = [int(torch.argmax(row)) for row in logits]
            still = []
            for r, token in zip(live, nexts, strict=True):
                if token in self.eos_ids and stop_at_newline:
                    continue
                out[r].append(token)
                if not (stop_at_newline and "\n" in self.tokenizer.decode(out[r][-1:])):
                    still.append(r)
            live = still
            if not live or step == max_new_tokens - 1:
                break
            logits = self.llama.decode([(out[r][-1], len(rows[r]) + len(out[r]) - 1, (r,), True)
                                        for r in live])
        return out

    def generate(
        self, prompts: Sequence[Prompt], max_new_tokens: int, on_batch: OnBatch | None = None
    ) -> list[str]:
        """Greedy replies, each cut at its first newline."""
        encoded = [self.tokenizer(p.render(self.tokenizer), add_special_tokens=False)["input_ids"]
                   for p in prompts]
        replies = [""] * len(prompts)
        lengths = [len(e) + max_new_tokens for e in encoded]
        for batch in _fits(lengths, self.batch_size, N_CTX):
            outs = self._greedy([encoded[i] for i in batch], max_new_tokens, True)
            for i, out in zip(batch, outs, strict=True):
                replies[i] = self.tokenizer.decode(out, skip_special_tokens=True).split("\n", 1)[0]
            if on_batch is not None:
                on_batch(len(batch))
        return replies

    def choice_logliks(
        self, questions: Sequence[tuple[str, Sequence[str]]], on_batch: OnBatch | None = None
    ) -> list[list[float]]:
        """Each option's summed log-probability after its context; the context is decoded
        once into every option's sequence."""
        encoded = [split_options(self.tokenizer, c, opts) for c, opts in questions]
        scores: list[list[float]] = [[] for _ in questions]
        for index, (context, options) in enumerate(encoded):
            if len(options) > self.batch_size:
                raise ValueError(f"{len(options)} options: more than the {self.batch_size} "
                                 "sequences of a batch")
            self.llama.clear()
            seqs = tuple(range(len(options)))
            tokens: list[Token] = [(t, pos, seqs, pos == len(context) - 1)
                                   for pos, t in enumerate(context)]
            for seq, option in enumerate(options):
                tokens += [(t, len(context) + k, (seq,), k < len(option) - 1)
                           for k, t in enumerate(option)]
            logits = iter(self.llama.decode(tokens))
            first = torch.log_softmax(next(logits), dim=-1)
            for option in options:
                score = float(first[option[0]])
                for k in range(1, len(option)):
                    score += float(torch.log_softmax(next(logits), dim=-1)[option[k]])
                scores[index].append(score)
            if on_batch is not None:
                on_batch(1)
        return scores

    def text_nll(self, text: str, on_batch: OnBatch | None = None) -> tuple[float, int]:
        """Summed negative log-likelihood over 512-token windows that overlap by one token."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        total, count = 0.0, 0
        for start in range(0, max(len(ids) - 1, 0), WINDOW - 1):
            chunk = ids[start:start + WINDOW]
            self.llama.clear()
            logits = self.llama.decode(
                [(t, pos, (0,), pos < len(chunk) - 1) for pos, t in enumerate(chunk)])
            logprobs = torch.log_softmax(logits, dim=-1)
            total -= float(logprobs.gather(1, torch.tensor(chunk[1:]).unsqueeze(1)).sum())
            count += len(chunk) - 1
            if on_batch is not None:
                on_batch(1)
        return total, count

    def speed(self, texts: Sequence[str], new_tokens: int, on_batch: OnBatch | None = None
              ) -> dict[str, float | int]:
        """Tokens/s at batch 1 and 32, exactly `new_tokens` each (as `evaluation.cost`)."""
        rows = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        results: dict[str, float | int] = {"new_tokens": new_tokens}
        for size in (1, 32):
            batch = [rows[i % len(rows)] for i in range(size)]
            start = time.perf_counter()
            self._greedy(batch, new_tokens, stop_at_newline=False)
            results[f"tokens_per_s_batch{size}"] = size * new_tokens / (
                time.perf_counter() - start)
            if on_batch is not None:
                on_batch(1)
        return results
