"""Start `cogcore serve` on a free loopback port for a benchmark, and stop it afterwards.

The process handling is the tests' live-server harness (`tests/live_server.py`), one home for
starting a real server and waiting until it is ready.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root

from tests.live_server import free_port, start, stop  # noqa: E402

__all__ = ["free_port", "running_service"]


@contextmanager
def running_service(model: Path, env: dict[str, str], timeout_s: float = 900
                    ) -> Iterator[tuple[str, str]]:
    """A ready service on `model`: yields (base URL, served model name)."""
    with tempfile.TemporaryDirectory() as scratch:
        server = start(model, Path(scratch) / "serve.log",
                       env={"COGCORE_LOG_LEVEL": "WARNING", **env}, timeout_s=timeout_s)
        try:
            yield server.url, server.model
        finally:
            stop(server, timeout_s=120)
