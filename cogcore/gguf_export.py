"""Export a checkpoint to one GGUF file that llama.cpp loads and tokenizes as transformers does.

The reverse of `cogcore.checkpoint.import_gguf`, and its neighbour for the same reason: the
checkpoint directory is the contract between `pruning` and `service`, and both the command line
and the service (a llama.cpp engine) may need its GGUF form, while `service` never imports
`pruning`.

What the file holds (llama.cpp's `llama` architecture):
- the weights, renamed with gguf's own tensor map; q_proj and k_proj rows permuted to the
  interleaved rotary layout llama.cpp's `llama` graph expects (as its converter does);
- the feed-forward width: llama.cpp's `llama` graph takes one width for every layer, so each
  layer is zero-padded to the widest layer rounded up to the quantization block (32 for q8_0
  and q4_k_m, none for f32/f16). A padded neuron has zero gate, up and down weights and adds
  exactly zero, so the padding changes no output; it only costs file size (`ExportResult`);
- the tokenizer written from the checkpoint itself, never identified by a hash of token ids
  (which is why llama.cpp's converter refuses the trimmed core): tokens, token types, merges,
  the pre-tokenizer chosen from tokenizer.json's structure, the special ids and whether
  transformers adds BOS/EOS, and the chat template.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cogcore.checkpoint_id import checkpoint_id
from cogcore.errors import CogcoreError
from cogcore.paths import artifacts_dir

if TYPE_CHECKING:
    import gguf

EXPORT_TYPES = ("f32", "f16", "q8_0", "q4_k_m")


class ExportError(CogcoreError):
    """A checkpoint cannot be written as GGUF (unsupported architecture, tokenizer or type)."""


@dataclass(frozen=True)
class ExportResult:
    """What `export_gguf` wrote."""

    path: Path
    out_type: str
    n_ff: tuple[int, ...]  # each layer's width in the checkpoint
    n_ff_written: int  # the one width in the file (>= max(n_ff): zero padding)
    padded_params: int  # zero weights added by the padding
    size_bytes: int

    def describe(self) -> str:
        """One line for humans."""
        widths = sorted(set(self.n_ff))
        pad = (
            f", feed-forward {'/'.join(map(str, widths))} zero-padded to {self.n_ff_written}"
            f" (+{self.padded_params / 1e6:.2f}M zero weights)"
            if self.padded_params else ""
        )
        return f"{self.path} ({self.out_type}, {self.size_bytes / 2**20:.1f} MiB{pad})"


def permute_rotary(weight: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder q/k projection rows from HF's half-split rotary layout to llama.cpp's interleaved."""
    rows = weight.shape[0]
    return (
        weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def pad_feed_forward(name: str, weight: np.ndarray, width: int) -> np.ndarray:
    """Zero-pad one MLP projection to `width` neurons (gate/up rows, down columns)."""
    axis = 1 if name.endswith("down_proj.weight") else 0
    missing = width - weight.shape[axis]
    if missing == 0:
        return weight
    pad = [(0, 0)] * weight.ndim
    pad[axis] = (0, missing)
    return np.pad(weight, pad)


def block_size(out_type: str) -> int:
    """Row lengths must be a multiple of this for `out_type` (q4_k_m: its fallback, q5_0/q8_0)."""
    return {"f32": 1, "f16": 1, "q8_0": 32, "q4_k_m": 32}[out_type]


def _read_config(model_dir: Path) -> dict:
    path = model_dir / "config.json"
    if not path.is_file():
        raise ExportError(f"{model_dir} has no config.json: not a Hugging Face checkpoint")
    config = json.loads(path.read_text())
    if config.get("model_type") != "llama":
        raise ExportError(
            f"{model_dir} is a {config.get('model_type')!r} model; GGUF export supports the "
            "Llama architecture (SmolLM2 and the cores cut from it)"
        )
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    if rope.get("rope_type", "default") != "default":
        raise ExportError(f"rope scaling {rope.get('rope_type')!r} is not supported by the export")
    if config.get("attention_bias") or config.get("mlp_bias"):
        raise ExportError("Llama checkpoints with attention or MLP biases are not supported")
    return config


def _read_tensors(model_dir: Path) -> dict[str, np.ndarray]:
    """Every tensor of the checkpoint's safetensors files, as float32 numpy arrays."""
    from safetensors import safe_open

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise ExportError(f"{model_dir} has no *.safetensors weights")
    tensors: dict[str, np.ndarray] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():
                tensors[name] = handle.get_tensor(name).float().numpy()
    return tensors


def feed_forward_widths(tensors: dict[str, np.ndarray], n_layers: int) -> tuple[int, ...]:
    """Each layer's MLP width, read from the weights (not the config)."""
    widths = []
    for layer in range(n_layers):
        shapes = {
            tensors[f"model.layers.{layer}.mlp.gate_proj.weight"].shape[0],
            tensors[f"model.layers.{layer}.mlp.up_proj.weight"].shape[0],
            tensors[f"model.layers.{layer}.mlp.down_proj.weight"].shape[1],
        }
        if len(shapes) != 1:
            raise ExportError(f"layer {layer}: gate, up and down disagree on the MLP width")
        widths.append(shapes.pop())
    return tuple(widths)


def _ggml_type(out_type: str, data: np.ndarray) -> gguf.GGMLQuantizationType:
    import gguf

    if data.ndim == 1 or out_type == "f32":
        return gguf.GGMLQuantizationType.F32  # norms stay f32 at every type, as in llama.cpp
    return {"f16": gguf.GGMLQuantizationType.F16, "q8_0": gguf.GGMLQuantizationType.Q8_0}[
        out_type
    ]


def _add_tensors(
    writer: gguf.GGUFWriter, config: dict, tensors: dict[str, np.ndarray], width: int,
    out_type: str,
) -> None:
    import gguf

    n_layers = config["num_hidden_layers"]
    names = gguf.TensorNameMap(gguf.MODEL_ARCH.LLAMA, n_layers)
    n_head, n_kv = config["num_attention_heads"], config["num_key_value_heads"]
    for name, data in tensors.items():
        if name.endswith("rotary_emb.inv_freq"):
            continue
        if name == "lm_head.weight" and config.get("tie_word_embeddings"):
            continue  # llama.cpp reuses token_embd when output.weight is absent
        target = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise ExportError(f"no GGUF name for tensor {name!r}")
        if name.endswith("q_proj.weight"):
            data = permute_rotary(data, n_head)
        elif name.endswith("k_proj.weight"):
            data = permute_rotary(data, n_kv)
        elif ".mlp." in name:
            data = pad_feed_forward(name, data, width)
        qtype = _ggml_type(out_type, data)
        if qtype == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(target, np.ascontiguousarray(data, dtype=np.float32))
        elif qtype == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(target, data.astype(np.float16))
        else:
            writer.add_tensor(target, gguf.quants.quantize(data, qtype), raw_dtype=qtype)


def _add_hparams(writer: gguf.GGUFWriter, config: dict, width: int, name: str) -> None:
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    rope = config.get("rope_parameters") or {}
    writer.add_name(name)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(width)
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_rope_freq_base(float(rope.get("rope_theta", config.get("rope_theta", 10000.0))))
    writer.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))
    writer.add_rope_dimension_count(head_dim)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_vocab_size(config["vocab_size"])


