"""Log-probabilities of tokens: scored on the model thread, written in OpenAI's two shapes.

Scores are vLLM's default (`logprobs_mode="raw_logprobs"`): the log-softmax of the model's
logits, before the evidence constraint, the logits processors (`logit_bias`, penalties, a
grammar) and temperature or top-p. The chat shape is `choices[].logprobs.content[]` (token,
logprob, bytes, top_logprobs); the completions shape the legacy one (tokens, token_logprobs,
top_logprobs, text_offset).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from service.generation import TokenLogprob

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# Prompt positions whose vocabulary logits are computed at once (a long prompt's full logits
# would be prompt x vocabulary floats).
PROMPT_CHUNK = 256


def score_rows(logprobs: torch.Tensor | None, tokens: Sequence[int],
               wanted: Sequence[int | None]) -> list[TokenLogprob | None]:
    """Each row's sampled token scored (rows whose `wanted` is None get None): `logprobs`
    holds the log-softmax of the scored rows only, in order; `wanted` the top count per row."""
    out: list[TokenLogprob | None] = [None] * len(tokens)
    if logprobs is None:
        return out
    scored = [i for i, k in enumerate(wanted) if k is not None]
    chosen = logprobs.gather(1, torch.tensor([[tokens[i]] for i in scored])).squeeze(1)
    most = max(wanted[i] or 0 for i in scored)
    top_values, top_ids = logprobs.topk(most, dim=-1) if most else (None, None)
    for j, i in enumerate(scored):
        k = wanted[i] or 0
        top = () if not k else tuple(zip(top_ids[j, :k].tolist(), top_values[j, :k].tolist(),
                                         strict=True))
        out[i] = TokenLogprob(tokens[i], float(chosen[j]), top)
    return out


def prompt_scores(model: PreTrainedModel, ids: list[int], k: int
                  ) -> tuple[TokenLogprob | None, ...]:
    """Every prompt token scored given the ones before it (the first, with nothing before
    it, is None), with its `k` most likely alternatives: one pass over the prompt."""
    hidden = model.base_model(input_ids=torch.tensor([ids], device=model.device)
                              ).last_hidden_state[0, :-1]
    head = model.get_output_embeddings()
    scores: list[TokenLogprob | None] = [None]
    for start in range(0, len(ids) - 1, PROMPT_CHUNK):
        logprobs = head(hidden[start:start + PROMPT_CHUNK]).float().log_softmax(-1)
        chunk = ids[start + 1:start + 1 + len(logprobs)]
        scores.extend(score_rows(logprobs, chunk, [k] * len(chunk)))
    return tuple(scores)


class TokenText:
    """Token ids as OpenAI shows them: the token's text and its exact bytes."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        self.text = functools.lru_cache(maxsize=65536)(self._text)
        self.bytes = functools.lru_cache(maxsize=65536)(self._bytes)

    def _text(self, token: int) -> str:
        return self.tokenizer.decode([token])

    def _bytes(self, token: int) -> list[int]:
        # Byte-level BPE spells each byte as one printable character; a token that ends
        # inside a UTF-8 character decodes to U+FFFD, its bytes do not.
        piece = self.tokenizer.convert_ids_to_tokens(token)
        if isinstance(piece, str) and all(c in _BYTE_OF for c in piece):
            return [_BYTE_OF[c] for c in piece]
        return list(self.text(token).encode("utf-8"))

    def chat(self, scores: Sequence[TokenLogprob]) -> list[dict[str, Any]]:
        """Chat's `logprobs.content` entries."""
        return [{**self._entry(s.token, s.logprob),
                 "top_logprobs": [self._entry(t, lp) for t, lp in s.top]} for s in scores]

    def _entry(self, token: int, logprob: float) -> dict[str, Any]:
        return {"token": self.text(token), "logprob": logprob, "bytes": self.bytes(token)}

    def legacy(self, ids: Sequence[int], scores: Sequence[TokenLogprob | None], offset: int
               ) -> dict[str, Any]:
        """Completions' `logprobs` object over tokens `ids` (a None score: the prompt's
        first token); `offset` is where the first token's text starts in the choice's text."""
        tokens, offsets = [], []
        for token in ids:
            tokens.append(self.text(token))
            offsets.append(offset)
            offset += len(tokens[-1])
        return {"tokens": tokens,
                "token_logprobs": [None if s is None else s.logprob for s in scores],
                "top_logprobs": [None if s is None else {self.text(t): lp for t, lp in s.top}
                                 for s in scores],
                "text_offset": offsets}


def _byte_alphabet() -> dict[str, int]:
    """GPT-2's byte-to-character table, inverted (bytes that print stand for themselves)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


_BYTE_OF = _byte_alphabet()
