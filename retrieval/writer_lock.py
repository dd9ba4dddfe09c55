"""One writer per knowledge base, across processes: an exclusive `flock` on a lock file.

The kernel drops the lock when its holder dies, even by SIGKILL, so a crash never leaves a
stale lock behind. Readers take no lock: SQLite's WAL gives them consistent snapshots.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from retrieval.errors import WriterLockedError


class WriterLock:
    """An exclusive, non-blocking (or bounded-wait) lock on `path`."""

    def __init__(self, path: Path, timeout_s: float = 0.0) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(self._fd)
                    raise WriterLockedError(
                        f"another process is writing to {path.parent}; open it read-only "
                        "or retry when that writer is done"
                    ) from None
                time.sleep(0.05)

    def release(self) -> None:
        """Let the next writer in."""
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1
