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
    device: str = typer.Option(None, help="auto, cpu or cuda [default: auto]"),
) -> None:
    """Serve the model over an OpenAI-compatible HTTP API (settings: COGCORE_* variables)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import uvicorn

    from service.app import create_app
    from service.settings import Settings

    overrides = {"host": host, "port": port, "model_dir": model, "kb_dir": kb, "device": device}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    if not (settings.model_dir / "config.json").is_file():
        raise CogcoreError(f"no checkpoint at {settings.model_dir}: run `cogcore base import` "
                           "or pass --model DIR")
    # SIGTERM: uvicorn stops accepting, waits for in-flight requests up to the drain timeout,
    # then the lifespan drains the engine and stops it.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                timeout_graceful_shutdown=int(settings.drain_timeout_s) or None,
                log_config=None, access_log=False)
