"""`cogcore serve`: the OpenAI-compatible service on uvicorn."""

from __future__ import annotations

from pathlib import Path

import typer

from cogcore.errors import CogcoreError


def serve(
    host: str = typer.Option(None, help="Interface to bind [default: COGCORE_HOST or 127.0.0.1]"),
    port: int = typer.Option(None, help="Port [default: COGCORE_PORT or 8000]"),
    model: Path = typer.Option(None, help="Checkpoint directory [default: the core, else base]"),
    kb: Path = typer.Option(None, help="Knowledge-base directory [default: artifacts/kb/default]"),
    kb_url: str = typer.Option(
        None, "--kb-url", help="A PostgreSQL + pgvector knowledge base shared by replicas, "
        "postgresql://… [default: COGCORE_KB_URL; unset: the --kb directory]"),
    device: str = typer.Option(None, help="auto, cpu or cuda [default: auto]"),
    engine: str = typer.Option(
        None, help="torch, or llamacpp (the optional extra: the checkpoint exported to GGUF, "
        "or COGCORE_GGUF) [default: COGCORE_ENGINE or torch]"),
) -> None:
    """Serve the model over an OpenAI-compatible HTTP API (settings: COGCORE_* variables)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import uvicorn

    from retrieval.backends import is_database_url
    from service.app import create_app
    from service.settings import Settings

    if kb_url is not None and not is_database_url(kb_url):
        raise typer.BadParameter("not a postgresql:// URL", param_hint="--kb-url")
    overrides = {"host": host, "port": port, "model_dir": model, "kb_dir": kb, "device": device,
                 "kb_url": kb_url, "engine": engine}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    if not (settings.model_dir / "config.json").is_file():
        raise CogcoreError(f"no checkpoint at {settings.model_dir}: run `cogcore base import` "
                           "or pass --model DIR")
    if settings.engine == "llamacpp":
        from cogcore.llamacpp import import_llama_cpp

        import_llama_cpp()  # without the extra: one clear line now, not after loading
        if settings.gguf is not None and not settings.gguf.is_file():
            raise CogcoreError(f"no GGUF at {settings.gguf} (COGCORE_GGUF)")
    if settings.kb_url and settings.load_kb:
        from retrieval.postgres.knowledge_base import connect

        connect(settings.kb_url).close()  # unreachable: one clear line now, not after loading
    # SIGTERM: uvicorn stops accepting, waits for in-flight requests up to the drain timeout,
    # then the lifespan drains the engine and stops it.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                timeout_graceful_shutdown=int(settings.drain_timeout_s) or None,
                log_config=None, access_log=False)
