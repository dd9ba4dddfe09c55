"""Start `cogcore serve` on a free loopback port for a benchmark, and stop it afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_service(model: Path, env: dict[str, str], timeout_s: float = 900
                    ) -> Iterator[tuple[str, str]]:
    """A ready service on `model`: yields (base URL, served model name)."""
    port = free_port()
    exe = Path(sys.executable).with_name("cogcore")
    process = subprocess.Popen(
        [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--model", str(model)],
        env={**os.environ, "HF_HUB_OFFLINE": "1", "COGCORE_LOG_LEVEL": "WARNING", **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("cogcore serve did not become ready")
            time.sleep(0.5)
        yield url, model.resolve().name
    finally:
        process.terminate()
        process.wait(timeout=120)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
