"""A fast, deterministic stand-in for the sentence embedder: hashed bags of words."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np


class HashingEncoder:
    """Unit vectors from hashed lower-case words: same words, same vector; no model needed."""

    name = "hashing-test-encoder"

    def __init__(self, dim: int = 384, max_tokens: int = 256) -> None:
        self.dim, self.max_tokens = dim, max_tokens
        self.encoded = 0  # texts encoded so far: tests check what was (not) re-embedded

    def encode(self, texts: list[str]) -> np.ndarray:
        """One unit row per text."""
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                out[row, int.from_bytes(digest, "little") % self.dim] += 1.0
        out[:, 0] += 1e-3  # no zero rows
        self.encoded += len(texts)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        """Words stand in for tokens."""
        return [len(text.split()) for text in texts]
