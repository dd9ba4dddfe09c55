"""The serving layer: OpenAI requests in, engine calls, OpenAI responses and SSE chunks out.

It knows the protocol types but not HTTP; the routes only hand it parsed requests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import jinja2
import numpy as np

from service.citations import annotations
from service.engine import Delta, Engine
from service.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    ModelNotFound,
    ServiceError,
    UnsupportedParameter,
    service_error_body,
)
from service.grounding import Grounded, Grounding, fit_evidence
from service.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    DeltaMessage,
    EmbeddingData,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorResponse,
    GroundingInfo,
    ModelCard,
    ModelList,
    SamplingFields,
    Source,
    Usage,
    new_id,
    now,
)
from service.sampling import SamplingParams
from service.upstream import UpstreamEngine

if TYPE_CHECKING:
    from pydantic import BaseModel
    from transformers import PreTrainedTokenizerBase

    from cogcore.prompts import Prompt
    from retrieval.embedder import CachedEncoder
    from service.metrics import Metrics

# (parameter, value accepted) for OpenAI fields this service takes only at their default.
DEFAULT_ONLY: dict[str, Callable[[object], bool]] = {
    "n": lambda v: v == 1,
    "logprobs": lambda v: not v,
    "top_logprobs": lambda v: v is None,
    "tools": lambda v: not v,
    "tool_choice": lambda v: v in (None, "none"),
    "response_format": lambda v: v is None or v.get("type") == "text",
    "presence_penalty": lambda v: v == 0,
    "frequency_penalty": lambda v: v == 0,
    "logit_bias": lambda v: not v,
    "echo": lambda v: not v,
    "suffix": lambda v: v is None,
    "best_of": lambda v: v in (None, 1),
}


@dataclass
class Serving:
    """Turns OpenAI requests into engine requests for one served model."""

    engine: Engine | UpstreamEngine
    tokenizer: PreTrainedTokenizerBase
    model_name: str
    max_context: int
    default_max_tokens: int
    timeout_s: float
    embedder: CachedEncoder | None = None
    grounding: Grounding | None = None
    metrics: Metrics | None = None

    def models(self) -> ModelList:
        """The served language model and, when loaded, the embedder."""
        names = [self.model_name] + ([self.embedder.name] if self.embedder else [])
        return ModelList(data=[ModelCard(id=name, created=now()) for name in names])

    def chat_prompt(self, req: ChatCompletionRequest, grounded: Grounded | None = None
                    ) -> tuple[list[int], SamplingParams]:
        """Validate a chat request; its prompt ids (chat template) and sampling."""
        if grounded is not None and grounded.prompt is not None:
            ids = self._reader_ids(grounded)
        else:
            messages = [{"role": "system" if m.role == "developer" else m.role,
                         "content": m.text()} for m in req.messages]
            with _template_errors():
                ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
            ids = ids if isinstance(ids, list) else list(ids["input_ids"])
        return ids, self._params(req, len(ids), req.max_completion_tokens or req.max_tokens)

    def _reader_ids(self, grounded: Grounded) -> list[int]:
        assert grounded.prompt is not None
        return self._prompt_ids(grounded.prompt)

    def _prompt_ids(self, prompt: Prompt) -> list[int]:
        with _template_errors():
            text = prompt.render(self.tokenizer)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _fitted(self, grounded: Grounded, max_tokens: int | None) -> Grounded:
        """Keep the evidence passages that fit the context beside `max_tokens`."""
        if grounded.prompt is None:
            return grounded
        budget = self.max_context - (max_tokens or self.default_max_tokens)
        fitted = fit_evidence(grounded, lambda p: len(self._prompt_ids(p)), budget)
        if fitted is None:
            raise ContextLengthExceeded(
                f"this model's maximum context length is {self.max_context} tokens: the best "
                f"evidence passage and {max_tokens or self.default_max_tokens} new "
                "tokens do not fit; lower max_tokens", "max_tokens")
        return fitted

    async def ground(self, req: SamplingFields, turns: list[str] | None,
                     system: str | None = None, history: list[dict[str, str]] | None = None
                     ) -> Grounded:
        """Route the request's last user turn and gather its evidence (off the event loop);
        a chat's `system` prompt and earlier messages (`history`) go into the reader prompt."""
        history = history or []
        if self.grounding is None or not turns or req.retrieval == "never":
            if req.retrieval == "always":
                raise InvalidRequest("no knowledge base is loaded, or the prompt is not text",
                                     "retrieval")
            return Grounded("reasoning", [])
        started = time.monotonic()
        grounded = await asyncio.to_thread(self.grounding.ground, turns, req.retrieval,
                                           system, history)
        if self.metrics is not None:
            self.metrics.grounded(grounded.route, grounded.abstained,
                                  time.monotonic() - started)
        return grounded

    def completion_prompt(self, req: CompletionRequest) -> tuple[list[int], SamplingParams]:
        """Validate a text completion request; its prompt ids and sampling."""
        prompt = req.prompt
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], int):
            ids = [int(i) for i in prompt]
            if max(ids) >= len(self.tokenizer) or min(ids) < 0:
                raise InvalidRequest("prompt holds token ids outside the vocabulary", "prompt")
        else:
            if isinstance(prompt, list) and len(prompt) != 1:
                raise UnsupportedParameter("only one prompt per request is supported", "prompt")
            text = prompt if isinstance(prompt, str) else prompt[0]
            ids = list(self.tokenizer(text)["input_ids"])
        if not ids:
            raise InvalidRequest("prompt is empty", "prompt")
        return ids, self._params(req, len(ids), req.max_tokens)

    def _params(self, req: SamplingFields, prompt_tokens: int, max_tokens: int | None
                ) -> SamplingParams:
        self._check(req)
        room = self.max_context - prompt_tokens
        if max_tokens is None:
            max_tokens = min(self.default_max_tokens, room)
        if room < 1 or max_tokens > room:
            raise ContextLengthExceeded(
                f"this model's maximum context length is {self.max_context} tokens; the prompt "
                f"has {prompt_tokens} and max_tokens asks for {max_tokens}", "max_tokens")
        return SamplingParams(max_tokens=max_tokens, temperature=req.temperature,
                              top_p=req.top_p, seed=req.seed, stop=tuple(req.stop_list()))

    def _check(self, req: SamplingFields) -> None:
        if req.model != self.model_name:
            raise ModelNotFound(f"model {req.model!r} is not served here; use "
                                f"{self.model_name!r}", "model")
        for name, accepted in DEFAULT_ONLY.items():
            if name in req.model_fields_set and not accepted(getattr(req, name, None)):
                raise UnsupportedParameter(f"parameter {name!r} is not supported", name)

    def _answer(self, grounded: Grounded, ids: list[int], params: SamplingParams
                ) -> AsyncIterator[Delta]:
        """The engine's deltas, the reader prompt's prefix first; or the abstention reply."""
        if grounded.abstained:
            return _abstention(self.grounding.settings.abstain_message if self.grounding else "")
        prefix = grounded.prompt.assistant_prefix if grounded.prompt else ""
        if self.grounding is not None:
            stop_ids = {self.tokenizer.eos_token_id, *getattr(self.engine, "eos_ids", ())}
            constraint = self.grounding.constraint(grounded, self.tokenizer, stop_ids - {None})
            if constraint is not None:
                params = replace(params, constraint=constraint)
        return _prefixed(prefix, self.engine.generate(ids, params, self.timeout_s))

    async def _prepare_chat(self, req: ChatCompletionRequest
                            ) -> tuple[Grounded, AsyncIterator[Delta]]:
        grounded = await self.ground(req, _user_turns(req), *_chat_context(req))
        grounded = self._fitted(grounded, req.max_completion_tokens or req.max_tokens)
        ids, params = self.chat_prompt(req, grounded)
        return grounded, self._answer(grounded, ids, params)

    async def _prepare_completion(self, req: CompletionRequest
                                  ) -> tuple[Grounded, AsyncIterator[Delta]]:
        turns = [req.prompt] if isinstance(req.prompt, str) else None
        grounded = self._fitted(await self.ground(req, turns), req.max_tokens)
        ids, params = self.completion_prompt(req)
        if grounded.prompt is not None:
            ids = self._reader_ids(grounded)
            params = self._params(req, len(ids), req.max_tokens)
        return grounded, self._answer(grounded, ids, params)

    async def chat(self, req: ChatCompletionRequest) -> ChatCompletionResponse:
        """A whole chat completion."""
        grounded, deltas = await self._prepare_chat(req)
        text, last = await _collect(deltas)
        return ChatCompletionResponse(
            id=new_id("chatcmpl"), created=now(), model=self.model_name, usage=_usage(last),
            choices=[ChatChoice(message=AssistantMessage(
                content=text, annotations=annotations(text, grounded.sources)),
                finish_reason=last.finish_reason)],
            cogcore=_info(grounded))

    async def completion(self, req: CompletionRequest) -> CompletionResponse:
        """A whole text completion."""
        grounded, deltas = await self._prepare_completion(req)
        text, last = await _collect(deltas)
        return CompletionResponse(
            id=new_id("cmpl"), created=now(), model=self.model_name, usage=_usage(last),
            choices=[CompletionChoice(text=text, finish_reason=last.finish_reason)],
            cogcore=_info(grounded))

    async def chat_stream(self, req: ChatCompletionRequest) -> AsyncIterator[str]:
        """Queue a chat request now; its SSE lines (role and sources, deltas, usage, [DONE])."""
        grounded, deltas = await self._prepare_chat(req)
        rid, created = new_id("chatcmpl"), now()

        def chunk(delta: DeltaMessage, reason: str | None = None) -> ChatCompletionChunk:
            return ChatCompletionChunk(id=rid, created=created, model=self.model_name,
                                       choices=[ChatChunkChoice(delta=delta,
                                                                finish_reason=reason)])

        def usage(last: Delta) -> ChatCompletionChunk:
            return ChatCompletionChunk(id=rid, created=created, model=self.model_name,
                                       choices=[], usage=_usage(last))

        first = chunk(DeltaMessage(role="assistant", content=""))
        first.cogcore = _info(grounded)
        said: list[str] = []

        def step(d: Delta) -> ChatCompletionChunk:
            said.append(d.text)
            delta = DeltaMessage(content=d.text or None)
            if d.finish_reason and grounded.sources:  # the citations, once, with the last
                delta.annotations = annotations("".join(said), grounded.sources)
            return chunk(delta, d.finish_reason)

        return _sse(deltas, first, step, usage if _include_usage(req) else None)

    async def completion_stream(self, req: CompletionRequest) -> AsyncIterator[str]:
        """Queue a text completion now; its SSE lines (sources, deltas, usage, [DONE])."""
        grounded, deltas = await self._prepare_completion(req)
        rid, created = new_id("cmpl"), now()

        def chunk(d: Delta) -> CompletionResponse:
            return CompletionResponse(id=rid, created=created, model=self.model_name,
                                      choices=[CompletionChoice(text=d.text,
                                                                finish_reason=d.finish_reason)])

        first = CompletionResponse(id=rid, created=created, model=self.model_name,
                                   choices=[CompletionChoice(text="")], cogcore=_info(grounded))

        def usage(last: Delta) -> CompletionResponse:
            return CompletionResponse(id=rid, created=created, model=self.model_name,
                                      choices=[], usage=_usage(last))

        return _sse(deltas, first, chunk, usage if _include_usage(req) else None)

    async def embeddings(self, req: EmbeddingRequest) -> EmbeddingResponse:
        """Embed the inputs with the retrieval embedder (off the event loop)."""
        if self.embedder is None or req.model != self.embedder.name:
            loaded = repr(self.embedder.name) if self.embedder else "none is loaded"
            raise ModelNotFound(f"embedding model {req.model!r} is not served here ({loaded})",
                                "model")
        if req.dimensions is not None and req.dimensions != self.embedder.dim:
            raise UnsupportedParameter(f"dimensions must be {self.embedder.dim}", "dimensions")
        texts = [req.input] if isinstance(req.input, str) else req.input
        if not texts:
            raise InvalidRequest("input is empty", "input")
        vectors = await asyncio.to_thread(self.embedder.encode, texts)
        tokens = sum(self.embedder.count_tokens(t) for t in texts)
        return EmbeddingResponse(
            model=self.embedder.name, usage=Usage(prompt_tokens=tokens, total_tokens=tokens),
            data=[EmbeddingData(index=i, embedding=_encode_vector(v, req.encoding_format))
                  for i, v in enumerate(vectors)])


