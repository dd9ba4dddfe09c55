"""Vocabulary trimming: keep the `size` most frequent tokens of a byte-level BPE vocabulary.

A BPE tokenizer's merges are ranked by how often the pair occurred when it was trained, and in
the Llama/Qwen2/SmolLM byte-level tokenizers merge number i creates token id `offset + i`. So
keeping the ids below `size` is the same as truncating the merge list: the result is a valid
tokenizer in which every kept token keeps its id, and every text still tokenizes (rarer words
into more, smaller pieces). The model keeps the first `size` rows of its embedding (and of an
untied output head): nothing is re-indexed. The rare tokens dropped are mostly names and code,
which carry little of the reading and reasoning a core is for (Ushio et al. 2023 trim
multilingual vocabularies the same way).
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

from cogcore.errors import CogcoreError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class VocabTrimError(CogcoreError, ValueError):
    """A tokenizer that cannot be trimmed by merge rank, or a size that does not fit it."""


def _merge_pair(merge: Any) -> tuple[str, str]:
    return tuple(merge) if isinstance(merge, list) else tuple(merge.split(" ", 1))


def merge_offset(spec: dict[str, Any]) -> int:
    """The id that the first merge creates; raises unless merge i creates id offset + i."""
    model = spec.get("model", {})
    if model.get("type") != "BPE" or not model.get("merges"):
        raise VocabTrimError("vocabulary trimming needs a BPE tokenizer with a merge list")
    vocab, merges = model["vocab"], model["merges"]
    offset = vocab["".join(_merge_pair(merges[0]))]
    for rank, merge in enumerate(merges):
        if vocab.get("".join(_merge_pair(merge))) != offset + rank:
            raise VocabTrimError(f"merge {rank} does not create id {offset + rank}: the "
                                 "vocabulary is not in merge order, so it cannot be trimmed")
    return offset


def trimmed_spec(spec: dict[str, Any], size: int) -> dict[str, Any]:
    """A tokenizer.json spec keeping ids below `size` and the merges that create them."""
    offset = merge_offset(spec)
    special = max((t["id"] for t in spec.get("added_tokens", [])), default=-1)
    if not max(offset, special + 1) < size <= len(spec["model"]["vocab"]):
        raise VocabTrimError(f"vocabulary size {size} must be above {max(offset, special + 1)}"
                             f" (alphabet and special tokens) and at most "
                             f"{len(spec['model']['vocab'])}")
    trimmed = copy.deepcopy(spec)
    trimmed["model"]["vocab"] = {t: i for t, i in spec["model"]["vocab"].items() if i < size}
    trimmed["model"]["merges"] = spec["model"]["merges"][: size - offset]
    return trimmed


def tokenizer_trimmed_spec(tokenizer: PreTrainedTokenizerBase, size: int) -> dict[str, Any]:
    """`trimmed_spec` of a loaded tokenizer; raises `VocabTrimError` when it cannot be trimmed."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise VocabTrimError("vocabulary trimming needs a fast (tokenizers) tokenizer")
    return trimmed_spec(json.loads(backend.to_str()), size)


def trim_vocabulary(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, size: int
) -> PreTrainedTokenizerBase:
    """Cut `model` (in place) and a copy of `tokenizer` to the `size` most frequent tokens."""
    from tokenizers import Tokenizer

    spec = tokenizer_trimmed_spec(tokenizer, size)
    trimmed = copy.deepcopy(tokenizer)
    trimmed._tokenizer = Tokenizer.from_str(json.dumps(spec))  # noqa: SLF001 - no public setter
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        value = getattr(model.config, name, None)
        if isinstance(value, int) and value >= size:
            raise VocabTrimError(f"{name} {value} would be trimmed away")
    model.resize_token_embeddings(size, mean_resizing=False)
    return trimmed
