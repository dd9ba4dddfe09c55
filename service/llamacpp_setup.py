"""The llama.cpp engine from the settings: the GGUF it serves and how it is built.

`COGCORE_ENGINE=llamacpp` serves `COGCORE_GGUF` when set; else the served checkpoint is
exported once (`cogcore.gguf_export`, at `COGCORE_GGUF_TYPE`) into `artifacts/cache/gguf/`
under a key of its config, its weight files' sizes and times, and the type, so that a changed
checkpoint is exported again and an unchanged one starts at once.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from cogcore.paths import artifacts_dir
from service.checkpoint_id import checkpoint_id
from service.engine import _eos_ids
from service.generation import EngineObserver
from service.llamacpp_engine import LlamaCppEngine, LlamaCppUnavailable, import_llama_cpp

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from service.settings import Settings

log = logging.getLogger("cogcore.engine")


def cache_key(model_dir: Path, out_type: str) -> str:
    """What identifies an export: the checkpoint's config and weight files, and the type."""
    digest = hashlib.sha256(out_type.encode())
    digest.update((model_dir / "config.json").read_bytes())
    for weights in sorted(model_dir.glob("*.safetensors")):
        stat = weights.stat()
        digest.update(f"{weights.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def gguf_path(settings: Settings) -> Path:
    """The GGUF to serve: the setting, else the served checkpoint's export (made if missing)."""
    if settings.gguf is not None:
        if not settings.gguf.is_file():
            raise LlamaCppUnavailable(f"COGCORE_GGUF: no file at {settings.gguf}")
        return settings.gguf
    from cogcore.gguf_export import export_gguf

    model_dir = settings.model_dir
    out_type = settings.gguf_type
    name = f"{checkpoint_id(model_dir)}-{out_type}-{cache_key(model_dir, out_type)}"
    out = artifacts_dir() / "cache" / "gguf" / f"{name}.gguf"
    if not out.is_file():
        log.info(f"exporting {model_dir} to {out} for the llama.cpp engine")
        export_gguf(model_dir, out, out_type)
    return out


def make_llamacpp_engine(settings: Settings, tokenizer: PreTrainedTokenizerBase,
                         observer: EngineObserver | None) -> LlamaCppEngine:
    """The llama.cpp engine the settings describe (a clear error without the extra)."""
    from transformers import GenerationConfig

    import_llama_cpp()  # before any export: the missing extra is the first thing said
    try:
        generation = GenerationConfig.from_pretrained(settings.model_dir, local_files_only=True)
    except OSError:  # no generation_config.json: the tokenizer's EOS alone
        generation = None
    eos = _eos_ids(SimpleNamespace(generation_config=generation), tokenizer)  # type: ignore[arg-type]
    return LlamaCppEngine(
        gguf_path(settings), tokenizer, eos, max_batch_size=settings.max_batch_size,
        max_waiting=settings.max_waiting, retry_after_s=settings.retry_after_s,
        n_ctx=settings.llamacpp_ctx, threads=settings.llamacpp_threads, observer=observer)
