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

from service.citations import annotations
from service.errors import InvalidRequest, ModelNotFound, UnsupportedParameter
from service.generation import Delta, GenerationEngine, GenerationRequest
from service.grounding import Grounded, Grounding
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
    prompts: RequestPrompts = field(init=False)

    def __post_init__(self) -> None:
        self.prompts = RequestPrompts(self.tokenizer, self.model_name, self.max_context,
                                      self.default_max_tokens)

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

    def _answer(self, grounded: Grounded, ids: list[int], params: SamplingParams
                ) -> AsyncIterator[Delta]:
        """Submit the request (a full queue fails here, before any response starts): its
        deltas, the reader prompt's prefix first; or the abstention reply."""
        if grounded.abstained:
            return _abstention(self.grounding.settings.abstain_message if self.grounding else "")
        prefix = grounded.prompt.assistant_prefix if grounded.prompt else ""
        if self.grounding is not None:
            stop_ids = {self.tokenizer.eos_token_id, *self.engine.stop_ids} - {None}
            constraint = self.grounding.constraint(grounded, self.tokenizer, stop_ids)
            if constraint is not None:
                params = replace(params, constraint=constraint)
        request = GenerationRequest(ids, params, self.timeout_s)
        return _prefixed(prefix, self.engine.submit(request))

    async def _prepare_chat(self, req: ChatCompletionRequest
                            ) -> tuple[Grounded, AsyncIterator[Delta]]:
        grounded = await self.ground(req, user_turns(req), *chat_context(req))
        grounded = self.prompts.fitted(grounded, req.max_completion_tokens or req.max_tokens)
        ids, params = self.prompts.chat_prompt(req, grounded)
        return grounded, self._answer(grounded, ids, params)

    async def _prepare_completion(self, req: CompletionRequest
                                  ) -> tuple[Grounded, AsyncIterator[Delta]]:
        turns = [req.prompt] if isinstance(req.prompt, str) else None
        grounded = self.prompts.fitted(await self.ground(req, turns), req.max_tokens)
        ids, params = self.prompts.completion_prompt(req)
        if grounded.prompt is not None:
            ids = self.prompts.reader_ids(grounded)
            params = self.prompts.params(req, len(ids), req.max_tokens)
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

        return sse(deltas, first, step, usage if _include_usage(req) else None,
                   self.keep_alive_s)

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

        return sse(deltas, first, chunk, usage if _include_usage(req) else None,
                   self.keep_alive_s)

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
