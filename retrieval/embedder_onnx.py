"""The embedder's forward pass on ONNX Runtime: the same vectors, a third of the time per query.

A short query through sentence-transformers' torch modules spends most of its time in Python
module calls and small-matrix kernels (p50 about 23 ms for one question on these cores); the
same graph on ONNX Runtime takes about a third of that, and a batch of 32 questions about a
sixth (as many threads as torch, never spinning). The graph is exported once
from the loaded `SentenceTransformer` (every module: transformer, pooling, normalize) into
`artifacts/cache/embedder/<name>-<key>.onnx`, the key hashing the model directory's files and
the torch and onnx versions, and checked against torch on load: a session whose vectors differ
from torch's by more than `TOLERANCE` is not used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cogcore.paths import artifacts_dir

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

log = logging.getLogger("cogcore.retrieval")

TOLERANCE = 1e-4  # max abs difference of unit-length vectors against torch's
PROBE = ["Which currency is used in Japan?", "Paris is the capital and largest city of France."]


class OnnxUnavailable(RuntimeError):
    """onnx/onnxruntime are missing, or the exported graph does not match torch."""


def _cache_key(model_dir: Path) -> str:
    import onnx
    import torch

    digest = hashlib.sha256(f"torch {torch.__version__} onnx {onnx.__version__}".encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(model_dir)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _export(model: SentenceTransformer, input_names: list[str], out: Path) -> None:
    """Write the model's whole forward (inputs: token tensors; output: sentence_embedding)."""
    import torch

    class Forward(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(dict(zip(input_names, inputs, strict=True)))["sentence_embedding"]

    features = model.preprocess(PROBE)
    args = tuple(features[name] for name in input_names)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f"{out.name}.{os.getpid()}.partial")
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent Python branches
        torch.onnx.export(
            Forward().eval(), args, str(partial), input_names=input_names,
            output_names=["sentence_embedding"], opset_version=17, dynamo=False,
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in input_names})
    os.replace(partial, out)  # concurrent exports: each writes its own file, the last one wins


class OnnxForward:
    """`SentenceTransformer` forward on ONNX Runtime: token features in, unit vectors out."""

    def __init__(self, model: SentenceTransformer, model_dir: Path, name: str,
                 threads: int | None = None, cache_dir: Path | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise OnnxUnavailable("onnxruntime is not installed") from exc
        self._model = model
        self.input_names = [k for k in model.preprocess(PROBE[:1])
                            if k in ("input_ids", "attention_mask", "token_type_ids")]
        directory = cache_dir or artifacts_dir() / "cache" / "embedder"
        try:
            path = directory / f"{name}-{_cache_key(model_dir)}.onnx"
            if not path.is_file():
                log.info(f"exporting the embedder {name} to {path} for ONNX Runtime")
                _export(model, self.input_names, path)
        except ImportError as exc:
            raise OnnxUnavailable("onnx is not installed") from exc
        except OSError as exc:  # a read-only artifacts directory, a full disk
            raise OnnxUnavailable(f"cannot write the ONNX export: {exc}") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or _torch_threads()
        # Never spin waiting for work: the engine's threads need the cores between queries.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(path), options,
                                             providers=["CPUExecutionProvider"])
        self.path = path
        self._check()

    def __call__(self, features: dict[str, Any]) -> np.ndarray:
        """Unit-length float32 rows for `features` as `SentenceTransformer.preprocess` gives."""
        feed = {name: _numpy(features[name]) for name in self.input_names}
        vectors = self._session.run(None, feed)[0].astype(np.float32, copy=False)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12))

    def _check(self) -> None:
        import torch

        features = self._model.preprocess(PROBE)
        # On one thread: a torch parallel region here, on the loading thread, leaves libgomp a
        # pool of threads of this thread's own, and with more OpenMP threads than cores it
        # stops spinning at barriers: the engine's decoding on its own thread then ran 2-3x
        # slower for the life of the process (docs/speed.md, "One OpenMP pool").
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                reference = self._model(features)["sentence_embedding"]
                reference = torch.nn.functional.normalize(reference.float(), p=2, dim=1).numpy()
        finally:
            torch.set_num_threads(threads)
        difference = float(np.abs(self(features) - reference).max())
        if difference > TOLERANCE:
            raise OnnxUnavailable(f"the ONNX graph at {self.path} differs from torch by "
                                  f"{difference:.2e} (> {TOLERANCE:.0e})")


def _torch_threads() -> int:
    """As many threads as torch uses (`COGCORE_TORCH_THREADS` in the service)."""
    import torch

    return torch.get_num_threads()


def _numpy(value: torch.Tensor | np.ndarray) -> np.ndarray:
    array = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
    return array.astype(np.int64, copy=False)
