"""The serving layer: OpenAI requests in, one engine call each, OpenAI responses and SSE out.

One request path: a request is grounded (routed, its evidence found, or abstained), its prompt
ids and sampling are built and checked (`service.request_prompts`), and what grounding prepared
(the prompt ids, the evidence constraint) goes to the engine in one `GenerationRequest`. It
knows the protocol types but not HTTP; the routes only hand it parsed requests.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from service import choices as choice_set
from service import responses
from service.citations import annotations
from service.errors import InvalidRequest, ModelNotFound, UnsupportedParameter
from service.generation import Delta, GenerationEngine, GenerationRequest
from service.grounding import Grounded, Grounding
from service.logprobs import TokenText
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
    DetokenizeRequest,
    DetokenizeResponse,
    EmbeddingData,
    EmbeddingRequest,
    EmbeddingResponse,
    GroundingInfo,
    ModelCard,
    ModelList,
    ResponseObject,
    ResponsesRequest,
    SamplingFields,
    Source,
    TokenizeChatRequest,
    TokenizeCompletionRequest,
    TokenizeResponse,
    Usage,
    new_id,
    now,
)
from service.request_prompts import RequestPrompts, chat_context, user_turns
from service.sampling import SamplingParams
from service.sse import sse
from service.tool_calls import Shape, Structured, reasoning_only, tool_stream

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from retrieval.embedder import CachedEncoder
    from service.metrics import Metrics


@dataclass
class Serving:
    """Turns OpenAI requests into engine requests for one served model."""

    engine: GenerationEngine
    tokenizer: PreTrainedTokenizerBase
    model_name: str
    max_context: int
    default_max_tokens: int
    timeout_s: float
    embedder: CachedEncoder | None = None
    grounding: Grounding | None = None
    metrics: Metrics | None = None
    keep_alive_s: float | None = None  # SSE comment period while a stream's first token waits
    max_n: int = 8  # choices per request
    prompts: RequestPrompts = field(init=False)
    token_text: TokenText = field(init=False)
    structured: Structured = field(init=False)

    def __post_init__(self) -> None:
        self.structured = Structured(self.tokenizer, self.engine.stop_ids)
        self.prompts = RequestPrompts(self.tokenizer, self.model_name, self.max_context,
                                      self.default_max_tokens, self.max_n)
        self.token_text = TokenText(self.tokenizer)

    def models(self) -> ModelList:
        """The served language model and, when loaded, the embedder."""
        names = [self.model_name] + ([self.embedder.name] if self.embedder else [])
        return ModelList(data=[ModelCard(id=name, created=now()) for name in names])

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
        grounded = await self.grounding.aground(turns, req.retrieval, system, history)
        if self.metrics is not None:
            self.metrics.grounded(grounded.route, grounded.abstained,
                                  time.monotonic() - started)
        return grounded

    def _answer(self, grounded: Grounded, ids: list[int], params: SamplingParams,
                shape: Shape | None = None) -> AsyncIterator[Delta]:
        """Submit the request (a full queue fails here, before any response starts): its
        deltas, the reader prompt's prefix first; or the abstention reply. A `shape`'s grammar
        replaces the evidence constraint and the prefix (docs/structured.md)."""
        if grounded.abstained:
            return _abstention(self.grounding.settings.abstain_message if self.grounding else "",
                               params.n)
        prefix = grounded.prompt.assistant_prefix if grounded.prompt and not shape else ""
        if shape is not None and shape.processor is not None:
            params = replace(params, processors=(*params.processors, shape.processor))
        if self.grounding is not None and shape is None:
            stop_ids = {self.tokenizer.eos_token_id, *self.engine.stop_ids} - {None}
            constraint = self.grounding.constraint(grounded, self.tokenizer, stop_ids)
            if constraint is not None:
                params = replace(params, constraint=constraint)
        request = GenerationRequest(ids, params, self.timeout_s)
        return _prefixed(prefix, self.engine.submit(request))

    async def _prepare_chat(self, req: ChatCompletionRequest
                            ) -> tuple[Grounded, AsyncIterator[Delta], Shape | None]:
        shape = self.structured.shape(req)
        # Tools or JSON take the reasoning route unless retrieval is forced.
        skip = reasoning_only(req, shape) and req.retrieval != "always"
        turns = None if skip else user_turns(req)
        grounded = await self.ground(req, turns, *chat_context(req))
        grounded = self.prompts.fitted(grounded, req.max_completion_tokens or req.max_tokens)
        ids, params = self.prompts.chat_prompt(req, grounded, shape.plan if shape else None)
        return grounded, self._answer(grounded, ids, params, shape), shape

    async def _prepare_completion(self, req: CompletionRequest
                                  ) -> tuple[Grounded, AsyncIterator[Delta], Echo]:
        turns = [req.prompt] if isinstance(req.prompt, str) else None
        grounded = self.prompts.fitted(await self.ground(req, turns), req.max_tokens)
        ids, params = self.prompts.completion_prompt(req)
        echo = Echo(self.tokenizer.decode(ids) if req.echo else "", ids,
                    len(grounded.prompt.assistant_prefix) if grounded.prompt else 0)
        if grounded.prompt is not None:
            ids = self.prompts.reader_ids(grounded)
            # The reader prompt is not what the client sent: its echo carries no scores.
            params = replace(self.prompts.params(req, len(ids), req.max_tokens),
                             prompt_logprobs=None)
        return grounded, self._answer(grounded, ids, params), echo

    def _legacy(self, req: CompletionRequest, echo: Echo) -> choice_set.LegacyLogprobs | None:
        if req.logprobs is None:
            return None
        return choice_set.LegacyLogprobs(self.token_text, echo.ids,
                                         len(echo.text) + echo.prefix_chars)

    async def chat(self, req: ChatCompletionRequest) -> ChatCompletionResponse:
        """A whole chat completion."""
        grounded, deltas, shape = await self._prepare_chat(req)
        done = await choice_set.collect(deltas)
        replies = [(shape or Shape(None, None)).reply(c.text, c.finish_reason) for c in done]
        return ChatCompletionResponse(
            id=new_id("chatcmpl"), created=now(), model=self.model_name,
            usage=choice_set.choices_usage(done),
            choices=[ChatChoice(index=c.index, message=AssistantMessage(
                content=content, tool_calls=calls,
                annotations=annotations(content or "", grounded.sources)),
                finish_reason=reason,
                logprobs=choice_set.chat_logprobs(self.token_text,
                                                  c.logprobs if req.logprobs else None))
                for c, (content, calls, reason) in zip(done, replies, strict=True)],
            cogcore=_info(grounded))

    async def completion(self, req: CompletionRequest) -> CompletionResponse:
        """A whole text completion."""
        grounded, deltas, echo = await self._prepare_completion(req)
        done = await choice_set.collect(deltas)
        out = []
        for c in done:
            legacy = self._legacy(req, echo)
            out.append(CompletionChoice(
                index=c.index, text=echo.text + c.text, finish_reason=c.finish_reason,
                logprobs=legacy.chunk(c.logprobs, c.prompt_logprobs) if legacy else None))
        return CompletionResponse(
            id=new_id("cmpl"), created=now(), model=self.model_name,
            usage=choice_set.choices_usage(done), choices=out, cogcore=_info(grounded))

    async def chat_stream(self, req: ChatCompletionRequest) -> AsyncIterator[str]:
        """Queue a chat request now; its SSE lines (role and sources, deltas, usage, [DONE])."""
        grounded, deltas, shape = await self._prepare_chat(req)
        rid, created = new_id("chatcmpl"), now()

        def chunk(delta: DeltaMessage, reason: str | None = None, index: int = 0,
                  logprobs: dict | None = None) -> ChatCompletionChunk:
            return ChatCompletionChunk(id=rid, created=created, model=self.model_name,
                                       choices=[ChatChunkChoice(index=index, delta=delta,
                                                                finish_reason=reason,
                                                                logprobs=logprobs)])

        def usage(last: Delta) -> ChatCompletionChunk:
            return ChatCompletionChunk(id=rid, created=created, model=self.model_name,
                                       choices=[], usage=_usage(last))

        first = chunk(DeltaMessage(role="assistant", content=""))
        first.choices = [ChatChunkChoice(index=i, delta=DeltaMessage(role="assistant",
                                                                     content=""))
                         for i in range(req.n)]
        first.cogcore = _info(grounded)
        said: dict[int, list[str]] = {}

        def step(d: Delta) -> ChatCompletionChunk:
            said.setdefault(d.index, []).append(d.text)
            delta = DeltaMessage(content=d.text or None)
            if d.finish_reason and grounded.sources:  # the citations, once, with the last
                delta.annotations = annotations("".join(said[d.index]), grounded.sources)
            return chunk(delta, d.finish_reason, d.index, choice_set.chat_logprobs(
                self.token_text, d.logprobs if req.logprobs else None))

        if shape is not None and shape.plan is not None:
            step = tool_stream(step, chunk, shape.plan)
        return sse(deltas, first, step, usage if _include_usage(req) else None,
                   self.keep_alive_s)

    async def completion_stream(self, req: CompletionRequest) -> AsyncIterator[str]:
        """Queue a text completion now; its SSE lines (sources, deltas, usage, [DONE])."""
        grounded, deltas, echo = await self._prepare_completion(req)
        rid, created = new_id("cmpl"), now()
        legacy = {i: self._legacy(req, echo) for i in range(req.n)}
        started: set[int] = set()

        def chunk(d: Delta) -> CompletionResponse:
            text = d.text if d.index in started else echo.text + d.text  # echo: with the first
            started.add(d.index)
            scored = legacy[d.index]
            logprobs = scored.chunk(d.logprobs or (), d.prompt_logprobs) if scored else None
            return CompletionResponse(id=rid, created=created, model=self.model_name,
                                      choices=[CompletionChoice(
                                          index=d.index, text=text, logprobs=logprobs,
                                          finish_reason=d.finish_reason)])

        first = CompletionResponse(id=rid, created=created, model=self.model_name,
                                   choices=[CompletionChoice(index=i, text="")
                                            for i in range(req.n)], cogcore=_info(grounded))

        def usage(last: Delta) -> CompletionResponse:
            return CompletionResponse(id=rid, created=created, model=self.model_name,
                                      choices=[], usage=_usage(last))

        return sse(deltas, first, chunk, usage if _include_usage(req) else None,
                   self.keep_alive_s)

    async def responses(self, req: ResponsesRequest) -> ResponseObject:
        """A whole Responses API response (over the chat path)."""
        return await responses.respond(self._chat_text, req, self.model_name, _info)

    async def responses_stream(self, req: ResponsesRequest) -> AsyncIterator[str]:
        """Queue a Responses API request now; its event stream."""
        return await responses.respond_stream(self._chat_text, req, self.model_name, _info,
                                              self.keep_alive_s)

    async def _chat_text(self, req: ChatCompletionRequest
                         ) -> tuple[Grounded, AsyncIterator[Delta]]:
        """A text-only chat request's grounding and deltas (what /v1/responses runs)."""
        grounded, deltas, *_ = await self._prepare_chat(req)
        return grounded, deltas

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

    async def tokenize(self, req: TokenizeCompletionRequest | TokenizeChatRequest
                       ) -> TokenizeResponse:
        """A prompt's or a chat's token ids, as the completion or chat would prefill them."""
        self.prompts.check_model(req.model)
        if isinstance(req, TokenizeChatRequest):
            ids = self.prompts.chat_ids(req.messages, req.add_generation_prompt,
                                        req.continue_final_message, req.add_special_tokens)
        else:
            ids = list(self.tokenizer(req.prompt, add_special_tokens=req.add_special_tokens)
                       ["input_ids"])
        strs = self.tokenizer.convert_ids_to_tokens(ids) if req.return_token_strs else None
        return TokenizeResponse(count=len(ids), max_model_len=self.max_context, tokens=ids,
                                token_strs=strs)

    async def detokenize(self, req: DetokenizeRequest) -> DetokenizeResponse:
        """The text of token ids."""
        self.prompts.check_model(req.model)
        ids = self.prompts.known_ids(req.tokens, "tokens")
        return DetokenizeResponse(prompt=self.tokenizer.decode(ids))


