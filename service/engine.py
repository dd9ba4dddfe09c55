"""Continuous batching over plain Hugging Face forward passes, with per-request streaming.

One background thread owns the model. Between two decode steps it drops rows whose client
has gone (or that finished), prefills the waiting requests together and merges them into the
running batch; then one forward pass of shape (rows, 1) advances every row. Each request reads
its tokens from its own asyncio queue, so the event loop never waits on the model.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import AsyncGenerator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from service import batch
from service.detokenizer import TextStream
from service.errors import NotReady, QueueFull, RequestTimeout, ServiceError
from service.generation import (
    Delta,
    DeltaStream,
    EngineObserver,
    GenerationRequest,
    TokenLogprob,
)
from service.logprobs import prompt_scores, score_rows
from service.prefix_memory import PrefixMemory, RecentPrompts
from service.question_likelihood import LikelihoodQueue, continuation_logprobs
from service.sampling import SamplingParams, make_generator, sample_rows

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger("cogcore.engine")


@dataclass(eq=False)
class Sequence:
    """One request inside the engine."""

    prompt_ids: list[int]
    params: SamplingParams
    text: TextStream
    queue: asyncio.Queue
    loop: asyncio.AbstractEventLoop
    arrival: float = field(default_factory=time.monotonic)
    generator: torch.Generator | None = None
    last_token_at: float | None = None
    generated: int = 0
    last_token: int = -1
    cancelled: bool = False
    done: bool = False
    index: int = 0  # the choice this row generates (n > 1: rows of one request)
    prompt_scores: tuple | None = None  # the prompt's logprobs (echo), sent with the first


class Engine:
    """Continuous batching engine (a `GenerationEngine`): submit prompt ids, read text deltas."""

    applies_constraints = True

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_batch_size: int = 32,
        max_waiting: int = 64,
        retry_after_s: int = 1,
        min_shared_prefix: int = 16,
        observer: EngineObserver | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.max_waiting = max_waiting
        self.retry_after_s = retry_after_s
        self.observer = observer
        self.min_shared_prefix = min_shared_prefix
        self.eos_ids = _eos_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(
            self.eos_ids, default=0)
        self._waiting: collections.deque[Sequence] = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._running: list[Sequence] = []
        self._state: batch.BatchState | None = None
        # What earlier prompts leave for later ones to share (model thread only).
        self._prefixes = PrefixMemory()
        self._recent = RecentPrompts(min_shared_prefix)
        self._stop = threading.Event()
        self._accepting = True
        # Likelihoods asked for by grounding (`likelihoods`), computed between two steps.
        self._scoring = LikelihoodQueue()
        self._thread = threading.Thread(target=self._run, name="cogcore-engine", daemon=True)

    @property
    def stop_ids(self) -> frozenset[int]:
        """The tokens that end a reply: a constraint must allow them."""
        return frozenset(self.eos_ids)

    @property
    def num_running(self) -> int:
        """Requests in the running batch."""
        return len(self._running)

    @property
    def num_waiting(self) -> int:
        """Requests queued for admission."""
        return len(self._waiting)

    def start(self) -> None:
        """Start the model thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the model thread; requests still inside fail with 503."""
        self._accepting = False
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    async def drain(self, timeout_s: float) -> bool:
        """Refuse new requests and wait for the admitted ones; True when all finished."""
        self._accepting = False
        deadline = time.monotonic() + timeout_s
        while self.num_running + self.num_waiting and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.num_running + self.num_waiting == 0

    @property
    def scores_likelihoods(self) -> bool:
        """Whether `likelihoods` works: the model is a torch module here. An engine over
        another runtime (llama.cpp) implements `_likelihoods` and says so."""
        return isinstance(self.model, torch.nn.Module)

    def likelihoods(self, rows: list[tuple[list[int], int]]) -> Future[list[float]]:
        """For each (token ids, start): the sum of the log-probabilities of ids[start:] given
        what precedes them, computed on the model thread between two decode steps in one
        batched pass (`service.question_likelihood`); a future of the list of sums. Used by
        grounding to choose the evidence sentence (docs/facts.md)."""
        future = self._scoring.ask(rows, NotReady("shutting down") if not self._accepting else None)
        self._wake.set()
        return future

    def _likelihoods(self, rows: list[tuple[list[int], int]]) -> list[float]:
        return continuation_logprobs(self.model, self.pad_id, rows)

    def submit(self, request: GenerationRequest) -> DeltaStream:
        """Queue one request now (call from the event loop), so that a full queue (429) or a
        shutdown (503) fails before any response starts; its deltas. The request is
        cancelled when the caller closes the stream."""
        if not self._accepting:
            raise NotReady("the service is shutting down")
        queue, loop = asyncio.Queue(), asyncio.get_running_loop()
        seqs = []
        for index in range(request.params.n):  # one row per choice, queued together
            params = request.params.for_row(index)
            seqs.append(Sequence(
                prompt_ids=list(request.prompt_ids), params=params,
                text=TextStream(self.tokenizer, params.stop), queue=queue, loop=loop,
                generator=make_generator(params), index=index))
        with self._lock:
            free_rows = max(0, self.max_batch_size - self.num_running)
            if len(self._waiting) + len(seqs) > self.max_waiting + free_rows:
                raise QueueFull(
                    f"{len(self._waiting)} requests are already waiting; retry later",
                    retry_after_s=self.retry_after_s)
            self._waiting.extend(seqs)
        self._wake.set()
        return DeltaStream(self._stream(seqs, request.timeout_s),
                           lambda: self._cancel_all(seqs))

    def _cancel_all(self, seqs: list[Sequence]) -> None:
        for seq in seqs:
            self.cancel(seq)

    def cancel(self, seq: Sequence) -> None:
        """Drop a request (client gone, timeout): its row leaves before the next step."""
        if not seq.done:
            seq.cancelled = True
            self._wake.set()

    async def _stream(self, seqs: list[Sequence], timeout_s: float | None
                      ) -> AsyncGenerator[Delta, None]:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        seq, unfinished = seqs[0], len(seqs)
        try:
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                try:
                    item = await asyncio.wait_for(seq.queue.get(), remaining)
                except TimeoutError:
                    raise RequestTimeout(f"request exceeded the {timeout_s:g}s timeout") from None
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finish_reason is not None:
                    unfinished -= 1
                    if not unfinished:
                        return
        finally:
            self._cancel_all(seqs)

    # -- the model thread ------------------------------------------------------------------

    def _run(self) -> None:
        torch.set_grad_enabled(False)
        while not self._stop.is_set():
            self._wake.clear()
            self._drop_cancelled()
            admitted = self._take_waiting()
            if self._scoring:
                with torch.inference_mode():
                    self._scoring.serve(self._likelihoods)
            if not admitted and not self._running:
                self._wake.wait(timeout=0.5)
                continue
            try:
                with torch.inference_mode():
                    if admitted:
                        self._prefill(admitted)
                    if self._running:
                        self._decode()
            except Exception as exc:  # the batch is lost; every request in it is told why
                log.exception("engine step failed")
                self._fail_all(ServiceError(f"generation failed: {exc}"))
        self._fail_all(NotReady("the service is shutting down"))
        self._scoring.cancel_all()

    def _take_waiting(self) -> list[Sequence]:
        taken: list[Sequence] = []
        with self._lock:
            while self._waiting and len(self._running) + len(taken) < self.max_batch_size:
                seq = self._waiting.popleft()
                if not seq.cancelled:
                    taken.append(seq)
        return taken

    def _prefill(self, seqs: list[Sequence]) -> None:
        started = time.monotonic()
        for seq in seqs:
            if self.observer:
                self.observer.admitted(started - seq.arrival, len(seq.prompt_ids))
        # Rows join first, so that a failing forward pass fails them with the rest.
        self._running.extend(seqs)
        # A prompt that several rows share (the n choices of one request) is prefilled once
        # and its cache row copied to each of them.
        prompts, rows = _unique([s.prompt_ids for s in seqs])
        # Prompts of different kinds (chat turns, grounded reader prompts) share a prefix only
        # within their kind: each group is prefilled over its own.
        state, parts, order = None, [], []
        for group in batch.prefix_groups(prompts, self.min_shared_prefix):
            members = [prompts[i] for i in group]
            prefix, keep = self._shared_prefix(members)
            part, logits = batch.prefill(self.model, members, self.pad_id, prefix)
            if self.observer:
                start = len(prefix.ids) if prefix else 0
                self.observer.prefilled(sum(len(p) - start for p in members))
            if keep:
                self._prefixes.remember(batch.cut_prefix(part, members[0][:keep]))
            state = part if state is None else batch.merge(state, part)
            parts.append(logits)
            order += group
        at = {index: row for row, index in enumerate(order)}
        rows = [at[index] for index in rows]
        logits = torch.cat(parts)
        if rows != list(range(len(order))):
            state, logits = batch.keep_rows(state, rows), logits[rows]
        self._state = state if self._state is None else batch.merge(self._state, state)
        self._score_prompts(seqs)
        self._advance(seqs, logits)

    def _score_prompts(self, seqs: list[Sequence]) -> None:
        """The prompt's logprobs of the rows that ask for them (echo): one more pass."""
        done: dict[tuple[int, ...], tuple] = {}
        for seq in seqs:
            k = seq.params.prompt_logprobs
            if k is not None:
                key = (k, *seq.prompt_ids)
                if key not in done:
                    done[key] = prompt_scores(self.model, seq.prompt_ids, k)
                seq.prompt_scores = done[key]

    def _shared_prefix(self, prompts: list[list[int]]) -> tuple[batch.Prefix | None, int]:
        """The encoded prefix that all `prompts` share, if any (reused while remembered), and
        the length of a new prefix to keep from a lone prompt's own prefill (else 0)."""
        limit = min(len(p) for p in prompts) - 1  # each row keeps a token to compute logits
        n = self._recent.shared(prompts, limit)
        memo = self._prefixes.covering(prompts)
        # A lone prompt takes the longest remembered prefix that covers it, even when it
        # shares more with its kind's last prompt: it would otherwise decode itself whole.
        if memo is not None and (len(memo.ids) >= n or len(prompts) == 1):
            self._prefixes.remember(memo)
            return memo, 0
        if not n:
            return None, 0
        if len(prompts) == 1:  # its own prefill computes the prefix: no extra pass for it
            return None, n
        prefix = batch.encode_prefix(self.model, prompts[0][:n])
        self._prefixes.remember(prefix)
        if self.observer:
            self.observer.prefilled(n)
        return prefix, 0

    def _decode(self) -> None:
        assert self._state is not None
        logits = batch.decode(self.model, self._state, [s.last_token for s in self._running])
        self._advance(list(self._running), logits)

    def _advance(self, seqs: list[Sequence], logits: torch.Tensor) -> None:
        wanted = [s.params.logprobs for s in seqs]
        # Scored as vLLM's default ("raw_logprobs"): the model's distribution, before the
        # constraint, processors and temperature change the logits in place.
        raw = (logits[[i for i, k in enumerate(wanted) if k is not None]].float()
               .log_softmax(-1) if any(k is not None for k in wanted) else None)
        tokens = sample_rows(logits, [s.params for s in seqs], [s.generator for s in seqs],
                             [s.text.ids for s in seqs])
        scores = score_rows(raw, tokens, wanted)
        for seq, token, scored in zip(seqs, tokens, scores, strict=True):
            self._emit(seq, token, scored)
        finished = {id(s) for s in seqs if s.done}
        if finished:
            self._keep([s for s in self._running if id(s) not in finished])

    def _emit(self, seq: Sequence, token: int, scored: TokenLogprob | None = None) -> None:
        now = time.monotonic()
        if self.observer:
            gap = None if seq.last_token_at is None else now - seq.last_token_at
            self.observer.token(gap, now - seq.arrival)
        seq.last_token_at, seq.last_token = now, token
        seq.generated += 1
        reason = None
        if token in self.eos_ids:
            reason, text = "stop", seq.text.flush()
        else:
            text = seq.text.push(token)
            if seq.text.stopped:
                reason = "stop"
            elif seq.generated >= seq.params.max_tokens:
                reason, text = "length", text + seq.text.flush()
        if reason is not None:
            seq.done = True
            if self.observer:
                self.observer.finished(now - seq.arrival, reason)
        self._deliver(seq, Delta(
            text, seq.generated, len(seq.prompt_ids), reason, seq.index,
            None if scored is None else (scored,),
            seq.prompt_scores if seq.generated == 1 else None))

    def _deliver(self, seq: Sequence, item: Delta | BaseException) -> None:
        try:
            seq.loop.call_soon_threadsafe(seq.queue.put_nowait, item)
        except RuntimeError:  # the caller's event loop is closed: nobody is listening
            seq.cancelled = True

    def _drop_cancelled(self) -> None:
        if any(s.cancelled for s in self._running):
            self._keep([s for s in self._running if not s.cancelled])

    def _keep(self, keep: list[Sequence]) -> None:
        rows = {id(s): i for i, s in enumerate(self._running)}
        self._running = keep
        if not keep:
            self._state = None
        elif self._state is not None:
            self._state = batch.keep_rows(self._state, [rows[id(s)] for s in keep])

    def _fail_all(self, exc: ServiceError) -> None:
        with self._lock:
            pending = list(self._waiting) + self._running
            self._waiting.clear()
        for seq in pending:
            seq.done = True
            self._deliver(seq, exc)
        self._running, self._state = [], None


def _unique(prompts: list[list[int]]) -> tuple[list[list[int]], list[int]]:
    """The distinct prompts, in order, and each row's index among them."""
    first: dict[tuple[int, ...], int] = {}
    rows = [first.setdefault(tuple(p), len(first)) for p in prompts]
    return [list(key) for key in first], rows


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    config_eos = getattr(model.generation_config, "eos_token_id", None)
    ids = set(config_eos if isinstance(config_eos, list) else [config_eos])
    ids.add(tokenizer.eos_token_id)
    return {int(i) for i in ids if i is not None}
