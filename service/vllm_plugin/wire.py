"""A grounded reply's token constraint as one `vllm_xargs` entry, and back.

vLLM's OpenAI server takes `vllm_xargs` values that are strings, numbers or flat lists of them
and hands them to the logits processors as `SamplingParams.extra_args`; a constraint holds
nested token-id sets, so it travels as one JSON string under `XARG`, versioned. Both readers'
constraints (`CopyConstraint`, `EvidenceConstraint`) are token ids the service computed with
the checkpoint's tokenizer, so the vLLM side needs no tokenizer to rebuild them exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from service.evidence_constraints import CopyConstraint, EvidenceConstraint

XARG = "cogcore_constraint"
VERSION = 1


class ConstraintArgsError(ValueError):
    """`vllm_xargs` name a constraint that cannot be read (vLLM answers 400 with it)."""


def constraint_xargs(constraint: CopyConstraint | EvidenceConstraint) -> dict[str, str]:
    """The `vllm_xargs` entry that carries `constraint`."""
    if isinstance(constraint, CopyConstraint):
        data: dict[str, Any] = {"kind": "copy", "runs": [list(r) for r in constraint.runs],
                                "starts": [sorted(s) for s in constraint.starts]}
    elif isinstance(constraint, EvidenceConstraint):
        data = {"kind": "restate", "vocabulary": sorted(constraint.vocabulary),
                "successors": [[a, sorted(b)] for a, b in sorted(constraint.successors.items())],
                "breaks": sorted(constraint.breaks), "word_starts": sorted(constraint.word_starts),
                "no_repeat": constraint.no_repeat}
    else:
        raise TypeError(f"no wire form for {type(constraint).__name__}")
    data |= {"v": VERSION, "stop_ids": sorted(constraint.stop_ids)}
    return {XARG: json.dumps(data, separators=(",", ":"))}


def forcing(token: int) -> CopyConstraint:
    """The constraint that holds a reply's first token to `token` (the upstream's probe)."""
    return CopyConstraint(((token,),), (frozenset([0]),), frozenset())


def constraint_from_xargs(extra_args: Mapping[str, Any] | None
                          ) -> CopyConstraint | EvidenceConstraint | None:
    """The constraint `extra_args` carry; None when they carry none (the request is free)."""
    raw = (extra_args or {}).get(XARG)
    if raw is None:
        return None
    try:
        data = json.loads(raw) if isinstance(raw, str) else None
        if not isinstance(data, dict) or data.get("v") != VERSION:
            raise ConstraintArgsError(f"{XARG}: not a version {VERSION} constraint")
        stops = _ids(data["stop_ids"])
        if data["kind"] == "copy":
            runs = tuple(tuple(_ids(r)) for r in data["runs"])
            starts = tuple(frozenset(_ids(s)) for s in data["starts"])
            if len(starts) != len(runs):
                raise ConstraintArgsError(f"{XARG}: one set of starts per run")
            return CopyConstraint(runs, starts, frozenset(stops))
        if data["kind"] == "restate":
            return EvidenceConstraint(
                vocabulary=frozenset(_ids(data["vocabulary"])),
                successors={_id(a): frozenset(_ids(b)) for a, b in data["successors"]},
                breaks=frozenset(_ids(data["breaks"])),
                word_starts=frozenset(_ids(data["word_starts"])),
                stop_ids=frozenset(stops), no_repeat=_id(data["no_repeat"]))
        raise ConstraintArgsError(f"{XARG}: unknown kind {data['kind']!r}")
    except ConstraintArgsError:
        raise
    except (ValueError, KeyError, TypeError) as exc:  # bad JSON, a missing key, a bad shape
        raise ConstraintArgsError(f"{XARG}: malformed ({type(exc).__name__}: {exc})") from exc


def _id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConstraintArgsError(f"{XARG}: {value!r} is not a token id")
    return value


def _ids(values: Iterable[Any]) -> list[int]:
    if not isinstance(values, list):
        raise ConstraintArgsError(f"{XARG}: {values!r} is not a list of token ids")
    return [_id(v) for v in values]