def _file_type(out_type: str) -> int:
    import gguf

    return {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }[out_type]


def _write(model_dir: Path, out: Path, out_type: str, block: int) -> ExportResult:
    import gguf

    from cogcore.gguf_vocab import add_tokenizer

    config = _read_config(model_dir)
    tensors = _read_tensors(model_dir)
    widths = feed_forward_widths(tensors, config["num_hidden_layers"])
    width = -(-max(widths) // block) * block
    padded = sum(3 * (width - w) * config["hidden_size"] for w in widths)
    writer = gguf.GGUFWriter(out, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    _add_hparams(writer, config, width, model_dir.resolve().name)
    writer.add_file_type(_file_type(out_type))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    add_tokenizer(writer, model_dir, config["vocab_size"])
    _add_tensors(writer, config, tensors, width, out_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return ExportResult(out, out_type, widths, width, padded, out.stat().st_size)


def export_gguf(model_dir: Path, out: Path, out_type: str = "f32") -> ExportResult:
    """Write `model_dir` as a GGUF file at `out` (written beside it, then renamed into place)."""
    model_dir, out = Path(model_dir), Path(out)
    if out_type not in EXPORT_TYPES:
        choices = ", ".join(EXPORT_TYPES)
        raise ExportError(f"unknown GGUF type {out_type!r}: choose one of {choices}")
    if not model_dir.is_dir():
        raise ExportError(f"checkpoint directory {model_dir} does not exist")
    if out_type == "q4_k_m":
        _llama_cpp(out_type)  # before minutes of work, not after
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    try:
        if out_type == "q4_k_m":
            # f32 for llama.cpp's quantizer, padded already for the blocks it will write
            result = _write(model_dir, partial, "f32", block_size(out_type))
            quantized = out.with_name(f".{out.name}.q4_k_m.partial")
            llama_quantize(partial, quantized, "q4_k_m")
            os.replace(quantized, out)
        else:
            result = _write(model_dir, partial, out_type, block_size(out_type))
            os.replace(partial, out)
    finally:
        for leftover in out.parent.glob(f".{out.name}.*partial"):
            leftover.unlink()
    return ExportResult(
        out, out_type, result.n_ff, result.n_ff_written, result.padded_params, out.stat().st_size
    )


def cache_key(model_dir: Path, out_type: str) -> str:
    """What identifies an export: the checkpoint's config and weight files, and the type."""
    digest = hashlib.sha256(out_type.encode())
    digest.update((model_dir / "config.json").read_bytes())
    for weights in sorted(model_dir.glob("*.safetensors")):
        stat = weights.stat()
        digest.update(f"{weights.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def cached_export(model_dir: Path, out_type: str) -> Path:
    """The checkpoint's GGUF at `out_type` in `artifacts/cache/gguf/`, exported once: the file
    is named `<checkpoint id>-<type>-<cache_key>`, so a changed checkpoint is exported again
    and an unchanged one is found at once, by the service and the evaluation alike."""
    name = f"{checkpoint_id(model_dir)}-{out_type}-{cache_key(model_dir, out_type)}.gguf"
    out = artifacts_dir() / "cache" / "gguf" / name
    if not out.is_file():
        export_gguf(model_dir, out, out_type)
    return out


def _llama_cpp(out_type: str):
    from cogcore.llamacpp import LlamaCppUnavailable, import_llama_cpp

    try:
        return import_llama_cpp()
    except LlamaCppUnavailable as exc:
        raise ExportError(f"--type {out_type} needs llama.cpp's quantizer: {exc}; "
                          "or export q8_0") from exc


def llama_quantize(source: Path, out: Path, out_type: str) -> None:
    """Quantize a GGUF with llama.cpp's own quantizer (the optional `llamacpp` extra)."""
    import ctypes

    llama_cpp = _llama_cpp(out_type)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = {"q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}[out_type]
    status = llama_cpp.llama_model_quantize(
        str(source).encode(), str(out).encode(), ctypes.byref(params)
    )
    if status != 0:
        raise ExportError(f"llama.cpp could not quantize {source} to {out_type} (status {status})")
