"""A real `cogcore serve` subprocess on a free loopback port, its stderr kept for inspection.

The one home for starting a real server and waiting until it is ready: the tests, the
benchmarks and load tests against a local model use it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def memory_mib(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of process `pid` from /proc (Linux), in MiB: VmRSS (resident now) or
    VmHWM (peak resident)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for process {pid}")


@dataclass
class Server:
    """A running service: its process, URL, served model name and log file."""

    process: subprocess.Popen
    url: str
    model: str
    log_path: Path

    def gauge(self, name: str) -> float:
        """One unlabelled-or-model-labelled gauge from /metrics (e.g. num_requests_running)."""
        return self.gauges(name)[0]

    def gauges(self, *names: str) -> list[float]:
        """Several gauges from one /metrics scrape, so that they describe the same moment
        (running + waiting read in two scrapes misses a request admitted in between)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        values = []
        for name in names:
            match = re.search(rf"^cogcore:{name}(?:\{{[^}}]*\}})? (\S+)$", text, re.M)
            assert match, f"no cogcore:{name} in /metrics"
            values.append(float(match.group(1)))
        return values

    def rss_mb(self) -> float:
        """Resident memory of the server process, in MiB (Linux /proc)."""
        return memory_mib(self.process.pid, "VmRSS")

    def log(self) -> str:
        """Everything the server wrote to stderr (JSON log lines) so far."""
        return self.log_path.read_text(errors="replace")


def start(model_dir: Path, log_path: Path, env: dict[str, str] | None = None,
          kb_dir: Path | None = None, port: int | None = None,
          timeout_s: float = 600, cogcore: str | None = None) -> Server:
    """Start `cogcore serve` on loopback and wait until /ready answers 200.

    `cogcore` is the command to run (default: the one installed beside this Python).
    """
    port = port or free_port()
    exe = cogcore or str(Path(sys.executable).with_name("cogcore"))
    args = [exe, "serve", "--host", "127.0.0.1", "--port", str(port),
            "--model", str(model_dir)]
    if kb_dir is not None:
        args += ["--kb", str(kb_dir)]
    log = log_path.open("ab")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COGCORE_TORCH_THREADS": "2", **(env or {})}
    process = subprocess.Popen(args, stdout=log, stderr=log, env=env)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"cogcore serve exited: {log_path.read_text()[-2000:]}")
        try:
            ready = httpx.get(f"{url}/ready", timeout=5).status_code == 200
        except httpx.TransportError:
            ready = False
        if ready:
            try:
                return Server(process, url, served_model(url, env), log_path)
            except httpx.HTTPError:  # no server left behind when its id cannot be read
                process.kill()
                process.wait(timeout=30)
                raise
        time.sleep(0.2)
    process.kill()
    process.wait(timeout=30)
    raise AssertionError("cogcore serve never became ready")


def served_model(url: str, env: dict[str, str] | None = None) -> str:
    """The id the service at `url` serves its language model under (the first of
    /v1/models), asked with the first API or admin key in `env`, if it sets any."""
    keys = [key.strip() for name in ("COGCORE_API_KEYS", "COGCORE_ADMIN_KEYS")
            for key in (env or {}).get(name, "").split(",") if key.strip()]
    headers = {"Authorization": f"Bearer {keys[0]}"} if keys else {}
    response = httpx.get(f"{url}/v1/models", headers=headers, timeout=10)
    response.raise_for_status()
    return response.json()["data"][0]["id"]


def stop(server: Server, sig: int = signal.SIGTERM, timeout_s: float = 60) -> int:
    """Signal the server and wait for it (killing it past `timeout_s`); its exit status."""
    if server.process.poll() is None:
        server.process.send_signal(sig)
        try:
            return server.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            server.process.kill()
    return server.process.wait(timeout=30)


@contextmanager
def running_service(model: Path, env: dict[str, str], timeout_s: float = 900
                    ) -> Iterator[tuple[str, str]]:
    """A ready service on `model` with its log in a scratch directory: yields (URL, model name)."""
    with tempfile.TemporaryDirectory() as scratch:
        server = start(model, Path(scratch) / "serve.log",
                       env={"COGCORE_LOG_LEVEL": "WARNING", **env}, timeout_s=timeout_s)
        try:
            yield server.url, server.model
        finally:
            stop(server, timeout_s=120)
