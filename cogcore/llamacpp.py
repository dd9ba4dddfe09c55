"""llama.cpp in-process (the optional `llamacpp` extra): the library, and one model's context.

Shared by the service's llama.cpp engine (`service.llamacpp_engine`) and the evaluation of a
GGUF (`evaluation.lm_llamacpp`): both decode batches of tokens from several sequences in one
KV cache and read the logits in Python.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from cogcore.errors import CogcoreError


class LlamaCppError(CogcoreError):
    """llama.cpp failed at run time (a model that does not load, a full KV cache)."""


class LlamaCppUnavailable(CogcoreError):
    """llama.cpp cannot be used: the extra is not installed, or a GGUF is missing."""


def import_llama_cpp():
    """The `llama_cpp` module, or a clear error saying how to install it."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise LlamaCppUnavailable(
            "llama.cpp needs the optional extra: `make llamacpp` (compiles llama-cpp-python, "
            "about 10 minutes on 2 cores); without it, use the torch engine (the default)"
        ) from exc
    return llama_cpp


def free_cores() -> int:
    """The cores this process may run on (its CPU affinity)."""
    return len(os.sched_getaffinity(0))


class LlamaContext:
    """One llama.cpp model and context: a KV cache of `n_ctx` cells shared by `n_seq`
    sequences (unified: any one of them may use all the cells, and a cell may belong to
    several), decoding batches of up to `n_batch` tokens."""

    def __init__(self, gguf: Path, n_ctx: int, n_seq: int, n_batch: int, threads: int) -> None:
        self.lib = lib = import_llama_cpp()
        # llama-cpp-python routes llama.cpp's log lines through this logger: errors only.
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
        lib.llama_backend_init()
        mparams = lib.llama_model_default_params()
        self.model = lib.llama_model_load_from_file(str(gguf).encode(), mparams)
        if not self.model:
            raise LlamaCppError(f"llama.cpp could not load {gguf}")
        cparams = lib.llama_context_default_params()
        cparams.n_ctx, cparams.n_batch, cparams.n_ubatch = n_ctx, n_batch, n_batch
        cparams.n_seq_max = n_seq
        cparams.kv_unified = True  # else each sequence gets only n_ctx / n_seq cells
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.no_perf = True
        self.ctx = lib.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            lib.llama_model_free(self.model)
            raise LlamaCppError(f"llama.cpp could not create a context of {n_ctx} tokens")
        self.memory = lib.llama_get_memory(self.ctx)
        self.n_vocab = lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(self.model))
        self.n_batch = n_batch
        self.batch = lib.llama_batch_init(n_batch, 0, n_seq)

    def decode(self, tokens: list[tuple[int, int, tuple[int, ...], bool]]) -> torch.Tensor:
        """Decode `tokens` (token, position, the sequence ids it belongs to, wants logits) in
        chunks of at most `n_batch`; the logits of the tokens that want them, in order, one
        row each (copied out of llama.cpp's buffer in one piece per chunk)."""
        lib, batch, parts = self.lib, self.batch, []
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start:start + self.n_batch]
            batch.n_tokens = len(chunk)
            wanted = 0
            for i, (token, pos, seq_ids, logits) in enumerate(chunk):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, pos, len(seq_ids)
                for j, seq_id in enumerate(seq_ids):
                    batch.seq_id[i][j] = seq_id
                batch.logits[i] = logits
                wanted += bool(logits)
            status = lib.llama_decode(self.ctx, batch)
            if status != 0:
                raise LlamaCppError(f"llama_decode failed (status {status}"
                                   f"{': the KV cache is full' if status == 1 else ''})")
            if wanted:  # llama.cpp keeps the wanted rows together, in the batch's order
                rows = lib.llama_get_logits(self.ctx)
                parts.append(torch.from_numpy(
                    np.ctypeslib.as_array(rows, shape=(wanted, self.n_vocab)).copy()))
        if len(parts) == 1:
            return parts[0]
        return torch.cat(parts) if parts else torch.empty(0, self.n_vocab)

    def remove(self, seq_id: int) -> None:
        """Drop one sequence's cells from the KV cache."""
        self.lib.llama_memory_seq_rm(self.memory, seq_id, -1, -1)

    def copy(self, src: int, dst: int, until: int = -1) -> None:
        """Share sequence `src`'s cells (those before position `until`; -1: all) with `dst`
        (a held prefix, choices of one prompt)."""
        self.lib.llama_memory_seq_cp(self.memory, src, dst, 0 if until >= 0 else -1, until)

    def clear(self) -> None:
        self.lib.llama_memory_clear(self.memory, True)

    def close(self) -> None:
        if self.ctx:
            self.lib.llama_batch_free(self.batch)
            self.lib.llama_free(self.ctx)
            self.lib.llama_model_free(self.model)
            self.ctx = self.model = None
