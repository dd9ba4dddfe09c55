"""Server-sent events of a streamed completion: the chunks, keep-alive comments while the first
token waits, an error event when generation fails after the stream started, and `[DONE]`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import replace
from typing import TYPE_CHECKING

from service.errors import ServiceError, service_error_body
from service.protocol import ErrorResponse

if TYPE_CHECKING:
    from pydantic import BaseModel

    from service.generation import Delta

# An SSE comment: clients ignore it, and a proxy with an idle timeout sees bytes go by.
KEEP_ALIVE = ": keep-alive\n\n"
DONE = "data: [DONE]\n\n"


def event(model: BaseModel) -> str:
    """One `data:` event holding `model` as JSON."""
    return f"data: {model.model_dump_json(exclude_none=False)}\n\n"


async def sse(
    deltas: AsyncIterator[Delta],
    first: BaseModel | None,
    chunk: Callable[[Delta], BaseModel | list[BaseModel]],
    usage: Callable[[Delta], BaseModel | list[BaseModel]] | None,
    keep_alive_s: float | None = None,
) -> AsyncIterator[str]:
    """The stream's events; every `keep_alive_s` seconds a comment line while the first delta
    (a queued request's first token) has not come; an error after the start becomes an error
    event. `usage` (the closing event, or events) gets one delta counting every choice's
    tokens (the prompt once)."""
    try:
        if first is not None:
            yield event(first)
        last = None
        tokens: dict[int, int] = {}
        # Closed before `deltas`: a read of them may still be pending inside.
        async with aclosing(_kept_alive(deltas, keep_alive_s)) as items:
            async for item in items:
                if isinstance(item, str):
                    yield item
                    continue
                last = item
                tokens[item.index] = item.completion_tokens
                if item.text or item.finish_reason or item.logprobs:
                    out = chunk(item)  # a list: several events, or none yet (tool calls)
                    for model in out if isinstance(out, list) else [out]:
                        yield event(model)
        if usage is not None and last is not None:
            closing = usage(replace(last, completion_tokens=sum(tokens.values())))
            for model in closing if isinstance(closing, list) else [closing]:
                yield event(model)
    except ServiceError as exc:
        yield event(ErrorResponse(error=service_error_body(exc)))
    finally:
        await deltas.aclose()  # type: ignore[attr-defined]
    yield DONE


async def _kept_alive(deltas: AsyncIterator[Delta], every_s: float | None
                      ) -> AsyncIterator[Delta | str]:
    """`deltas`, with KEEP_ALIVE between them while the first one is awaited."""
    if every_s:
        waiting = asyncio.ensure_future(anext(deltas, None))
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=every_s)
                if done:
                    break
                yield KEEP_ALIVE
            first = waiting.result()
        finally:
            if not waiting.done():  # the client left: stop the read before the stream closes
                waiting.cancel()
                await asyncio.gather(waiting, return_exceptions=True)
        if first is None:
            return
        yield first
    async for delta in deltas:
        yield delta