def _info(grounded: Grounded) -> GroundingInfo:
    sources = [Source(id=h.document_id, chunk_id=h.chunk_id, text=h.text, score=h.score,
                      metadata=h.metadata) for h in grounded.sources]
    return GroundingInfo(route=grounded.route, sources=sources, abstained=grounded.abstained,
                         query=grounded.query if grounded.route == "facts" else None)


@dataclass(frozen=True)
class Echo:
    """What a completion echoes before its text (empty without `echo`), the prompt's ids,
    and the length of the reader prompt's reply prefix after it."""

    text: str
    ids: list[int]
    prefix_chars: int = 0


async def _abstention(message: str, n: int = 1) -> AsyncIterator[Delta]:
    """The fixed reply of an abstention: no prompt was run, so no tokens are counted."""
    for index in range(n):
        yield Delta(text=message, completion_tokens=0, prompt_tokens=0, finish_reason="stop",
                    index=index)


async def _prefixed(prefix: str, deltas: AsyncIterator[Delta]) -> AsyncIterator[Delta]:
    """The reader prompt starts the reply; the client sees that start as each choice's first
    text."""
    try:
        started: set[int] = set()
        async for delta in deltas:
            if prefix and delta.index not in started:
                delta = replace(delta, text=prefix + delta.text)
            started.add(delta.index)
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

