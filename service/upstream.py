"""Generation on an upstream OpenAI-compatible engine: the scale-out path.

With `COGCORE_UPSTREAM_URL` set, this service keeps what it owns (auth, limits, routing,
retrieval, the reader prompt, metrics) and sends the prompt's token ids to the upstream's
`/v1/completions` (vLLM, llama.cpp's server, or another cogcore) as a stream. Token ids, not
text, so that the upstream sees exactly the prompt this service built and measured.

The OpenAI API has no way to send a per-token constraint. A vLLM upstream that loads this
project's logits processor (`service.vllm_plugin`) carries it: declared by
`COGCORE_UPSTREAM_CONSTRAINT=vllm`, each grounded request's constraint then goes in
`vllm_xargs`, and `carries_constraint()` (asked by /ready) checks that the upstream applies it.
Otherwise grounded replies are not held to their evidence here (`applies_constraints` is
False; a warning says so once). Of the
per-request features, `n` and the logits processors that OpenAI fields express (`logit_bias`,
presence and frequency penalties) are passed through; anything else (logprobs, which the
upstream reports as token strings rather than ids; echo; a grammar) is a 400 naming it at
submission, never silently dropped. A connection that cannot be made is retried with backoff
a few times (nothing was sent yet); an error after that is a 502.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Literal

import httpx

from service.errors import (
    InvalidRequest,
    NotReady,
    QueueFull,
    RequestTimeout,
    ServiceError,
    UnsupportedParameter,
)
from service.generation import Delta, DeltaStream, EngineObserver, GenerationRequest
from service.sampling import SamplingParams
from service.vllm_plugin.wire import constraint_xargs, forcing

log = logging.getLogger("cogcore.upstream")


class UpstreamError(ServiceError):
    """The upstream engine failed or could not be reached."""

    status = 502
    type = "upstream_error"
    code = "upstream_error"


class UpstreamEngine:
    """A `GenerationEngine` over HTTP to an upstream: at most `max_running` streams open, at
    most `max_waiting` more admitted and waiting for one."""

    stop_ids: frozenset[int] = frozenset()
    applies_constraints = False

    def __init__(self, url: str, model: str, api_key: str | None = None,
                 max_running: int = 64, max_waiting: int = 64, retry_after_s: int = 1,
                 observer: EngineObserver | None = None, connect_tries: int = 4,
                 backoff_s: float = 0.25, constraint: Literal["none", "vllm"] = "none",
                 tokenizer: Any = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers,
                                         timeout=httpx.Timeout(None, connect=10))
        self.model = model
        self.observer = observer
        self._slots = asyncio.Semaphore(max_running)
        self.max_running = max_running
        self.max_waiting = max_waiting
        self.retry_after_s = retry_after_s
        # Connect errors are retried: tries in all, the first wait, doubling (0.25+0.5+1 s).
        self.connect_tries, self.backoff_s = connect_tries, backoff_s
        self.num_running = 0
        self._admitted = 0  # running and waiting: released when a stream closes
        self._accepting = True
        self._warned = False
        # "vllm": the upstream loads service.vllm_plugin, so constraints go in vllm_xargs.
        self.applies_constraints = constraint == "vllm"
        self._tokenizer = tokenizer  # the served model's: its tokens make the probe

    @property
    def num_waiting(self) -> int:
        """Requests admitted and waiting for a stream slot."""
        return self._admitted - self.num_running

    def start(self) -> None:
        """Nothing to start (the upstream runs on its own): say whether it holds grounded
        replies to their evidence."""
        if self.applies_constraints:
            log.info("the evidence constraint is carried to the upstream in vllm_xargs (its vLLM "
                     "must load service.vllm_plugin; /ready checks that it applies it)")

    async def carries_constraint(self) -> bool:
        """Whether the upstream applies a constraint sent in `vllm_xargs`: two greedy one-token
        completions of the same prompt, each held to another token, differ only if it does."""
        if self._tokenizer is None:
            raise ValueError("no tokenizer to make the probe from")
        probe = _probe_tokens(self._tokenizer)
        texts = []
        for token in probe:
            body = {"model": self.model, "prompt": [probe[0]], "max_tokens": 1,
                    "temperature": 0, "vllm_xargs": constraint_xargs(forcing(token))}
            response = await self._client.post("/v1/completions", json=body)
            if response.status_code != 200:
                return False
            texts.append(response.json()["choices"][0]["text"])
        return texts[0] != texts[1]

    def stop(self) -> None:
        """Refuse new requests (the HTTP client closes with the event loop)."""
        self._accepting = False

    async def drain(self, timeout_s: float) -> bool:
        """Refuse new requests and wait for the admitted ones; True when all finished."""
        self._accepting = False
        deadline = time.monotonic() + timeout_s
        while self._admitted and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await self._client.aclose()
        return not self._admitted

    def submit(self, request: GenerationRequest) -> DeltaStream:
        """Admit one request now (503 while shutting down, 429 when full); its deltas."""
        if not self._accepting:
            raise NotReady("the service is shutting down")
        if self._admitted >= self.max_running + self.max_waiting:
            raise QueueFull(f"{self.num_waiting} requests are already waiting; retry later",
                            self.retry_after_s)
        _check_carried(request.params)
        if request.params.constraint is not None and not self.applies_constraints \
                and not self._warned:
            self._warned = True
            log.warning("the upstream engine cannot apply token constraints: grounded "
                        "replies are not held to their evidence")
        self._admitted += 1
        return DeltaStream(self._generate(request, time.monotonic()), self._release)

    def _release(self) -> None:
        self._admitted -= 1  # called once per admitted stream (DeltaStream's finalizer)

    async def _generate(self, request: GenerationRequest, arrival: float
                        ) -> AsyncGenerator[Delta, None]:
        timeout_s = request.timeout_s
        try:
            async with asyncio.timeout(timeout_s):  # from admission, as the local engine's
                await self._slots.acquire()
                self.num_running += 1
                try:
                    if self.observer:
                        self.observer.admitted(time.monotonic() - arrival,
                                               len(request.prompt_ids))
                    async for delta in self._stream(request.prompt_ids, request.params,
                                                    arrival):
                        yield delta
                finally:
                    self.num_running -= 1
                    self._slots.release()
        except TimeoutError as exc:
            raise RequestTimeout(f"request exceeded the {timeout_s:g}s timeout") from exc

    async def _stream(self, prompt_ids: list[int], params: SamplingParams, arrival: float
                      ) -> AsyncIterator[Delta]:
        body = {"model": self.model, "prompt": prompt_ids, "max_tokens": params.max_tokens,
                "temperature": params.temperature, "top_p": params.top_p, "stream": True,
                "stream_options": {"include_usage": True}}
        if params.seed is not None:
            body["seed"] = params.seed
        if params.n > 1:
            body["n"] = params.n
        for processor in params.processors:
            body.update(processor.openai_fields())  # type: ignore[attr-defined]
        if params.stop:
            body["stop"] = list(params.stop)
        if params.constraint is not None and self.applies_constraints:
            body["vllm_xargs"] = constraint_xargs(params.constraint)  # type: ignore[arg-type]
        try:
            response = await self._send(body)
            try:
                if response.status_code != 200:
                    raise _upstream_failure(response.status_code, await response.aread())
                previous: float | None = None
                async for delta in _deltas(response.aiter_lines()):
                    previous = self._observe(delta, arrival, previous)
                    yield delta
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream unreachable: {type(exc).__name__}") from exc

    async def _send(self, body: dict) -> httpx.Response:
        """POST the completion, retrying with backoff while the connection cannot be made:
        then nothing was sent and nothing received, so a retry cannot run it twice."""
        for attempt in range(1, self.connect_tries + 1):
            try:
                request = self._client.build_request("POST", "/v1/completions", json=body)
                return await self._client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == self.connect_tries:
                    raise
                delay = self.backoff_s * 2 ** (attempt - 1)
                log.warning("upstream connect failed (%s), try %d of %d: retrying in %.2fs",
                            type(exc).__name__, attempt, self.connect_tries, delay)
                await asyncio.sleep(delay)
        raise AssertionError("connect_tries must be at least 1")

    def _observe(self, delta: Delta, arrival: float, previous: float | None) -> float | None:
        """Feed the metrics as the local engine does; returns the time of the last token."""
        now = time.monotonic()
        if self.observer is None:
            return now
        if delta.text:
            self.observer.token(None if previous is None else now - previous, now - arrival)
        if delta.finish_reason:
            self.observer.finished(now - arrival, delta.finish_reason)
        return now if delta.text else previous


def _probe_tokens(tokenizer: Any) -> tuple[int, int]:
    """Two token ids of `tokenizer` that decode to different, non-empty text: held to one or
    the other, an upstream that applies the constraint answers differently."""
    seen: dict[str, int] = {}
    for token in tokenizer(" A B", add_special_tokens=False)["input_ids"]:
        seen.setdefault(tokenizer.decode([token]), token)
    first, second = [token for text, token in seen.items() if text][:2]
    return first, second


def _check_carried(params: SamplingParams) -> None:
    """A 400 naming the first feature of `params` that the OpenAI API cannot carry."""
    for name in params.asks_for():
        carried = name == "n" or any(getattr(p, "param", None) == name
                                     and hasattr(p, "openai_fields") for p in params.processors)
        if not carried:
            raise UnsupportedParameter(
                f"parameter {name!r} is not supported with an upstream engine", name)


async def _deltas(lines: AsyncIterator[str]) -> AsyncIterator[Delta]:
    """OpenAI completion SSE events to deltas; each choice's last one carries its finish
    reason (every choice ends once the stream does)."""
    reasons: dict[int, str | None] = {0: None}
    counts: dict[int, int] = {0: 0}
    prompt_tokens, total = 0, None
    async for line in lines:
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        event = json.loads(line.removeprefix("data: "))
        if "error" in event:
            raise UpstreamError(f"upstream: {event['error'].get('message', 'error')}")
        if event.get("usage"):
            prompt_tokens = event["usage"]["prompt_tokens"]
            total = event["usage"]["completion_tokens"]
        for choice in event.get("choices", []):
            index = choice.get("index", 0)
            reasons.setdefault(index, None)
            if choice.get("text"):
                counts[index] = counts.get(index, 0) + 1  # a fallback count
                yield Delta(choice["text"], counts[index], prompt_tokens, index=index)
            reasons[index] = choice.get("finish_reason") or reasons[index]
    if total is not None and len(reasons) == 1:  # the usage event corrects a lone choice's
        counts[0] = total
    for index in sorted(reasons):
        yield Delta("", counts.get(index, 0), prompt_tokens, reasons[index] or "stop",
                    index=index)


def _upstream_failure(status: int, body: bytes) -> ServiceError:
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = body[:200].decode(errors="replace")
    if status == 429:
        return QueueFull(f"upstream is full: {message}")
    if status == 400:
        return InvalidRequest(f"upstream refused the request: {message}")
    return UpstreamError(f"upstream answered {status}: {message}")
