"""What `/ready` checks once the model is loaded: the parts this replica depends on.

    readiness = Readiness(kb, upstream_url, api_key, constraints_carried=engine.applies_constraints,
                          probe=engine.carries_constraint)  # the probe: an upstream's only
    body = await readiness.check()   # {"status": "ready", ...}, or NotReady (503) naming the part

- The knowledge base, when it is a database (a `ping` method): one cheap query with a short
  timeout. An embedded store is a local file that was opened at start: nothing to ask.
- The upstream engine, when one generates: GET its /v1/models with a short timeout.
Each result, good or bad, is kept for `ttl_s`, so a probe every second (or a balancer's many
probes) costs the database and the upstream at most one request per `ttl_s`. The body also
says whether grounded replies are held to their evidence (`evidence_constraint`): "applied" by
the local engine; with an upstream, carried only by a vLLM that loads `service.vllm_plugin`
(declared by `COGCORE_UPSTREAM_CONSTRAINT=vllm`), which `probe` checks (two one-token
requests, repeated every `probe_ttl_s`); else not carried (docs/deploy.md gives the accuracy
lost). Either way /ready answers 200: the replies are served, and the body says how.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from service.errors import NotReady

log = logging.getLogger("cogcore.ready")
NOT_CARRIED = ("not carried: the upstream engine cannot apply the evidence constraint, so "
               "grounded replies are not held to their evidence (docs/deploy.md: the accuracy "
               "lost)")
CARRIED = ("carried: the upstream vLLM applies it (service.vllm_plugin; a probe request was "
           "held to its token)")
UNCHECKED = "declared carried (COGCORE_UPSTREAM_CONSTRAINT=vllm); the probe has not answered yet"
IGNORED = ("not carried: COGCORE_UPSTREAM_CONSTRAINT=vllm, but the upstream ignored a probe "
           "constraint; start vLLM with --logits-processors "
           "service.vllm_plugin.processor:EvidenceConstraintProcessor (docs/deploy.md)")


class Readiness:
    """The cached checks behind /ready; see the module docstring."""

    def __init__(self, kb: Any, upstream_url: str | None = None, api_key: str | None = None,
                 constraints_carried: bool = True, ttl_s: float = 1.5,
                 timeout_s: float = 2.0,
                 probe: Callable[[], Awaitable[bool]] | None = None,
                 probe_ttl_s: float = 300.0, probe_timeout_s: float = 30.0) -> None:
        self.kb, self.ttl_s, self.timeout_s = kb, ttl_s, timeout_s
        self.upstream_url = upstream_url.rstrip("/") if upstream_url else None
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.constraint = "applied" if constraints_carried else NOT_CARRIED
        self._probe = probe if constraints_carried and self.upstream_url else None
        if self._probe is not None:
            self.constraint = UNCHECKED
        self.probe_ttl_s, self.probe_timeout_s = probe_ttl_s, probe_timeout_s
        self._probed_at: float | None = None
        self._probing: asyncio.Task[None] | None = None
        self._cached: tuple[float, dict[str, str], str | None] | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> dict[str, Any]:
        """The /ready body, or NotReady naming what is unreachable (both cached `ttl_s`)."""
        async with self._lock:  # concurrent probes share one round of checks
            if self._cached is None or time.monotonic() - self._cached[0] > self.ttl_s:
                self._cached = (time.monotonic(), *await self._run())
                if self._cached[2] is None:
                    self._start_probe()
            _, parts, failure = self._cached
        if failure is not None:
            raise NotReady(failure)
        return {"status": "ready", **parts, "evidence_constraint": self.constraint}

    def _start_probe(self) -> None:
        """Probe the upstream's constraint in the background (a probe is a generation, slower
        than a readiness check), once the upstream answers, again every `probe_ttl_s`."""
        now = time.monotonic()
        if self._probe is None or (self._probing is not None and not self._probing.done()) \
                or (self._probed_at is not None and now - self._probed_at < self.probe_ttl_s):
            return
        self._probing = asyncio.get_running_loop().create_task(self._check_constraint(now))

    async def _check_constraint(self, now: float) -> None:
        """One probe; an error leaves the last answer (or UNCHECKED), retried at a later check."""
        assert self._probe is not None
        try:
            carried = await asyncio.wait_for(self._probe(), self.probe_timeout_s)
        except (httpx.HTTPError, TimeoutError, ValueError, KeyError, IndexError) as exc:
            log.warning("the upstream's constraint probe failed: %s", _reason(exc))
            return
        self._probed_at = now
        previous, self.constraint = self.constraint, CARRIED if carried else IGNORED
        if self.constraint != previous:
            (log.info if carried else log.warning)("evidence constraint: %s", self.constraint)

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
