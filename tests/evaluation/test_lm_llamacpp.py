"""The evaluation's model interface on llama.cpp (the optional extra) against the torch one.

A tiny random Llama checkpoint exported at f32: option log-likelihoods, running-text NLL and
greedy replies equal the torch model's; a whole (tiny) evaluation of the export through
`evaluate_checkpoint(gguf_type=...)` and `cogcore eval --gguf`. Skipped without llama_cpp.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cogcore.checkpoint import load_causal_lm
from cogcore.gguf_export import export_gguf
from cogcore.prompts import Prompt
from evaluation.lm import HFEvalModel
from evaluation.run import evaluate_checkpoint
from tests.cli.test_eval_cli import TINY, _assert_keys
from tests.conftest import run_cogcore

pytest.importorskip(
    "llama_cpp", reason="llama.cpp extra not installed: `make llamacpp` (or make llamacpp-test)")

from evaluation.lm_llamacpp import LlamaCppEvalModel  # noqa: E402  (needs the extra)

pytestmark = pytest.mark.llamacpp

QUESTIONS = [("Q: 7 is greater than 3?\nA:", [" yes", " no"]),
             ("All blickets are daxes. Is", [" every dax a wug", " No", " True"]),
             ("a b c", [" d", " e f g h"])]
TEXT = "The quick brown fox jumps over the lazy dog.\n\n" * 60  # more than one 512-token window


@pytest.fixture(scope="module")
def models(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    model, tokenizer = load_causal_lm(tiny_llama_dir)
    gguf = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    export_gguf(tiny_llama_dir, gguf, "f32")
    llama = LlamaCppEvalModel(gguf, tokenizer, {tokenizer.eos_token_id}, batch_size=4)
    yield HFEvalModel(model, tokenizer, batch_size=4), llama
    llama.close()


def test_option_logliks_equal_torch(models) -> None:
    torch_lm, llama_lm = models
    for ours, theirs in zip(llama_lm.choice_logliks(QUESTIONS), torch_lm.choice_logliks(QUESTIONS),
                            strict=True):
        assert ours == pytest.approx(theirs, abs=1e-3)


def test_text_nll_equals_torch_over_several_windows(models) -> None:
    torch_lm, llama_lm = models
    total, count = llama_lm.text_nll(TEXT)
    expected_total, expected_count = torch_lm.text_nll(TEXT)
    assert count == expected_count > 511
    assert total == pytest.approx(expected_total, rel=1e-4)


def test_greedy_replies_equal_torch_and_stop_at_a_newline(models) -> None:
    torch_lm, llama_lm = models
    prompts = [Prompt(({"role": "user", "content": text},)) for text in
               ("a b", "What is two plus two?", "x " * 30, "Tell me a story.", "hi")]
    ours = llama_lm.generate(prompts, max_new_tokens=12)
    assert ours == torch_lm.generate(prompts, max_new_tokens=12)
    assert all("\n" not in reply for reply in ours)


def test_speed_is_measured_at_batch_1_and_32(models) -> None:
    _, llama_lm = models
    speed = llama_lm.speed(["one prompt", "another prompt"], new_tokens=4)
    assert speed["new_tokens"] == 4
    assert speed["tokens_per_s_batch1"] > 0 and speed["tokens_per_s_batch32"] > 0


def test_a_whole_evaluation_of_the_export(tiny_llama_dir: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COGCORE_ARTIFACTS", str(tmp_path))
    result = evaluate_checkpoint(tiny_llama_dir, sizes=TINY, batch_size=4, gguf_type="q8_0")
    _assert_keys(result)
    assert result["gguf"]["type"] == "q8_0"
    assert Path(result["gguf"]["path"]).parent == tmp_path / "cache" / "gguf"
    assert result["name"].endswith("(q8_0)")


def test_cogcore_eval_gguf_compares_with_the_torch_run(tiny_llama_dir: Path,
                                                       tmp_path: Path) -> None:
    env = {"COGCORE_ARTIFACTS": str(tmp_path)}
    torch_run = run_cogcore("eval", "--model", str(tiny_llama_dir), "--quick",
                            "--out", str(tmp_path / "torch"), env=env)
    assert torch_run.returncode == 0, torch_run.stderr
    gguf_run = run_cogcore("eval", "--model", str(tmp_path / "torch"), "--compare",
                           str(tiny_llama_dir), "--gguf", "f32", "--quick",
                           "--out", str(tmp_path / "both"), env=env)
    assert gguf_run.returncode == 0, gguf_run.stderr
    report = json.loads((tmp_path / "both" / "eval.json").read_text())
    [export] = report["compare"]
    assert export["name"] == f"{tiny_llama_dir.name} (f32)" and export["gguf"]["type"] == "f32"
    # The same weights at f32: the same perplexity, in one table with the torch run.
    assert export["suites"]["perplexity"]["value"] == pytest.approx(
        report["suites"]["perplexity"]["value"], rel=1e-3)
    assert export["name"] in (tmp_path / "both" / "eval.md").read_text()
