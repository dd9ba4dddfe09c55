"""The real embedder on ONNX Runtime: torch's vectors, a cached export, and clear refusals."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from retrieval import embedder_onnx
from retrieval.embedder import Embedder, EmbedderError

pytestmark = pytest.mark.real_model

TEXTS = [
    "What is the capital of France?",
    "Welche Währung hat Japan? 円 — ¥1,000 (about $6.70).",
    "word " * 400,  # past the model's 256 tokens: truncated the same way on both
    "x",
]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def embedders(artifacts: Path) -> tuple[Embedder, Embedder]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COGCORE_ARTIFACTS", str(artifacts))
        return Embedder(runtime="onnx"), Embedder(runtime="torch")


def test_onnx_gives_torch_vectors_alone_and_in_padded_batches(
        embedders: tuple[Embedder, Embedder]) -> None:
    onnx, torch = embedders
    assert (onnx.runtime, torch.runtime) == ("onnx", "torch")
    batch = onnx.encode(TEXTS)
    assert batch.shape == (len(TEXTS), 384) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, torch.encode(TEXTS), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    for i, text in enumerate(TEXTS):  # alone (no padding) equals its padded row
        np.testing.assert_allclose(onnx.encode([text])[0], batch[i], atol=1e-5)


def test_the_export_is_made_once_and_reused(
        embedders: tuple[Embedder, Embedder], artifacts: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    exports = list((artifacts / "cache" / "embedder").glob("all-MiniLM-L6-v2-*.onnx"))
    assert len(exports) == 1 and exports[0].stat().st_size > 50e6
    monkeypatch.setenv("COGCORE_ARTIFACTS", str(artifacts))
    monkeypatch.setattr(embedder_onnx, "_export", lambda *a: pytest.fail("exported again"))
    assert Embedder().runtime == "onnx"


def test_a_graph_that_differs_from_torch_is_not_used(
        embedders: tuple[Embedder, Embedder], artifacts: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("COGCORE_ARTIFACTS", str(artifacts))
    monkeypatch.setattr(embedder_onnx, "TOLERANCE", -1.0)  # any difference is too much
    with pytest.raises(EmbedderError, match="differs from torch"):
        Embedder(runtime="onnx")
    with caplog.at_level(logging.WARNING, logger="cogcore.retrieval"):
        fallback = Embedder()  # auto: torch, said in the log
    assert fallback.runtime == "torch" and "differs from torch" in caplog.text
    np.testing.assert_allclose(fallback.encode(TEXTS[:1]), embedders[1].encode(TEXTS[:1]))


def test_unknown_runtime_and_onnx_off_the_cpu_are_refused() -> None:
    with pytest.raises(EmbedderError, match="must be one of auto, onnx, torch"):
        Embedder(runtime="tensorrt")
    with pytest.raises(EmbedderError, match="runs on the CPU, not meta"):
        Embedder(device="meta", runtime="onnx")


def test_the_load_check_runs_torch_on_one_thread(artifacts: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A torch parallel region on the loading thread would leave libgomp a second thread pool,
    and with more OpenMP threads than cores it stops spinning: the engine's decoding slowed
    2-3x (docs/speed.md). The check's torch forward runs on one thread, then torch's count is
    back."""
    import torch
    from sentence_transformers import SentenceTransformer

    monkeypatch.setenv("COGCORE_ARTIFACTS", str(artifacts))
    seen: list[int] = []
    forward = SentenceTransformer.forward

    def counting(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformer, "forward", counting)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert Embedder(runtime="onnx").runtime == "onnx"
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
