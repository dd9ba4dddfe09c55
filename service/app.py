"""The FastAPI app: lifespan (load, drain), middleware (ids, logs, size limit), thin routes."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import PlainTextResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.auth import require_api_key
from service.body_limit import BodyLimit
from service.console import mount_console
from service.documents import DocumentService, documents_router
from service.engine import Engine
from service.errors import NotReady, error_responses
from service.generation import GenerationEngine
from service.grounding import Grounding
from service.http_errors import install_error_handlers
from service.logs import configure_logging, request_id
from service.metrics import Metrics
from service.protocol import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionRequest,
    CompletionResponse,
    DetokenizeRequest,
    DetokenizeResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelList,
    ResponseObject,
    ResponsesRequest,
    TokenizeChatRequest,
    TokenizeCompletionRequest,
    TokenizeResponse,
)
from service.question_likelihood import question_scorer
from service.readiness import Readiness
from service.routing.router import Router, load_or_fit_router
from service.serving import Serving
from service.settings import Settings
from service.upstream import UpstreamEngine

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from retrieval.embedder import CachedEncoder
    from retrieval.knowledge_base import KnowledgeBase

log = logging.getLogger("cogcore.service")
T = TypeVar("T")


@dataclass
class Resources:
    """What the lifespan loads: the language model, its tokenizer, the embedder, the store."""

    model: PreTrainedModel | None  # None when an upstream engine generates
    tokenizer: PreTrainedTokenizerBase
    embedder: CachedEncoder | None
    kb: KnowledgeBase | None = None
    grounding: Grounding | None = None


def load_resources(settings: Settings) -> Resources:
    """Load the checkpoint with plain transformers (CUDA+bf16 when allowed), and the embedder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    cuda = settings.device == "cuda" or (settings.device == "auto" and torch.cuda.is_available())
    tokenizer = AutoTokenizer.from_pretrained(settings.model_dir, local_files_only=True)
    model = None
    if not settings.upstream_url and settings.engine == "torch":  # else only the tokenizer
        model = AutoModelForCausalLM.from_pretrained(
            settings.model_dir, local_files_only=True,
            dtype=torch.bfloat16 if cuda else torch.float32,
        ).to("cuda" if cuda else "cpu").eval()
    embedder = None
    if settings.load_embedder:
        from retrieval.embedder import CachedEncoder, Embedder

        embedder = CachedEncoder(Embedder(settings.embedder_dir, device="cuda" if cuda else "cpu",
                                          runtime=settings.embedder_runtime),
                                 max_entries=settings.embedding_cache)
    kb = grounding = None
    if settings.load_kb and embedder is not None:
        kb, grounding = load_grounding(settings, embedder)
    if settings.engine == "llamacpp" and not settings.torch_threads:
        # Torch only samples there (the embedder, loaded above, keeps its own threads): one
        # thread, so that llama.cpp's OpenMP threads are the only pool libgomp manages. With
        # more OpenMP threads than cores it stops spinning at barriers, and one stream decoded
        # 2.7x slower (docs/speed.md, "One OpenMP pool").
        torch.set_num_threads(1)
    return Resources(model, tokenizer, embedder, kb, grounding)


def load_grounding(settings: Settings, embedder: CachedEncoder) -> tuple[KnowledgeBase, Grounding]:
    """Open the knowledge base and load its router: the facts half of the service."""
    from retrieval.backends import open_knowledge_base
    from retrieval.errors import WriterLockedError
    from retrieval.knowledge_base import KBSettings

    kb_settings = KBSettings(max_text_bytes=settings.max_document_bytes)
    readonly = settings.kb_readonly
    location = settings.kb_url or settings.kb_dir
    try:
        kb = open_knowledge_base(location, embedder, kb_settings, readonly)
    except WriterLockedError:
        # Another replica writes this store: serve it read-only (writes answer 409) rather
        # than never becoming ready.
        log.warning("knowledge base is locked by another writer: opening it read-only")
        readonly = True
        kb = open_knowledge_base(location, embedder, kb_settings, readonly=True)
    # Fitted when the knowledge base was built; refitted (and saved, if we may write) if not.
    # It does not depend on the store's documents: with a database it is read from kb_dir
    # when that has one, else fitted at start, and no replica writes it.
    model = load_or_fit_router(settings.kb_dir, embedder,
                               save=not readonly and not settings.kb_url)
    g = settings.grounding
    router = Router(embedder, threshold=g.route_threshold,
                    retrieval_threshold=g.route_retrieval_threshold, model=model)
    grounding = Grounding(kb, router, g, reader=g.reader)
    return kb, grounding


