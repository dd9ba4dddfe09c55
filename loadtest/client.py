"""One streamed request to an OpenAI-compatible endpoint, with every SSE chunk timestamped.

The timestamps are `time.perf_counter()` readings taken as each event line arrives; the
metrics module turns them into TTFT, inter-token latency and end-to-end latency.
"""

from __future__ import annotations

import ipaddress
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from cogcore.errors import CogcoreError
from loadtest.workload import Prompt

Endpoint = Literal["chat", "completions"]
PATHS: dict[Endpoint, str] = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}


@dataclass
class RequestResult:
    """What one request measured: times are perf_counter seconds, `error` None on success."""

    kind: str
    sent_at: float
    status: int | None = None
    error: str | None = None
    detail: str = ""
    chunk_times: list[float] = field(default_factory=list)
    end_at: float | None = None
    usage_tokens: int | None = None
    prompt_tokens: int | None = None

    @property
    def ok(self) -> bool:
        """True when the stream finished with [DONE] after at least one content chunk."""
        return self.error is None


def build_payload(
    endpoint: Endpoint, model: str, prompt: Prompt, max_tokens: int, temperature: float,
    retrieval: str | None = None,
) -> dict[str, Any]:
    """The streaming request body for one prompt, asking for a final usage chunk."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if retrieval is not None:  # the service's own field: grounded (auto) or engine-only (never)
        body["retrieval"] = retrieval
    if endpoint == "chat":
        body["messages"] = [{"role": "user", "content": prompt.text}]
    else:
        body["prompt"] = prompt.text
    return body


async def stream_request(
    client: httpx.AsyncClient, endpoint: Endpoint, payload: dict[str, Any], kind: str
) -> RequestResult:
    """Send one streamed request and record when each chunk arrived; never raises on failure."""
    result = RequestResult(kind=kind, sent_at=time.perf_counter())
    try:
        async with client.stream("POST", PATHS[endpoint], json=payload) as response:
            result.status = response.status_code
            if response.status_code != 200:
                await response.aread()
                result.error = str(response.status_code)
                result.detail = _error_message(response)
            else:
                await _read_events(response, result, chat=endpoint == "chat")
    except httpx.HTTPError as exc:
        # A transport failure has no status: it is counted by its exception name instead.
        result.error = type(exc).__name__
        result.detail = str(exc)
    if result.end_at is None:
        result.end_at = time.perf_counter()
    return result


async def _read_events(response: httpx.Response, result: RequestResult, chat: bool) -> None:
    async for line in response.aiter_lines():
        now = time.perf_counter()
        if not line.startswith("data:"):
            continue  # blank separators, comments and keep-alives carry no token
        data = line[len("data:"):].strip()
        if data == "[DONE]":
            result.end_at = now
            if not result.chunk_times:
                result.error = "no_tokens"
            return
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            result.error, result.detail = "bad_event", data[:200]
            return
        if "error" in event:
            result.error, result.detail = "stream_error", str(event["error"])[:200]
            return
        _take_event(event, now, result, chat)
    result.error = "incomplete_stream"


def _take_event(event: dict[str, Any], now: float, result: RequestResult, chat: bool) -> None:
    if usage := event.get("usage"):
        result.usage_tokens = usage.get("completion_tokens")
        result.prompt_tokens = usage.get("prompt_tokens")
    for choice in event.get("choices") or []:
        text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
        # A role-only or finish-only chunk carries no generated text, so it is not a token.
        if text:
            result.chunk_times.append(now)


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])[:200]
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


class LoadTestError(CogcoreError):
    """The load test cannot run as asked (bad target, unreachable server...)."""


def require_loopback(url: str, allow_remote: bool) -> None:
    """Refuse a target that is not this machine unless remote targets were explicitly allowed."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise LoadTestError(f"not an http(s) URL: {url!r}")
    if allow_remote or is_loopback_host(parsed.host):
        return
    raise LoadTestError(
        f"{parsed.host} is not a loopback address; a load test floods its target, so one on "
        "another machine needs --allow-remote (and the owner's consent)"
    )


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback IP literals; names are never resolved."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
