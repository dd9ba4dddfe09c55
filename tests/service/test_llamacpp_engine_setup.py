"""Choosing the llama.cpp engine: a clear error without the extra, and the export's cache key.

No llama.cpp needed: these run everywhere.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cogcore.gguf_export import cache_key
from cogcore.llamacpp import LlamaCppUnavailable, import_llama_cpp
from service.llamacpp_setup import gguf_path
from service.settings import Settings


def test_missing_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails as when not installed
    with pytest.raises(LlamaCppUnavailable, match="make llamacpp"):
        import_llama_cpp()


def test_cache_key_follows_the_checkpoint_and_the_type(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"a": 1}')
    (tmp_path / "model.safetensors").write_bytes(b"x" * 10)
    key = cache_key(tmp_path, "f32")
    assert cache_key(tmp_path, "f32") == key
    assert cache_key(tmp_path, "q8_0") != key
    (tmp_path / "model.safetensors").write_bytes(b"x" * 11)
    assert cache_key(tmp_path, "f32") != key


def test_a_named_gguf_that_is_missing_is_refused(tmp_path: Path) -> None:
    settings = Settings(engine="llamacpp", gguf=tmp_path / "absent.gguf", model_dir=tmp_path)
    with pytest.raises(LlamaCppUnavailable, match="COGCORE_GGUF"):
        gguf_path(settings)


def test_the_served_types_are_the_export_types(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every type `cogcore export gguf` writes can be served, and nothing else."""
    from pydantic import ValidationError

    from cogcore.gguf_export import EXPORT_TYPES

    for out_type in EXPORT_TYPES:
        monkeypatch.setenv("COGCORE_GGUF_TYPE", out_type)
        assert Settings().gguf_type == out_type
    monkeypatch.setenv("COGCORE_GGUF_TYPE", "q3_k")
    with pytest.raises(ValidationError, match="gguf_type"):
        Settings()
