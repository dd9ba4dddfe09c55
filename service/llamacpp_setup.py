"""The llama.cpp engine from the settings: the GGUF it serves and how it is built.

`COGCORE_ENGINE=llamacpp` serves `COGCORE_GGUF` when set; else the served checkpoint is
exported once at `COGCORE_GGUF_TYPE` into `artifacts/cache/gguf/` (`cogcore.gguf_export.
cached_export`: a changed checkpoint is exported again, an unchanged one starts at once).
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from cogcore.llamacpp import LlamaCppUnavailable, import_llama_cpp
from service.engine import _eos_ids
from service.generation import EngineObserver
from service.llamacpp_engine import LlamaCppEngine

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from service.settings import Settings

log = logging.getLogger("cogcore.engine")


def gguf_path(settings: Settings) -> Path:
    """The GGUF to serve: the setting, else the served checkpoint's export (made if missing)."""
    if settings.gguf is not None:
        if not settings.gguf.is_file():
            raise LlamaCppUnavailable(f"COGCORE_GGUF: no file at {settings.gguf}")
        return settings.gguf
    from cogcore.gguf_export import cached_export

    log.info(f"the llama.cpp engine serves {settings.model_dir} at {settings.gguf_type} "
             "(exported once into artifacts/cache/gguf/)")
    return cached_export(settings.model_dir, settings.gguf_type)


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