@contextlib.contextmanager
def _template_errors() -> Iterator[None]:
    """A chat the model's chat template refuses (roles that do not alternate, a system message
    it does not take): the client's request, a 400, not a server error."""
    try:
        yield
    except jinja2.TemplateError as exc:
        raise InvalidRequest(f"the model's chat template refuses these messages: {exc}",
                             "messages") from exc


def _user_turns(req: ChatCompletionRequest) -> list[str]:
    """What the user said, turn by turn: a follow-up is read against the earlier turns."""
    return [m.text() for m in req.messages if m.role == "user"]


def _chat_context(req: ChatCompletionRequest) -> tuple[str | None, list[dict[str, str]]]:
    """The client's system prompt (system and developer messages joined) and the user and
    assistant messages before the last user message: what the reader prompt keeps."""
    system = "\n\n".join(m.text() for m in req.messages
                          if m.role in ("system", "developer") and m.text().strip())
    last = max((i for i, m in enumerate(req.messages) if m.role == "user"), default=0)
    history = [{"role": m.role, "content": m.text()} for m in req.messages[:last]
               if m.role in ("user", "assistant") and m.text().strip()]
    return system or None, history


def _info(grounded: Grounded) -> GroundingInfo:
    sources = [Source(id=h.document_id, chunk_id=h.chunk_id, text=h.text, score=h.score,
                      metadata=h.metadata) for h in grounded.sources]
    return GroundingInfo(route=grounded.route, sources=sources, abstained=grounded.abstained,
                         query=grounded.query if grounded.route == "facts" else None)


