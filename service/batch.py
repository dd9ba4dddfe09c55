"""The running batch's state: a left-padded KV cache, its attention mask and positions.

Rows are aligned on the right (the newest token of every row is in the last column), so a
decode step is one forward pass of shape (rows, 1). New rows are prefilled together and merged
by padding the shorter cache on the left; finished rows are dropped by indexing, and columns
that have become padding for every remaining row are trimmed away. A prefix that all new prompts
share (a chat template's system turn) is encoded once and copied into each row, so a prefill
only computes the rows' own suffixes, left-padded after it: [prefix | padding | suffix].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

if TYPE_CHECKING:
    from transformers import PreTrainedModel


class SlabLayer(DynamicLayer):
    """A cache layer whose columns live in a buffer with room to grow, so a decode step writes
    its column in place instead of concatenating the whole cache (a copy per layer per step).

    `keys`/`values` stay views of the buffer; when `merge`, `keep_rows` or `_zero_padding`
    replace them with new tensors, the next update copies them into a fresh buffer."""

    spare_columns = 64

    @classmethod
    def holding(cls, keys: torch.Tensor, values: torch.Tensor) -> SlabLayer:
        """A layer that starts from these tensors (rows, heads, columns, head_dim)."""
        layer = cls()
        layer.lazy_initialization(keys, values)
        layer.keys, layer.values = keys, values
        return layer

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        """Start empty, with no buffer yet."""
        super().lazy_initialization(key_states, value_states)
        self._key_buf = self._value_buf = torch.empty(0)

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object, **kwargs: object
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new columns after the used ones; return views of every used column."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        used = self.keys.shape[-2] if self.keys.dim() == 4 else 0
        needed = used + key_states.shape[-2]
        if not self._in_buffer(needed):
            self._regrow(key_states, value_states, used, needed)
        self._key_buf[:, :, used:needed] = key_states
        self._value_buf[:, :, used:needed] = value_states
        self.keys, self.values = self._key_buf[:, :, :needed], self._value_buf[:, :, :needed]
        return self.keys, self.values

    def _in_buffer(self, needed: int) -> bool:
        buf = self._key_buf
        return (buf.dim() == 4 and buf.shape[-2] >= needed and buf.shape[0] == self.keys.shape[0]
                and self.keys.data_ptr() == buf.data_ptr()
                and self.values.data_ptr() == self._value_buf.data_ptr())

    def _regrow(self, key_states: torch.Tensor, value_states: torch.Tensor, used: int,
                needed: int) -> None:
        rows, heads, _, dim = key_states.shape
        shape = (rows, heads, needed + self.spare_columns, dim)
        key_buf = key_states.new_empty(shape)
        value_buf = value_states.new_empty((*shape[:3], value_states.shape[-1]))
        if used:
            key_buf[:, :, :used] = self.keys
            value_buf[:, :, :used] = self.values
        self._key_buf, self._value_buf = key_buf, value_buf


@dataclass
class BatchState:
    """KV cache, mask (rows x columns, 1 = real token) and each row's next position."""

    cache: DynamicCache
    mask: torch.Tensor
    positions: torch.Tensor

    @property
    def rows(self) -> int:
        """Number of sequences in the batch."""
        return int(self.mask.shape[0])


@dataclass(frozen=True)
class Prefix:
    """Token ids that many prompts start with, and their KV cache (one row per layer)."""

    ids: tuple[int, ...]
    kv: tuple[tuple[torch.Tensor, torch.Tensor], ...]

    def covers(self, prompt: list[int]) -> bool:
        """True when `prompt` starts with this prefix and has at least one token more."""
        return len(prompt) > len(self.ids) and tuple(prompt[: len(self.ids)]) == self.ids


def encode_prefix(model: PreTrainedModel, ids: list[int]) -> Prefix:
    """Run `ids` once (batch of one) and keep the cache, to be shared by many rows."""
    cache = DynamicCache()
    model(input_ids=torch.tensor([ids], device=model.device), cache=cache, use_cache=True,
          logits_to_keep=1)
    return Prefix(tuple(ids), tuple((layer.keys, layer.values) for layer in cache.layers))


def cut_prefix(state: BatchState, ids: list[int]) -> Prefix:
    """The first len(ids) columns of a one-row batch prefilled without a prefix."""
    if state.rows != 1:
        raise ValueError("a prefix is cut only from a one-row prefill (no padding)")
    return Prefix(tuple(ids), tuple((layer.keys[:, :, : len(ids)].clone(),
                                     layer.values[:, :, : len(ids)].clone())
                                    for layer in state.cache.layers))


def common_prefix(prompts: list[list[int]], limit: int) -> int:
    """Length of the longest prefix that every prompt shares, at most `limit`."""
    n = min(limit, *(len(p) for p in prompts))
    first = prompts[0]
    for other in prompts[1:]:
        n = next((i for i in range(n) if other[i] != first[i]), n)
    return n


