"""Grammars compiled once per schema, and the per-request matcher that constrains decoding.

llguidance (chosen by measurement, docs/structured.md) builds its token table from the served
checkpoint's own Hugging Face tokenizer, so a trimmed, re-indexed vocabulary works as the base's
does. A compiled grammar is a string that a fresh `LLMatcher` starts from in microseconds; the
compile (schema to grammar, then its validation against the tokenizer) is what the cache saves.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import llguidance
import llguidance.hf
import numpy as np
import torch

from cogcore.errors import CogcoreError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# JSON as `json.dumps` writes it: ", " and ": " between items, no other whitespace. Free
# whitespace would let a small model pad the reply with newlines until max_tokens.
JSON_FORMAT: dict[str, Any] = {
    "whitespace_flexible": False, "item_separator": ", ", "key_separator": ": ",
}
# Bigger schemas are refused before compiling (the compile holds the model thread's CPU).
MAX_SCHEMA_CHARS = 64_000


class StructuredOutputError(CogcoreError):
    """A schema, tool list or tool_choice that cannot be enforced; the caller answers 400."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Grammar:
    """A validated llguidance grammar (what a matcher starts from)."""

    text: str


class GrammarCompiler:
    """Compiles JSON schemas and Lark grammars for one tokenizer, caching by content.

    Build one per served model (building the token table takes ~0.3 s for 16k tokens, ~0.9 s
    for 49k); it is safe to share between threads."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, *, vocab_size: int | None = None,
                 eos_ids: Iterable[int] = (), cache_size: int = 256) -> None:
        eos = sorted(set(eos_ids) | {tokenizer.eos_token_id} - {None})
        self.vocab_size = vocab_size or len(tokenizer)
        self.tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=self.vocab_size,
                                                      eos_token=eos)
        self.eos_ids = frozenset(eos)
        self.cache_size = cache_size
        self.hits = self.misses = 0
        self._cache: OrderedDict[str, Grammar] = OrderedDict()
        self._lock = threading.Lock()

    def json_schema(self, schema: object, param: str = "response_format") -> Grammar:
        """The grammar of JSON documents valid for `schema` (a dict)."""
        if not isinstance(schema, dict):
            raise StructuredOutputError("a JSON schema must be a JSON object", param)
        text = _dump(schema, param)
        return self._compiled(
            "json:" + text, param,
            lambda: llguidance.LLMatcher.grammar_from_json_schema(text, overrides=JSON_FORMAT))

    def lark(self, lark: str, param: str) -> Grammar:
        """The grammar of a Lark text (llguidance's dialect, `%json {...}` included)."""
        return self._compiled("lark:" + lark, param,
                              lambda: llguidance.LLMatcher.grammar_from_lark(lark))

    def constraint(self, grammar: Grammar) -> GrammarConstraint:
        """A fresh matcher for one reply."""
        return GrammarConstraint(llguidance.LLMatcher(self.tokenizer, grammar.text),
                                 self.vocab_size, self.eos_ids)

    def _compiled(self, key: str, param: str, build: Any) -> Grammar:
        with self._lock:
            if key in self._cache:
                self.hits += 1
                self._cache.move_to_end(key)
                return self._cache[key]
        try:
            text = build()
        except ValueError as exc:
            raise StructuredOutputError(f"invalid {param}: {exc}", param) from exc
        error = llguidance.LLMatcher.validate_grammar(text, self.tokenizer)
        if error:
            raise StructuredOutputError(f"{param} cannot be enforced: {error}", param)
        grammar = Grammar(text)
        with self._lock:
            self.misses += 1
            self._cache[key] = grammar
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return grammar


def _dump(schema: dict, param: str) -> str:
    try:  # keys keep their order: it is the order the grammar writes properties in
        text = json.dumps(schema)
    except (TypeError, ValueError) as exc:  # not JSON data (a Python object, a NaN...)
        raise StructuredOutputError(f"the schema is not JSON: {exc}", param) from exc
    if len(text) > MAX_SCHEMA_CHARS:
        raise StructuredOutputError(
            f"the schema has {len(text)} characters; at most {MAX_SCHEMA_CHARS} are accepted",
            param)
    return text


class GrammarConstraint:
    """One reply's grammar state. Fast path: `fill_bitmask` (or `MaskBatch.apply` for many rows)
    then `advance(token)`; `allowed(reply)` serves the engine's `TokenConstraint` protocol.

    When the grammar is complete the only allowed token is EOS, so the reply ends there."""

    def __init__(self, matcher: llguidance.LLMatcher, vocab_size: int,
                 eos_ids: frozenset[int]) -> None:
        self.matcher = matcher
        self.vocab_size = vocab_size
        self.eos_ids = eos_ids
        self.consumed = 0
        self.ended = False  # EOS consumed
        if matcher.is_error():
            raise StructuredOutputError(matcher.get_error(), "response_format")

    @property
    def finished(self) -> bool:
        """True once the reply has ended on EOS (or the matcher failed): no mask is left to
        compute. (llguidance's own `is_stopped` is earlier: when only EOS may follow.)"""
        return self.ended or self.matcher.is_error()

    @property
    def complete(self) -> bool:
        """True when the text so far is a whole document of the grammar."""
        return self.matcher.is_accepting()

    def fill_bitmask(self, row: torch.Tensor) -> None:
        """Write the allowed-token bitmask (int32 words, bit i = token i) into `row`, a
        contiguous CPU tensor of `bitmask_words(vocab_size)` int32."""
        assert row.dtype == torch.int32 and row.is_contiguous() and not row.is_cuda
        self.matcher.unsafe_compute_mask_ptr(row.data_ptr(), row.numel() * 4)

    def advance(self, token: int) -> None:
        """Consume the sampled token; a token the mask did not allow is a caller's bug."""
        if not self.matcher.consume_token(token):
            raise RuntimeError(f"token {token} breaks the grammar: {self.matcher.get_error()}")
        self.consumed += 1
        self.ended = token in self.eos_ids

    def allowed(self, reply: Sequence[int]) -> frozenset[int]:
        """The ids that may follow `reply` (tokens not yet consumed are consumed first)."""
        for token in reply[self.consumed:]:
            self.advance(token)
        row = torch.empty(bitmask_words(self.vocab_size), dtype=torch.int32)
        self.fill_bitmask(row)
        return frozenset(np.flatnonzero(unpack(row[None])[0]).tolist())


def bitmask_words(vocab_size: int) -> int:
    """int32 words per row of a bitmask over `vocab_size` tokens."""
    return (vocab_size + 31) // 32


def unpack(bitmask: torch.Tensor) -> np.ndarray:
    """(rows, words) int32 bitmask to a (rows, 32 * words) bool array; token i is bit i."""
    raw = bitmask.numpy().view(np.uint8)  # little-endian: byte k holds tokens 8k..8k+7
    return np.unpackbits(raw, axis=-1, bitorder="little").view(bool)


def apply_bitmask(logits: torch.Tensor, bitmask: torch.Tensor, rows: Sequence[int]) -> None:
    """Set `logits[row, token]` to -inf for every token whose bit is off in `bitmask[row]`
    (any library's int32 layout: bit i of word j is token 32 j + i), for the listed rows."""
    allowed = unpack(bitmask[list(rows)])[:, : logits.shape[1]]
    # Tokens past the tokenizer's table (a padded head) are never allowed.
    blocked = torch.ones((len(rows), logits.shape[1]), dtype=torch.bool)
    blocked[:, : allowed.shape[1]] = torch.from_numpy(~allowed)
    index = torch.tensor(list(rows))
    logits[index] = logits[index].masked_fill(blocked.to(logits.device), float("-inf"))


class MaskBatch:
    """Masks for many rows at once, into one preallocated bitmask: the engine's fast path.

    `apply` computes every constrained row's mask in parallel in Rust (the GIL released) and
    sets the other tokens' logits to -inf in place; rows without a constraint are untouched."""

    def __init__(self, vocab_size: int, max_rows: int, threads: int | None = None) -> None:
        self.vocab_size = vocab_size
        self.bitmask = torch.zeros((max_rows, bitmask_words(vocab_size)), dtype=torch.int32)
        self.executor = llguidance.LLExecutor(threads)

    def apply(self, logits: torch.Tensor, rows: Sequence[tuple[int, GrammarConstraint]]) -> None:
        """Restrict `logits[row]` (rows x vocab) to each listed row's grammar."""
        self.mask(logits, self.fill(rows))

    def fill(self, rows: Sequence[tuple[int, GrammarConstraint]]) -> list[int]:
        """Compute the listed rows' masks into `bitmask`; return the rows that got one.

        Needs no logits: an engine may run it on another thread during the forward pass that
        follows `advance` (llguidance releases the GIL), then call `mask`."""
        live = [(row, c) for row, c in rows if not c.finished]
        if not live:
            return []
        needed = max(row for row, _ in live) + 1
        if needed > self.bitmask.shape[0]:
            self.bitmask = torch.zeros((needed, self.bitmask.shape[1]), dtype=torch.int32)
        self.executor.unsafe_compute_mask_ptr(
            [(c.matcher, row) for row, c in live], self.bitmask.data_ptr(),
            self.bitmask.shape[1] * 4, self.bitmask.shape[0])
        return [row for row, _ in live]

    def mask(self, logits: torch.Tensor, rows: Sequence[int]) -> None:
        """Apply the masks `fill` computed for `rows` to `logits` in place."""
        if rows:
            apply_bitmask(logits, self.bitmask, rows)

    def advance(self, rows: Sequence[tuple[GrammarConstraint, int]]) -> None:
        """Feed each constraint its row's sampled token."""
        for constraint, token in rows:
            if not constraint.finished:
                constraint.advance(token)