async def _abstention(message: str) -> AsyncIterator[Delta]:
    """The fixed reply of an abstention: no prompt was run, so no tokens are counted."""
    yield Delta(text=message, completion_tokens=0, prompt_tokens=0, finish_reason="stop")


async def _prefixed(prefix: str, deltas: AsyncIterator[Delta]) -> AsyncIterator[Delta]:
    """The reader prompt starts the reply; the client sees that start as the first text."""
    try:
        first = True
        async for delta in deltas:
            if first and prefix:
                delta = Delta(prefix + delta.text, delta.completion_tokens,
                              delta.prompt_tokens, delta.finish_reason)
            first = False
            yield delta
    finally:
        await deltas.aclose()  # type: ignore[attr-defined]


def _include_usage(req: SamplingFields) -> bool:
    return bool(req.stream_options and req.stream_options.include_usage)


def _usage(last: Delta) -> Usage:
    return Usage(prompt_tokens=last.prompt_tokens, completion_tokens=last.completion_tokens,
                 total_tokens=last.prompt_tokens + last.completion_tokens)


def _encode_vector(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode()
    return vector.tolist()


async def _collect(deltas: AsyncIterator[Delta]) -> tuple[str, Delta]:
    parts, last = [], None
    async for delta in deltas:
        parts.append(delta.text)
        last = delta
    assert last is not None  # the engine always ends a request with a finishing delta
    return "".join(parts), last


def _event(model: BaseModel) -> str:
    return f"data: {model.model_dump_json(exclude_none=False)}\n\n"


async def _sse(
    deltas: AsyncIterator[Delta],
    first: BaseModel | None,
    chunk: Callable[[Delta], BaseModel],
    usage: Callable[[Delta], BaseModel] | None,
) -> AsyncIterator[str]:
    """Server-sent events; an error after the stream started becomes an error event."""
    try:
        if first is not None:
            yield _event(first)
        last = None
        async for delta in deltas:
            last = delta
            if delta.text or delta.finish_reason:
                yield _event(chunk(delta))
        if usage is not None and last is not None:
            yield _event(usage(last))
    except ServiceError as exc:
        yield _event(ErrorResponse(error=service_error_body(exc)))
    finally:
        await deltas.aclose()  # type: ignore[attr-defined]
    yield "data: [DONE]\n\n"
