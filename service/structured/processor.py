"""A grammar as a logits processor of the engine's per-row hook (service/sampling.py).

The engine calls `apply_rows` once per decode step with every grammar row of the batch, so
one `MaskBatch` computes all their masks in one call (in parallel, in Rust); rows without a
grammar never reach it. A matcher is advanced lazily: before the next mask, by the tokens of
the row's reply it has not consumed yet (the hook hands each processor its reply), which is
the same state an advance right after sampling gives, without a second call per step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from service.structured.grammar import Grammar, GrammarCompiler, GrammarConstraint, MaskBatch


class GrammarProcessor:
    """One reply's grammar, as a `LogitsProcessor`; `param` names the request field it
    enforces (an engine that cannot run it names that field in its 400)."""

    def __init__(self, compiler: GrammarCompiler, grammar: Grammar, masks: MaskBatch,
                 param: str) -> None:
        self.compiler, self.grammar, self.masks, self.param = compiler, grammar, masks, param
        self.constraint: GrammarConstraint = compiler.constraint(grammar)

    def fork(self) -> GrammarProcessor:
        """A fresh matcher for another choice of the same request."""
        return GrammarProcessor(self.compiler, self.grammar, self.masks, self.param)

    def catch_up(self, reply: Sequence[int]) -> GrammarConstraint:
        """The constraint, advanced by the reply's tokens it has not seen."""
        for token in reply[self.constraint.consumed:]:
            self.constraint.advance(token)
        return self.constraint

    def __call__(self, logits: torch.Tensor, reply: Sequence[int]) -> None:
        """Mask one row (1-D logits) in place."""
        self.masks.apply(logits.unsqueeze(0), [(0, self.catch_up(reply))])

    @staticmethod
    def apply_rows(logits: torch.Tensor,
                   items: list[tuple[int, GrammarProcessor, Sequence[int]]]) -> None:
        """Mask every grammar row of a step (rows x vocab logits) with one batch call per
        mask buffer (one per served model)."""
        groups: dict[int, list[tuple[int, GrammarProcessor, Sequence[int]]]] = {}
        for item in items:
            groups.setdefault(id(item[1].masks), []).append(item)
        for group in groups.values():
            group[0][1].masks.apply(logits, [(row, proc.catch_up(reply))
                                             for row, proc, reply in group])
