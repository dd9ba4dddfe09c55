"""Continuous batching on llama.cpp in-process (the optional `llamacpp` extra).

The same engine as `service.engine` (admission, streaming, cancellation, sampling, metrics are
inherited from it) with llama.cpp computing the logits: one llama.cpp context holds every
running request's KV cache, each request under its own sequence id. Between two decode steps
the model thread drops the finished or cancelled rows (their sequence is removed from the KV
cache and its id freed), prefills the waiting prompts in one `llama_decode` and then advances
every row with one batch of one token per row. Tokens are chosen in Python over the returned
logits by `service.sampling`, so the evidence constraint, the logits processors and the
seeded sampling behave exactly as on the torch engine.

llama.cpp's OpenMP threads spin a while at each barrier before they sleep (libgomp's default):
3x the tokens/s of `OMP_WAIT_POLICY=passive` for one stream on idle cores. Where other busy
processes share the cores, set `OMP_WAIT_POLICY=passive` before the process starts, and never
give it more threads than the cores it may use (docs/speed.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from cogcore.llamacpp import LlamaContext, free_cores
from service import batch
from service.engine import Engine, Sequence
from service.errors import ServiceError, UnsupportedParameter
from service.generation import DeltaStream, EngineObserver, GenerationRequest

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# Recent prompts whose cells stay in the KV cache for the next prompts to share, as
# llama-server's slots keep theirs: at most this many, on at most 1/HELD_CELLS_SHARE of the
# cells. Every step attends over the cache up to its highest used cell, so held cells cost
# every running row time: a sixteenth holds sixteen chat turns or three grounded prompts.
HELD_PROMPTS = 16
HELD_CELLS_SHARE = 16


class LlamaCppEngine(Engine):
    """Continuous batching over llama.cpp (a `GenerationEngine`): submit prompt ids, read
    text deltas. Prompt logprobs (echo) are refused (400); token logprobs work."""

    def __init__(
        self,
        gguf: Path,
        tokenizer: PreTrainedTokenizerBase,
        eos_ids: set[int],
        *,
        max_batch_size: int = 32,
        max_waiting: int = 64,
        retry_after_s: int = 1,
        n_ctx: int = 16384,
        threads: int | None = None,
        observer: EngineObserver | None = None,
    ) -> None:
        shim = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=sorted(eos_ids)))
        super().__init__(shim, tokenizer, max_batch_size=max_batch_size,  # type: ignore[arg-type]
                         max_waiting=max_waiting, retry_after_s=retry_after_s, observer=observer)
        self.threads = threads or free_cores()
        # Sequence ids 0..max_batch_size-1 are the rows'; the next HELD_PROMPTS hold recent
        # prompts, most recent first: a new row copies the cells of what it shares with one
        # of them (the chat template's turn, the reader's instructions, a conversation's
        # earlier turns, or the whole prompt when it comes again).
        self._held: list[tuple[tuple[int, ...], int]] = []  # (prompt, its sequence id)
        self._held_cells = n_ctx // HELD_CELLS_SHARE
        self._llama = LlamaContext(Path(gguf), n_ctx, max_batch_size + HELD_PROMPTS,
                                   n_batch=512, threads=self.threads)
        self._free_ids = list(range(max_batch_size))
        self._free_held = list(range(max_batch_size, max_batch_size + HELD_PROMPTS))
        self._slot: dict[int, tuple[int, int]] = {}  # id(seq) -> (sequence id, next position)
        self.decode_steps = 0  # batched decode steps, and the rows they advanced together
        self.decode_rows = 0
        self.max_decode_rows = 0
        self.reused_prompt_tokens = 0  # prompt tokens taken from held cells, not decoded

    def submit(self, request: GenerationRequest) -> DeltaStream:
        """As `Engine.submit`; a request for prompt logprobs is refused (400)."""
        if request.params.prompt_logprobs is not None:
            raise UnsupportedParameter(
                "prompt logprobs (echo) are not available on the llama.cpp engine",
                param="prompt_logprobs")
        return super().submit(request)

    def stop(self) -> None:
        """Stop the model thread, then free llama.cpp's model and context."""
        super().stop()
        if not self._thread.is_alive():
            self._llama.close()

    # -- the model thread ------------------------------------------------------------------

    def _prefill(self, seqs: list[Sequence]) -> None:
        for seq in seqs:
            if self.observer:
                self.observer.admitted(time.monotonic() - seq.arrival, len(seq.prompt_ids))
            self._slot[id(seq)] = (self._free_ids.pop(), len(seq.prompt_ids))
        self._running.extend(seqs)  # joined first: a failing decode fails them with the rest
        firsts: dict[tuple[int, ...], Sequence] = {}
        for seq in seqs:
            firsts.setdefault(tuple(seq.prompt_ids), seq)
        rows = {p: self._slot[id(s)][0] for p, s in firsts.items()}
        # Kind by kind: a kind's rows get their first token as soon as its prompts are read.
        for tokens, last in self._prompt_tokens(rows):
            logits = self._llama.decode(tokens)  # a row for each token that wants logits
            wanted = [seq_ids[0] for _, _, seq_ids, want in tokens if want]
            at = {seq_id: row for row, seq_id in enumerate(wanted)}
            if self.observer:
                self.observer.prefilled(len(tokens))
            kind = [s for s in seqs if rows[tuple(s.prompt_ids)] in at]
            for seq in kind:  # the other choices of a prompt share its cells
                first = firsts[tuple(seq.prompt_ids)]
                if first is not seq:
                    self._llama.copy(self._slot[id(first)][0], self._slot[id(seq)][0])
            self._hold(last, rows[last])
            self._advance(kind, logits[[at[rows[tuple(s.prompt_ids)]] for s in kind]])

    def _hold(self, prompt: tuple[int, ...], seq_id: int) -> None:
        """Keep a prompt's cells, as llama-server's prompt cache does: the next prompts take
        what they share with it without decoding it. A held prompt that this one extends
        (the conversation's previous turn) gives up its place; past HELD_PROMPTS prompts or
        their share of the cells, the least recently used go first."""
        if not self.min_shared_prefix <= len(prompt) <= self._held_cells:
            return
        held = [p for p, _ in self._held]
        if prompt in held:
            self._held.insert(0, self._held.pop(held.index(prompt)))
            return
        for k in reversed(range(len(held))):
            if prompt[:len(held[k])] == held[k]:
                self._drop_held(k)
        while self._held and (len(self._held) >= HELD_PROMPTS or len(prompt) + sum(
                len(p) for p, _ in self._held) > self._held_cells):
            self._drop_held(len(self._held) - 1)
        target = self._free_held.pop()
        self._llama.copy(seq_id, target)  # the row holds its prompt's cells only
        self._held.insert(0, (prompt, target))

    def _drop_held(self, k: int) -> None:
        _, seq_id = self._held.pop(k)
        self._llama.remove(seq_id)
        self._free_held.append(seq_id)

    def _prompt_tokens(self, prompts: dict[tuple[int, ...], int]
                       ) -> Iterator[tuple[list[tuple[int, int, tuple[int, ...], bool]],
                                           tuple[int, ...]]]:
        """For each kind of `prompts` (`batch.prefix_groups`; each prompt with its row's
        sequence id), the tokens to decode and the prompt to hold next (`_hold`): a prefix the
        group shares is decoded once for all of its rows, or copied from a held prompt that
        holds it already. Planned one group at a time, after the previous one is held."""
        order = list(prompts)
        for group in batch.prefix_groups(order, self.min_shared_prefix):  # type: ignore[arg-type]
            members = [order[i] for i in group]
            tokens = []
            n, source = self._shared_prefix_plan(members)
            if source is None and n:
                rows = tuple(prompts[p] for p in members)
                tokens += [(t, pos, rows, False) for pos, t in enumerate(members[0][:n])]
            elif n:
                for prompt in members:
                    self._llama.copy(source, prompts[prompt], until=n)
                self.reused_prompt_tokens += n * len(members)
            for prompt in members:
                last = len(prompt) - 1
                tokens += [(prompt[pos], pos, (prompts[prompt],), pos == last)
                           for pos in range(n, len(prompt))]
            yield tokens, members[-1]

    def _shared_prefix_plan(self, prompts: list[tuple[int, ...]]) -> tuple[int, int | None]:
        """How many leading tokens every prompt of a group takes from a shared prefix, and the
        held sequence to copy it from (None: decoded now, once for all of them). A new prefix
        is what the prompts share with each other and the last prompt of their kind, as the
        torch engine's; under `min_shared_prefix` nothing is shared."""
        limit = min(len(p) for p in prompts) - 1  # each row decodes a token of its own
        n = self._recent.shared(prompts, limit)
        held, source = max(((batch.common_prefix([p, *prompts], limit), seq)  # type: ignore[list-item]
                            for p, seq in self._held), default=(0, None))
        if held >= max(n, self.min_shared_prefix):
            return held, source
        return n, None

    def _decode(self) -> None:
        tokens = []
        for seq in self._running:
            seq_id, pos = self._slot[id(seq)]
            tokens.append((seq.last_token, pos, (seq_id,), True))
            self._slot[id(seq)] = (seq_id, pos + 1)
        rows = len(tokens)
        self.decode_steps += 1
        self.decode_rows += rows
        self.max_decode_rows = max(self.max_decode_rows, rows)
        self._advance(list(self._running), self._llama.decode(tokens))

    def _keep(self, keep: list[Sequence]) -> None:
        kept = {id(s) for s in keep}
        for seq in self._running:
            if id(seq) not in kept:
                self._release(seq)
        self._running = keep

    def _release(self, seq: Sequence) -> None:
        slot = self._slot.pop(id(seq), None)
        if slot is not None:
            self._llama.remove(slot[0])
            self._free_ids.append(slot[0])

    def _fail_all(self, exc: ServiceError) -> None:
        super()._fail_all(exc)
        if self._llama.ctx:
            self._llama.clear()
        self._slot.clear()
        self._held = []
        self._recent.clear()
        self._free_ids = list(range(self.max_batch_size))
        self._free_held = list(range(self.max_batch_size, self.max_batch_size + HELD_PROMPTS))

    @property
    def held_prompts(self) -> list[int]:
        """The lengths of the prompts held for new prompts to share, most recent first."""
        return [len(prompt) for prompt, _ in self._held]

    @property
    def cached_sequences(self) -> int:
        """Sequences holding cells in the KV cache now (for checks and metrics)."""
        lib = self._llama.lib
        return sum(lib.llama_memory_seq_pos_max(self._llama.memory, i) >= 0
                   for i in range(self.max_batch_size))
