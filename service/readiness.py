"""What `/ready` checks once the model is loaded: the parts this replica depends on.

    readiness = Readiness(kb, upstream_url, api_key, constraints_carried=engine.applies_constraints)
    body = await readiness.check()   # {"status": "ready", ...}, or NotReady (503) naming the part

- The knowledge base, when it is a database (a `ping` method): one cheap query with a short
  timeout. An embedded store is a local file that was opened at start: nothing to ask.
- The upstream engine, when one generates: GET its /v1/models with a short timeout.
Each result, good or bad, is kept for `ttl_s`, so a probe every second (or a balancer's many
probes) costs the database and the upstream at most one request per `ttl_s`. The body also
says whether grounded replies are held to their evidence: an upstream cannot carry that
constraint (docs/facts.md gives the accuracy lost).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

from service.errors import NotReady

log = logging.getLogger("cogcore.ready")
NOT_CARRIED = ("not carried: the upstream engine cannot apply the evidence constraint, so "
               "grounded replies are not held to their evidence (docs/facts.md)")


class Readiness:
    """The cached checks behind /ready; see the module docstring."""

    def __init__(self, kb: Any, upstream_url: str | None = None, api_key: str | None = None,
                 constraints_carried: bool = True, ttl_s: float = 1.5,
                 timeout_s: float = 2.0) -> None:
        self.kb, self.ttl_s, self.timeout_s = kb, ttl_s, timeout_s
        self.upstream_url = upstream_url.rstrip("/") if upstream_url else None
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.constraint = "applied" if constraints_carried else NOT_CARRIED
        self._cached: tuple[float, dict[str, str], str | None] | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> dict[str, Any]:
        """The /ready body, or NotReady naming what is unreachable (both cached `ttl_s`)."""
        async with self._lock:  # concurrent probes share one round of checks
            if self._cached is None or time.monotonic() - self._cached[0] > self.ttl_s:
                self._cached = (time.monotonic(), *await self._run())
            _, parts, failure = self._cached
        if failure is not None:
            raise NotReady(failure)
        return {"status": "ready", **parts, "evidence_constraint": self.constraint}

    async def _run(self) -> tuple[dict[str, str], str | None]:
        parts: dict[str, str] = {}
        ping = getattr(self.kb, "ping", None)
        if ping is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(ping, self.timeout_s),
                                       self.timeout_s + 1)
                parts["knowledge_base"] = "ok"
            except Exception as exc:  # any failure means: do not send traffic here
                return parts, f"the knowledge-base database is unreachable: {_reason(exc)}"
        if self.upstream_url is not None:
            try:
                async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                    response = await client.get(f"{self.upstream_url}/v1/models",
                                                headers=self._headers)
                if response.status_code != 200:
                    return parts, f"the upstream engine answered {response.status_code}"
                parts["upstream"] = "ok"
            except httpx.HTTPError as exc:
                return parts, f"the upstream engine is unreachable: {_reason(exc)}"
        return parts, None


def _reason(exc: BaseException) -> str:
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
