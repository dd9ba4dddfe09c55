"""GGUF export, read back with gguf's own reader: every tensor, the hyperparameters, the tokenizer.

The tiny checkpoints run everywhere; the core-shaped checkpoint is cut from the real default base
the way the default core is (its MLP width in every layer, its vocabulary trim, re-indexed), so
its tokenizer and shapes are the real ones without the core's build.
"""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from cogcore.gguf_export import ExportError, export_gguf
from cogcore.gguf_vocab import VocabExportError, pre_tokenizer_name
from pruning.compact import compact_mlp
from pruning.default_core import DEFAULT_VOCAB, DEFAULT_VOCAB_SELECTION, DEFAULT_WIDTH
from pruning.vocab import trim_vocabulary
from tests.conftest import run_cogcore

Q8_BLOCK = 32
Q8_ERROR = 0.5 + 127 * 2**-11  # of a block's scale max|w|/127


def _cut(source: Path, out: Path, width: int, vocab: int | None = None) -> Path:
    """`source` with `width` random MLP neurons kept per layer (and its vocabulary trimmed)."""
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(source)
    generator = torch.Generator().manual_seed(0)
    full = model.config.intermediate_size
    keep = {layer: torch.randperm(full, generator=generator)[:width].sort().values
            for layer in range(model.config.num_hidden_layers)}
    compact_mlp(model, keep)
    if vocab is not None:
        tokenizer = trim_vocabulary(model, tokenizer, vocab, selection=DEFAULT_VOCAB_SELECTION)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _fields(reader: gguf.GGUFReader) -> dict[str, object]:
    return {name: field.contents() for name, field in reader.fields.items()}