def prefix_groups(prompts: list[list[int]], minimum: int) -> list[list[int]]:
    """The indices of `prompts` in groups whose prompts share a prefix of at least `minimum`
    tokens, each prompt keeping a token of its own after it (a chat template's turn, the
    reader's instructions), so that each group's prefix is computed once; a prompt that
    shares none is a group of its own. Groups are runs of the prompts in sorted order."""
    groups: list[list[int]] = []
    for i in sorted(range(len(prompts)), key=lambda i: prompts[i]):
        if groups:
            group = groups[-1]
            limit = min(len(prompts[j]) for j in (*group, i)) - 1
            if common_prefix([prompts[group[0]], prompts[i]], limit) >= minimum:
                group.append(i)
                continue
        groups.append([i])
    return groups


def prefill(
    model: PreTrainedModel, prompts: list[list[int]], pad_id: int, prefix: Prefix | None = None
) -> tuple[BatchState, torch.Tensor]:
    """Run the prompts (each covered by `prefix`, when given) as one left-padded batch after
    the prefix; return the batch's state and last-token logits."""
    start = len(prefix.ids) if prefix else 0
    suffixes = [p[start:] for p in prompts]
    width = max(len(p) for p in suffixes)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width + start), dtype=torch.long)
    mask[:, :start] = 1
    for row, suffix in enumerate(suffixes):
        ids[row, width - len(suffix) :] = torch.tensor(suffix)
        mask[row, start + width - len(suffix) :] = 1
    ids, mask = ids.to(model.device), mask.to(model.device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, start:]
    rows = len(prompts)
    cache = DynamicCache(ddp_cache_data=[(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1))
                                         for k, v in prefix.kv]) if prefix else DynamicCache()
    out = model(
        input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
        use_cache=True, logits_to_keep=1,
    )
    _zero_padding(cache, mask)
    cache.layers[:] = [SlabLayer.holding(layer.keys, layer.values) for layer in cache.layers]
    return BatchState(cache, mask, positions[:, -1] + 1), out.logits[:, -1, :]


def decode(model: PreTrainedModel, state: BatchState, tokens: list[int]) -> torch.Tensor:
    """Feed one token per row; advance the state; return the next-token logits."""
    ids = torch.tensor(tokens, dtype=torch.long, device=model.device)[:, None]
    mask = F.pad(state.mask, (0, 1), value=1)
    out = model(
        input_ids=ids, attention_mask=mask, position_ids=state.positions[:, None],
        cache=state.cache, use_cache=True,
    )
    state.mask = mask
    state.positions = state.positions + 1
    return out.logits[:, -1, :]


def merge(state: BatchState, new: BatchState) -> BatchState:
    """Append the rows of `new` to `state` (both caches aligned on the right)."""
    width = max(state.mask.shape[1], new.mask.shape[1])
    for old_layer, new_layer in zip(state.cache.layers, new.cache.layers, strict=True):
        old_layer.keys = torch.cat([_left_pad(old_layer.keys, width),
                                    _left_pad(new_layer.keys, width)])
        old_layer.values = torch.cat([_left_pad(old_layer.values, width),
                                      _left_pad(new_layer.values, width)])
    state.mask = torch.cat([_left_pad(state.mask, width), _left_pad(new.mask, width)])
    state.positions = torch.cat([state.positions, new.positions])
    return state


def keep_rows(state: BatchState, rows: list[int]) -> BatchState:
    """Keep only `rows` (in that order) and trim columns that are now padding everywhere."""
    index = torch.tensor(rows, dtype=torch.long, device=state.mask.device)
    mask = state.mask.index_select(0, index)
    live = mask.any(dim=0).nonzero()
    start = int(live[0]) if len(live) else mask.shape[1]
    for layer in state.cache.layers:
        layer.keys = layer.keys.index_select(0, index)[:, :, start:]
        layer.values = layer.values.index_select(0, index)[:, :, start:]
    state.mask = mask[:, start:]
    state.positions = state.positions.index_select(0, index)
    return state


def _left_pad(tensor: torch.Tensor, width: int) -> torch.Tensor:
    # Mask is (rows, columns); cache tensors are (rows, heads, columns, head_dim).
    seq_dim = 1 if tensor.dim() == 2 else 2
    missing = width - tensor.shape[seq_dim]
    if missing == 0:
        return tensor
    pad = (missing, 0) if seq_dim == 1 else (0, 0, missing, 0)
    return F.pad(tensor, pad, value=0)


def _zero_padding(cache: DynamicCache, mask: torch.Tensor) -> None:
    # Padded query rows attend to nothing and may hold NaN; a masked key with a NaN value
    # would still poison the attention product (0 * NaN), so padding is stored as zeros.
    pad = (mask == 0)[:, None, :, None]
    for layer in cache.layers:
        layer.keys = layer.keys.masked_fill(pad, 0.0)
        layer.values = layer.values.masked_fill(pad, 0.0)
