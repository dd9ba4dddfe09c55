"""The pruning methods, by name: the one place that lists them.

A method is a weight edit (keeps every shape), a neuron scorer (ranks neurons for the cut), or
`edit+scorer` (the edit first, then the cut on the edited model). A scorer is a function
`(model, data, cfg) -> list[Tensor]`, one score per MLP neuron and layer, higher meaning keep;
adding one is a file with that function and a line in `SCORERS` (docs/pruning.md).

The registry names its functions as `module:function` and imports them on first use: the
command line reads the names for its help, and `cogcore --help` must not wait for torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cogcore.errors import CogcoreError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

    from pruning.calibration import CalibrationSets
    from pruning.pipeline import PruneConfig

    Scorer = Callable[[PreTrainedModel, CalibrationSets, PruneConfig], list[torch.Tensor]]


class PruneConfigError(CogcoreError, ValueError):
    """A pruning configuration that cannot run."""


@dataclass(frozen=True)
class Deferred:
    """The function `module:function`, imported when first called."""

    target: str

    def resolve(self) -> Callable[..., Any]:
        """The function itself (imports its module)."""
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)

    def __call__(self, *args: object) -> Any:
        return self.resolve()(*args)


@dataclass(frozen=True)
class Edit:
    """A weight edit that keeps every shape.

    `apply(model, data, cfg)` edits in place and returns details for the report;
    `check(model, cfg)` raises `ValueError` on settings that cannot run, before any work.
    """

    apply: Callable[[PreTrainedModel, CalibrationSets, PruneConfig], dict[str, Any]]
    check: Callable[[PreTrainedModel, PruneConfig], None]


SCORERS: dict[str, Scorer] = {
    "contrastive": Deferred("pruning.scoring:contrastive_scorer"),
    "random": Deferred("pruning.scoring:random_scorer"),
    "magnitude": Deferred("pruning.scoring:magnitude_scorer"),
    "wanda": Deferred("pruning.scoring:wanda_scorer"),
}
EDITS: dict[str, Edit] = {
    "kfac": Edit(Deferred("pruning.kfac:apply_kfac"), Deferred("pruning.kfac:check_kfac")),
}
# The scorers `cogcore prune sweep` also runs after every edit by default: the controls
# (random, magnitude, wanda) after an edit answer no question the sweep asks.
SWEPT_AFTER_EDITS = ("contrastive",)


@dataclass(frozen=True)
class Method:
    """A parsed method name: the edit to apply first, then the scorer that picks the cut."""

    edit: str | None
    scorer: str | None


def method_names() -> tuple[str, ...]:
    """Every valid method name: the scorers, the edits, and each edit+scorer."""
    return (*SCORERS, *EDITS, *(f"{edit}+{scorer}" for edit in EDITS for scorer in SCORERS))


def sweep_methods() -> tuple[str, ...]:
    """What `cogcore prune sweep` compares by default: every scorer, and the edits before
    the scorers in `SWEPT_AFTER_EDITS`."""
    return (*SCORERS, *(f"{edit}+{scorer}" for edit in EDITS for scorer in SWEPT_AFTER_EDITS))


def describe_methods(*, cutting_only: bool = False) -> str:
    """One line naming the methods (those that cut neurons only, if asked), for help texts."""
    edits = "" if cutting_only else f", an edit that keeps shapes ({', '.join(EDITS)})"
    example = f"{next(iter(EDITS))}+{next(iter(SCORERS))}"
    return f"a scorer that cuts ({', '.join(SCORERS)}){edits}, or edit+scorer such as {example}"


def parse_method(name: str) -> Method:
    """The edit and scorer `name` stands for; `PruneConfigError` listing the choices if none."""
    edit, plus, scorer = name.partition("+")
    method = (Method(edit, scorer) if plus
              else Method(name, None) if name in EDITS else Method(None, name))
    if (method.edit is None or method.edit in EDITS) and (
            method.scorer is None or method.scorer in SCORERS):
        return method
    raise PruneConfigError(f"unknown method {name!r}; choose from {', '.join(method_names())}")
