"""The one typed configuration of the service, read from `COGCORE_*` variables and flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cogcore.checkpoint_id import checkpoint_id
from cogcore.paths import default_base_dir, default_core_dir, default_kb_dir
from service.routing.router import DEFAULT_RETRIEVAL_THRESHOLD


def default_model_dir() -> Path:
    """The pruned default core when it exists, else the imported base model."""
    core = default_core_dir()
    return core if (core / "config.json").is_file() else default_base_dir()


class GroundingSettings(BaseSettings):
    """How a question is grounded in the store: route, retrieve, choose evidence, or abstain.

    A group of the service's settings with the same `COGCORE_*` variables; thresholds measured
    by benchmarks/routing_eval.py, benchmarks/evidence_eval.py and benchmarks/facts_eval.py
    (docs/facts.md).
    """

    model_config = SettingsConfigDict(env_prefix="COGCORE_", extra="ignore", frozen=True)

    resolve_follow_ups: bool = True  # a follow-up turn is searched as a standalone question
    retrieval_k: int = Field(2, ge=1, le=20)  # recall@1 is 0.996 (docs/retrieval.md)
    retrieval_mode: Literal["dense", "bm25", "hybrid"] = "hybrid"
    evidence_sentences: int = Field(1, ge=0, le=50)  # per request; 0 reads whole passages
    evidence_lexical_weight: float = Field(0.25, ge=0.0, le=10.0)  # beside the cosine
    # One evidence sentence is chosen among the best two by the served model's likelihood of
    # the question too, when its engine can score (service/question_likelihood.py). Off by
    # default: its pass stalls the torch engine's decoding (grounded TTFT at 32 chats 1.35x
    # -> 1.58x of the engine alone) and it gained nothing on new phrasings (docs/facts.md).
    evidence_rerank: bool = False
    constrain_to_evidence: bool = True  # grounded replies copy the evidence's tokens
    # "copy": a grounded reply copies one evidence sentence from a word the core chooses;
    # "restate": it may restate the question with the evidence's tokens (the earlier reader).
    reader: Literal["copy", "restate"] = "copy"
    # The restate reader's reply repeats no n-gram of this size; 0: off (the copy reader
    # copies one sentence and has no use for it).
    no_repeat_ngram: int = Field(3, ge=0, le=64)
    route_threshold: float = Field(0.5, ge=0.0, le=1.0)
    route_retrieval_threshold: float = Field(DEFAULT_RETRIEVAL_THRESHOLD, ge=-1.0, le=1.0)
    abstain_min_score: float = Field(0.5, ge=-1.0, le=1.0)
    abstain_max_unknown_names: int = Field(0, ge=0)  # names the store has never seen
    abstain_message: str = "The knowledge base has no answer to this."
    # Concurrent requests' grounding is batched: a request waits at most this long for others
    # to join it (service/grounding_batch.py).
    batch_window_ms: float = Field(5.0, ge=0.0, le=1000.0)


class Settings(BaseSettings):
    """Everything an operator can set; built in `create_app()`, never at import."""

    model_config = SettingsConfigDict(env_prefix="COGCORE_", extra="ignore")

    model_dir: Path = Field(default_factory=default_model_dir)
    served_model_name: str | None = None
    kb_dir: Path = Field(default_factory=default_kb_dir)
    # A PostgreSQL + pgvector knowledge base that every replica reads and writes
    # (docs/scale-out.md); when set, kb_dir only lends its router file, if it has one.
    kb_url: str | None = None
    embedder_dir: Path | None = None
    load_embedder: bool = True
    # Where the embedder runs short batches (retrieval.embedder.RUNTIMES): "auto" is ONNX
    # Runtime on a CPU when it loads and matches torch, else torch.
    embedder_runtime: Literal["auto", "onnx", "torch"] = "auto"
    embedding_cache: int = Field(4096, ge=0)  # texts whose vectors are kept (a question's reuse)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    torch_threads: int | None = None
    # What generates: "torch" (service/engine.py) or "llamacpp" (service/llamacpp_engine.py,
    # the optional extra) serving `gguf`, else the checkpoint exported at `gguf_type` once.
    engine: Literal["torch", "llamacpp"] = "torch"
    gguf: Path | None = None
    gguf_type: Literal["f32", "f16", "q8_0", "q4_k_m"] = "f32"
    llamacpp_threads: int | None = Field(None, ge=1)  # None: the cores the process may use
    llamacpp_ctx: int = Field(16384, ge=256)  # KV cells shared by all running requests

    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: Annotated[list[str], NoDecode] = []
    admin_keys: Annotated[list[str], NoDecode] = []

    max_batch_size: int = Field(32, ge=1)
    max_n: int = Field(8, ge=1)  # choices per request (n): rows of one batch
    max_waiting: int = Field(64, ge=0)
    max_context: int | None = Field(None, ge=1)
    default_max_tokens: int = Field(256, ge=1)
    request_timeout_s: float = Field(300.0, gt=0)
    drain_timeout_s: float = Field(30.0, ge=0)
    max_body_bytes: int = Field(1_000_000, ge=1)
    retry_after_s: int = Field(1, ge=0)
    # SSE comment lines every this many seconds while a stream's first token waits (a proxy
    # with an idle timeout would otherwise cut a request queued under load); 0: off.
    sse_keepalive_s: float = Field(5.0, ge=0)
    # Origins a browser app may call from (CORS); empty: off. "*" allows any.
    cors_origins: Annotated[list[str], NoDecode] = []
    log_level: str = "INFO"
    console: bool = True  # the web console at / (docs/console.md), as llama.cpp's server

    # Facts from the store: the knowledge base here, how questions are grounded in it below.
    load_kb: bool = True
    kb_readonly: bool = False
    grounding: GroundingSettings = Field(default_factory=GroundingSettings)
    max_document_bytes: int = Field(200_000, ge=1)

    # Scale-out: generation on an upstream OpenAI-compatible engine (vLLM, llama.cpp's server,
    # another cogcore); this service keeps auth, routing, retrieval and metrics. The local
    # checkpoint directory still provides the tokenizer and chat template.
    upstream_url: str | None = None
    upstream_model: str | None = None
    upstream_api_key: str | None = None
    # "vllm": the upstream is a vLLM that loads service.vllm_plugin, so grounded replies stay
    # held to their evidence there (docs/deploy.md); "none": no upstream carries it.
    upstream_constraint: Literal["none", "vllm"] = "none"

    @field_validator("api_keys", "admin_keys", "cors_origins", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        # A comma-separated variable is easier to set in compose files than a JSON list.
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @field_validator("kb_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        from retrieval.backends import is_database_url

        if value and not is_database_url(value):
            raise ValueError("kb_url must be a postgresql:// (or postgres://) URL")
        return value or None

    @property
    def model_name(self) -> str:
        """The name clients pass as `model`: the setting, else what the checkpoint is."""
        return self.served_model_name or checkpoint_id(self.model_dir)