def _unpermute(weight: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's interleaved rotary rows back to HF's half-split order."""
    half = weight.shape[0] // n_head // 2
    return weight.reshape(n_head, half, 2, -1).swapaxes(1, 2).reshape(weight.shape)


def _as_checkpoint(name: str, data: np.ndarray, config: dict, width: int) -> np.ndarray:
    """A GGUF tensor in the checkpoint's layout: rotary order undone, zero padding checked off."""
    if name.endswith("attn_q.weight"):
        return _unpermute(data, config["num_attention_heads"])
    if name.endswith("attn_k.weight"):
        return _unpermute(data, config["num_key_value_heads"])
    if name.endswith("ffn_down.weight"):
        assert not data[:, width:].any(), "padding neurons must be exactly zero"
        return data[:, :width]
    if name.endswith(("ffn_gate.weight", "ffn_up.weight")):
        assert not data[width:].any(), "padding neurons must be exactly zero"
        return data[:width]
    return data


def _hf_name(name: str) -> str:
    table = {"token_embd": "model.embed_tokens", "output_norm": "model.norm",
             "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
             "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
             "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    parts = name.removesuffix(".weight").split(".")
    if parts[0] == "blk":
        return f"model.layers.{parts[1]}.{table[parts[2]]}.weight"
    return f"{table[parts[0]]}.weight"


def _check_tensors(checkpoint: Path, path: Path, out_type: str) -> int:
    """Every checkpoint tensor is in the file, equal (f32), rounded (f16) or in q8_0's bound."""
    config = json.loads((checkpoint / "config.json").read_text())
    width = config["intermediate_size"]
    weights = load_file(checkpoint / "model.safetensors")
    reader = gguf.GGUFReader(path)
    seen = set()
    for tensor in reader.tensors:
        data = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        name = _hf_name(tensor.name)
        got = _as_checkpoint(tensor.name, data, config, width)
        want = weights[name].float().numpy()
        seen.add(name)
        if tensor.tensor_type == gguf.GGMLQuantizationType.Q8_0:
            rows = np.pad(want, [(0, 0), (0, -want.shape[1] % Q8_BLOCK)])
            scale = np.abs(rows.reshape(rows.shape[0], -1, Q8_BLOCK)).max(axis=2) / 127
            # half a step, plus the block scale's own rounding to f16 (127 steps of 2^-11)
            bound = np.repeat(scale, Q8_BLOCK, axis=1)[:, : want.shape[1]] * Q8_ERROR + 1e-7
            assert (np.abs(got - want) <= bound).all(), name
        elif tensor.tensor_type == gguf.GGMLQuantizationType.F16:
            np.testing.assert_array_equal(got, want.astype(np.float16).astype(np.float32))
        else:
            assert tensor.tensor_type == gguf.GGMLQuantizationType.F32, (name, out_type)
            np.testing.assert_array_equal(got, want, err_msg=name)
    assert seen == set(weights), set(weights) ^ seen
    return len(seen)


def _check_metadata(checkpoint: Path, path: Path, n_ff: int) -> None:
    config = json.loads((checkpoint / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    spec = json.loads((checkpoint / "tokenizer.json").read_text())
    fields = _fields(gguf.GGUFReader(path))
    assert fields["general.architecture"] == "llama"
    assert fields["llama.feed_forward_length"] == n_ff
    assert fields["llama.block_count"] == config["num_hidden_layers"]
    assert fields["llama.attention.head_count_kv"] == config["num_key_value_heads"]
    assert fields["llama.vocab_size"] == config["vocab_size"] == len(tokenizer)
    tokens = fields["tokenizer.ggml.tokens"]
    assert tokens == tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    control = {i for i, kind in enumerate(fields["tokenizer.ggml.token_type"])
               if kind == gguf.TokenType.CONTROL}
    assert control == set(tokenizer.all_special_ids) | {
        i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    assert fields["tokenizer.ggml.merges"] == [" ".join(m) for m in spec["model"]["merges"]]
    assert fields["tokenizer.ggml.model"] == "gpt2"
    assert fields["tokenizer.ggml.pre"] == "gpt-2"  # what the checkpoints' tokenizer.json holds
    assert fields["tokenizer.ggml.bos_token_id"] == tokenizer.bos_token_id
    assert fields["tokenizer.ggml.eos_token_id"] == tokenizer.eos_token_id
    assert fields["tokenizer.ggml.padding_token_id"] == tokenizer.pad_token_id
    assert fields["tokenizer.ggml.add_bos_token"] in (False,)  # SmolLM2 encodes without BOS
    assert fields["tokenizer.chat_template"] == tokenizer.chat_template


@pytest.mark.parametrize("out_type", ["f32", "f16", "q8_0"])
def test_tiny_llama_round_trips(tiny_llama_dir: Path, tmp_path: Path, out_type: str) -> None:
    result = export_gguf(tiny_llama_dir, tmp_path / "tiny.gguf", out_type)
    assert result.n_ff == (128, 128) and result.n_ff_written == 128 and result.padded_params == 0
    assert _check_tensors(tiny_llama_dir, result.path, out_type) == 2 + 2 * 9
    _check_metadata(tiny_llama_dir, result.path, 128)
    assert not list(tmp_path.glob(".*partial"))


def test_odd_width_is_zero_padded_for_q8_0_only(tiny_llama_dir: Path, tmp_path: Path) -> None:
    cut = _cut(tiny_llama_dir, tmp_path / "cut", 100)
    exact = export_gguf(cut, tmp_path / "f32.gguf", "f32")
    assert exact.n_ff_written == 100 and exact.padded_params == 0
    _check_tensors(cut, exact.path, "f32")
    q8 = export_gguf(cut, tmp_path / "q8.gguf", "q8_0")
    assert q8.n_ff_written == 128 and q8.padded_params == 2 * 3 * 28 * 64
    _check_tensors(cut, q8.path, "q8_0")
    _check_metadata(cut, q8.path, 128)


@pytest.mark.real_model
def test_core_shaped_checkpoint_round_trips(default_base_dir: Path, tmp_path: Path) -> None:
    core = _cut(default_base_dir, tmp_path / "core", DEFAULT_WIDTH, DEFAULT_VOCAB)
    result = export_gguf(core, tmp_path / "core.gguf", "q8_0")
    padded = -(-DEFAULT_WIDTH // Q8_BLOCK) * Q8_BLOCK  # q8_0 rows hold whole blocks
    assert result.n_ff == (DEFAULT_WIDTH,) * 30 and result.n_ff_written == padded
    assert _check_tensors(core, result.path, "q8_0") == 2 + 30 * 9
    _check_metadata(core, result.path, padded)
    assert result.size_bytes < 0.3 * (core / "model.safetensors").stat().st_size


def test_pre_tokenizer_is_read_from_the_structure() -> None:
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
    model = {"type": "BPE", "byte_fallback": False, "ignore_merges": False}
    assert pre_tokenizer_name({"model": model, "pre_tokenizer": byte_level}) == "gpt-2"
    digits = {"type": "Digits", "individual_digits": True}
    smollm = {"type": "Sequence", "pretokenizers": [digits, byte_level]}
    assert pre_tokenizer_name({"model": model, "pre_tokenizer": smollm}) == "smollm"
    for bad in ({"model": model, "pre_tokenizer": {**byte_level, "add_prefix_space": True}},
                {"model": model, "pre_tokenizer": {"type": "Metaspace"}},
                {"model": model, "pre_tokenizer": byte_level, "normalizer": {"type": "NFC"}},
                {"model": {**model, "byte_fallback": True}, "pre_tokenizer": byte_level}):
        with pytest.raises(VocabExportError):
            pre_tokenizer_name(bad)


def test_refusals_are_clear(tiny_qwen2_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="Llama architecture"):
        export_gguf(tiny_qwen2_dir, tmp_path / "q.gguf")
    with pytest.raises(ExportError, match="unknown GGUF type"):
        export_gguf(tiny_qwen2_dir, tmp_path / "q.gguf", "q3_k")
    with pytest.raises(ExportError, match="does not exist"):
        export_gguf(tmp_path / "missing", tmp_path / "q.gguf")
    assert not list(tmp_path.iterdir())


def test_q4_k_m_without_llama_cpp_names_the_extra(tiny_llama_dir: Path, tmp_path: Path) -> None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("llama_cpp is installed: tests/cogcore/test_gguf_llamacpp.py quantizes")
    with pytest.raises(ExportError, match="make llamacpp"):
        export_gguf(tiny_llama_dir, tmp_path / "q4.gguf", "q4_k_m")
    assert not list(tmp_path.iterdir())


def test_cli_exports_and_refuses(tiny_llama_dir: Path, tiny_qwen2_dir: Path,
                                 tmp_path: Path) -> None:
    out = tmp_path / "tiny.gguf"
    done = run_cogcore("export", "gguf", "--model", str(tiny_llama_dir), "--out", str(out),
                       "--type", "q8_0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    assert _fields(gguf.GGUFReader(out))["general.file_type"] == gguf.LlamaFileType.MOSTLY_Q8_0
    refused = run_cogcore("export", "gguf", "--model", str(tiny_qwen2_dir), "--out",
                          str(tmp_path / "q.gguf"))
    assert refused.returncode == 1 and "Llama architecture" in refused.stderr
    assert "Traceback" not in refused.stderr