Loader = Callable[[Settings], Resources]


def create_app(settings: Settings | None = None, loader: Loader = load_resources) -> FastAPI:
    """Build the app; the model loads in the background so /health answers at once."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    app = FastAPI(title="Cognitive Core", lifespan=_lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.loader = loader
    app.state.serving = None
    app.state.documents = None
    app.state.kb = None
    app.state.load_error = None
    app.state.metrics = Metrics(settings.model_name)
    install_error_handlers(app)
    app.middleware("http")(_request_context)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:  # outermost, so that a refused or failed request carries it too
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["*"], allow_headers=["*"],
                           expose_headers=["x-request-id", "retry-after"])
    app.include_router(_ops_router())
    app.include_router(_v1_router())
    app.include_router(_tokenization_router())
    app.include_router(documents_router())
    if settings.console:
        mount_console(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The schema as served: no 422 (validation is a 400 in the envelope), Bearer auth on /v1."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        for path, operations in schema["paths"].items():
            for operation in operations.values():
                operation["responses"].pop("422", None)
                if path.startswith("/v1/") or path in ("/tokenize", "/detokenize"):
                    operation["security"] = [{"bearer": []}]
        components = schema.setdefault("components", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.get("schemas", {}).pop(name, None)
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        app.openapi_schema = schema
    return app.openapi_schema


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    loading = asyncio.create_task(_load(app))
    yield
    loading.cancel()
    serving: Serving | None = app.state.serving
    if serving is not None:
        settings: Settings = app.state.settings
        drained = await serving.engine.drain(settings.drain_timeout_s)
        log.info("drained" if drained else "drain timeout: dropping the remaining requests")
        await asyncio.to_thread(serving.engine.stop)
    if getattr(app.state, "kb", None) is not None:
        await asyncio.to_thread(app.state.kb.close)  # saves the index, releases the lock


async def _load(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    started = time.monotonic()
    try:
        res = await asyncio.to_thread(app.state.loader, settings)
    except Exception as exc:  # readiness reports it; the process stays up for inspection
        log.exception("loading failed")
        app.state.load_error = f"loading failed: {exc}"
        return
    metrics: Metrics = app.state.metrics
    engine = make_engine(settings, res, metrics)
    metrics.track(lambda: engine.num_running, lambda: engine.num_waiting)
    engine.start()
    if res.grounding is not None:  # the evidence sentence re-ranked by the served model
        res.grounding.scorer = question_scorer(engine, res.tokenizer)
    if not engine.applies_constraints:
        log.warning("the %s engine cannot apply the evidence constraint: grounded replies are "
                    "not held to their evidence (/ready says so too)", type(engine).__name__)
    app.state.readiness = Readiness(res.kb, settings.upstream_url, settings.upstream_api_key,
                                    constraints_carried=engine.applies_constraints,
                                    probe=getattr(engine, "carries_constraint", None))
    context = settings.max_context or _model_context(settings)
    app.state.serving = Serving(
        engine=engine, tokenizer=res.tokenizer, model_name=settings.model_name,
        max_context=context, default_max_tokens=settings.default_max_tokens,
        timeout_s=settings.request_timeout_s, embedder=res.embedder,
        grounding=res.grounding, metrics=metrics,
        keep_alive_s=settings.sse_keepalive_s or None, max_n=settings.max_n)
    app.state.kb = res.kb
    app.state.documents = DocumentService(res.kb) if res.kb is not None else None
    log.info(f"ready: {settings.model_name} in {time.monotonic() - started:.1f}s")


def make_engine(settings: Settings, res: Resources, metrics: Metrics) -> GenerationEngine:
    """The local continuous-batching engine, or the upstream one when a URL is set."""
    if settings.upstream_url:
        return UpstreamEngine(settings.upstream_url, settings.upstream_model or
                              settings.model_name, settings.upstream_api_key,
                              max_running=settings.max_batch_size,
                              max_waiting=settings.max_waiting,
                              retry_after_s=settings.retry_after_s, observer=metrics,
                              constraint=settings.upstream_constraint,
                              tokenizer=res.tokenizer)
    if settings.engine == "llamacpp":
        from service.llamacpp_setup import make_llamacpp_engine

        return make_llamacpp_engine(settings, res.tokenizer, metrics)
    assert res.model is not None
    return Engine(res.model, res.tokenizer, max_batch_size=settings.max_batch_size,
                  max_waiting=settings.max_waiting, retry_after_s=settings.retry_after_s,
                  observer=metrics)


def _model_context(settings: Settings) -> int:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(settings.model_dir, local_files_only=True)
    return int(config.max_position_embeddings)


def get_serving(request: Request) -> Serving:
    """The serving layer, or 503 while loading."""
    serving: Serving | None = request.app.state.serving
    if serving is None:
        raise NotReady(request.app.state.load_error or "the model is still loading")
    return serving


ServingDep = Annotated[Serving, Depends(get_serving)]


def _ops_router() -> APIRouter:
    router = APIRouter()

    @router.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/ready", responses=error_responses(503))
    async def ready(request: Request) -> dict[str, str]:
        get_serving(request)
        return await request.app.state.readiness.check()

    @router.get("/metrics", response_class=PlainTextResponse)
    async def metrics(request: Request) -> Response:
        registry = request.app.state.metrics.registry
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def _v1_router() -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)],
                       responses=error_responses(401, 503))
    generation = {200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                        "description": "the completion, or SSE chunks when `stream` is true"},
                  **error_responses(400, 404, 408, 413, 429)}
    # The Responses stream names each event (`event: response.created`, ...).
    named_events = {"type": "object", "properties": {"event": {"type": "string"},
                                                     "data": {"type": "string"}}}
    response_events = {**generation, 200: {**generation[200], "content": {
        "text/event-stream": {"schema": named_events}}}}

    @router.get("/models", response_model=ModelList)
    async def models(serving: ServingDep) -> Any:
        return serving.models()

    @router.post("/chat/completions", response_model=ChatCompletionResponse,
                 responses=generation)
    async def chat(body: ChatCompletionRequest, request: Request,
                   serving: ServingDep) -> Any:
        if body.stream:
            return _sse_response(await serving.chat_stream(body))
        return await _unless_disconnected(request, serving.chat(body))

    @router.post("/completions", response_model=CompletionResponse, responses=generation)
    async def completions(body: CompletionRequest, request: Request,
                          serving: ServingDep) -> Any:
        if body.stream:
            return _sse_response(await serving.completion_stream(body))
        return await _unless_disconnected(request, serving.completion(body))

    @router.post("/responses", response_model=ResponseObject, responses=response_events)
    async def responses(body: ResponsesRequest, request: Request, serving: ServingDep) -> Any:
        if body.stream:
            return _sse_response(await serving.responses_stream(body))
        return await _unless_disconnected(request, serving.responses(body))

    @router.post("/embeddings", response_model=EmbeddingResponse,
                 responses=error_responses(400, 404, 413))
    async def embeddings(body: EmbeddingRequest, serving: ServingDep) -> Any:
        return await serving.embeddings(body)

    return router


def _tokenization_router() -> APIRouter:
    """vLLM's /tokenize and /detokenize, beside /v1 as vLLM serves them (same API keys)."""
    router = APIRouter(dependencies=[Depends(require_api_key)],
                       responses=error_responses(400, 401, 404, 503))

    @router.post("/tokenize", response_model=TokenizeResponse)
    async def tokenize(body: TokenizeChatRequest | TokenizeCompletionRequest,
                       serving: ServingDep) -> Any:
        return await serving.tokenize(body)

    @router.post("/detokenize", response_model=DetokenizeResponse)
    async def detokenize(body: DetokenizeRequest, serving: ServingDep) -> Any:
        return await serving.detokenize(body)

    return router


def _sse_response(lines: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(lines, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T | Response:
    """Run `work`, cancelling it (and so its engine row) as soon as the client goes away."""
    task = asyncio.ensure_future(work)

    async def watch() -> None:
        while not await request.is_disconnected():
            await asyncio.sleep(0.1)

    watcher = asyncio.ensure_future(watch())
    await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return Response(status_code=499)  # nobody reads it; nginx's "client closed request"
    watcher.cancel()
    return task.result()


async def _request_context(request: Request, call_next: Callable) -> Response:
    """Give each request an id (echoed in `x-request-id`) and log one JSON line for it."""
    rid = request.headers.get("x-request-id") or uuid.uuid4().hex
    token = request_id.set(rid[:64])
    started = time.monotonic()
    try:
        response = await call_next(request)
        response.headers["x-request-id"] = rid[:64]
        request.app.state.metrics.responded(response.status_code)
        log.info("request", extra={
            "method": request.method, "path": request.url.path, "status": response.status_code,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "client": request.client.host if request.client else None})
        return response
    finally:
        request_id.reset(token)
