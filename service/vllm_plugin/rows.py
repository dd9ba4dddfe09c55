"""The constrained rows of vLLM's persistent batch, kept as its `BatchUpdate`s describe them.

vLLM (v1 sampler) calls a logits processor's `update_state(batch_update)` before every step:
`batch_update` is None when the batch's make-up did not change, else it lists, to be applied in
this order, the rows `removed` (indices), `added` (index, params, prompt ids, output ids: a live
reference to the request's generated tokens, which vLLM appends to) and `moved` (index a,
index b, UNIDIRECTIONAL: a's request now sits at b, a is empty; SWAP: a and b trade places).
`apply(logits)` then gets the batch's (rows x vocab) logits. Here each row whose request carries
a constraint (`wire.XARG` in `params.extra_args`) keeps that constraint and the reference to its
output ids, and `apply` masks the row to `constraint.allowed(output ids)` with
`service.sampling.restrict`: the rule and the mask of the in-process engine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from service.sampling import TokenConstraint, restrict
from service.vllm_plugin.wire import ConstraintArgsError, constraint_from_xargs

log = logging.getLogger("cogcore.vllm_plugin")


class ConstraintRows:
    """Row index -> (constraint, the request's output token ids so far)."""

    def __init__(self) -> None:
        self.rows: dict[int, tuple[TokenConstraint, Sequence[int]]] = {}

    def update(self, batch_update: Any | None) -> None:
        """Follow one `BatchUpdate` (None: nothing changed)."""
        if batch_update is None:
            return
        for index in batch_update.removed:
            self.rows.pop(index, None)
        for index, params, _prompt_ids, output_ids in batch_update.added:
            constraint = _constraint_of(params)
            if constraint is None:
                self.rows.pop(index, None)  # a free request took the place of a constrained one
            else:
                self.rows[index] = (constraint, output_ids)
        for a, b, direction in batch_update.moved:
            at_a, at_b = self.rows.pop(a, None), self.rows.pop(b, None)
            if at_a is not None:
                self.rows[b] = at_a
            if at_b is not None and _name(direction) == "SWAP":
                self.rows[a] = at_b

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Mask every constrained row of `logits` (rows x vocab) in place; returns it."""
        for index, (constraint, output_ids) in self.rows.items():
            logits[index] = restrict(logits[index], constraint.allowed(output_ids))
        return logits


def _constraint_of(params: Any) -> TokenConstraint | None:
    """The request's constraint; an unreadable one leaves the row free (vLLM versions with
    `validate_params` refuse it at admission, so this is only reached on older ones), because
    an exception here would stop vLLM's engine for every request."""
    try:
        return constraint_from_xargs(getattr(params, "extra_args", None))
    except ConstraintArgsError as exc:
        log.error("request left unconstrained: %s", exc)
        return None


def _name(direction: Any) -> str:
    """vLLM's `MoveDirectionality` member's name (or the name itself, for a fake)."""
    return getattr(direction, "name", str(direction))
