"""The vLLM logits-processor plugin: the constraint's wire form, the batch's rows as vLLM's
BatchUpdate moves them (with fakes of its types), the same tokens as the in-process engine's
rule, and the adapter class against the real vLLM where vLLM is installed."""

from __future__ import annotations

import enum
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoTokenizer

from service.evidence_constraints import copy_constraint, evidence_constraint
from service.sampling import SamplingParams, restrict, sample_rows
from service.vllm_plugin.rows import ConstraintRows
from service.vllm_plugin.wire import (
    XARG,
    ConstraintArgsError,
    constraint_from_xargs,
    constraint_xargs,
    forcing,
)

EVIDENCE = ["The capital of Peru is Lima. Peru's currency is the sol.",
            "The capital of France is Paris."]
QUESTION = "What is the capital of Peru?"


class Direction(enum.Enum):
    """vLLM's `MoveDirectionality`."""

    UNIDIRECTIONAL = enum.auto()
    SWAP = enum.auto()


@dataclass
class Params:
    """vLLM's `SamplingParams`, the one field the plugin reads."""

    extra_args: dict[str, Any] | None = None


@dataclass
class Update:
    """vLLM's `BatchUpdate`: removed indices; added (index, params, prompt ids, output ids);
    moved (a, b, direction)."""

    batch_size: int
    removed: list[int] = field(default_factory=list)
    added: list[tuple[int, Params, list[int], list[int]]] = field(default_factory=list)
    moved: list[tuple[int, int, Direction]] = field(default_factory=list)


@pytest.fixture(scope="module")
def constraints(tiny_llama_dir: Path) -> dict[str, Any]:
    """Both readers' constraints over the same evidence, with the tiny checkpoint's tokenizer."""
    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    stops = {tok.eos_token_id}
    return {"copy": copy_constraint(tok, EVIDENCE, stops, QUESTION),
            "restate": evidence_constraint(tok, [*EVIDENCE, QUESTION], stops, no_repeat=3)}


@pytest.mark.parametrize("kind", ["copy", "restate"])
def test_the_wire_form_rebuilds_the_same_constraint(constraints: dict, kind: str) -> None:
    xargs = constraint_xargs(constraints[kind])
    # vLLM's OpenAI server takes string, number or flat-list values in vllm_xargs.
    assert list(xargs) == [XARG] and isinstance(xargs[XARG], str)
    assert constraint_from_xargs(json.loads(json.dumps(xargs))) == constraints[kind]


def test_a_request_without_the_argument_is_free() -> None:
    assert constraint_from_xargs(None) is None
    assert constraint_from_xargs({"other_plugin": 3}) is None


@pytest.mark.parametrize(("raw", "says"), [
    ("{not json", "malformed"),
    (json.dumps({"v": 99, "kind": "copy"}), "not a version 1"),
    (json.dumps({"v": 1, "kind": "grammar", "stop_ids": []}), "unknown kind"),
    (json.dumps({"v": 1, "kind": "copy", "stop_ids": [2], "runs": [[5, -1]], "starts": [[0]]}),
     "not a token id"),
    (json.dumps({"v": 1, "kind": "copy", "stop_ids": [2], "runs": [[5]], "starts": []}),
     "one set of starts per run"),
    (json.dumps({"v": 1, "kind": "restate", "stop_ids": [2]}), "malformed"),
    (7, "not a version 1"),
])
def test_a_malformed_constraint_is_a_value_error(raw: object, says: str) -> None:
    with pytest.raises(ConstraintArgsError, match=says) as refused:
        constraint_from_xargs({XARG: raw})
    assert isinstance(refused.value, ValueError)  # what vLLM's validate_params turns into a 400


def test_rows_follow_added_removed_and_moved_requests(constraints: dict) -> None:
    copy, restate = constraints["copy"], constraints["restate"]
    outs = [[], [], []]
    rows = ConstraintRows()
    rows.update(None)  # no change: nothing happens
    rows.update(Update(3, added=[(0, Params(constraint_xargs(copy)), [1], outs[0]),
                                 (1, Params(), [1], outs[1]),
                                 (2, Params(constraint_xargs(restate)), [1], outs[2])]))
    assert sorted(rows.rows) == [0, 2]
    first = next(iter(copy.allowed([])))
    outs[0].append(first)  # vLLM appends to the list it handed over: the row sees it
    check_masks(rows, {0: (copy, outs[0]), 2: (restate, outs[2])}, width=3)

    rows.update(Update(2, removed=[0], moved=[(2, 0, Direction.UNIDIRECTIONAL)]))
    assert list(rows.rows) == [0] and rows.rows[0][0] == restate
    rows.update(Update(2, moved=[(0, 1, Direction.SWAP)]))  # with the free request, now at 0
    assert list(rows.rows) == [1] and rows.rows[1][1] is outs[2]
    rows.update(Update(2, added=[(1, Params(), [1], [])]))  # a free request takes its place
    assert rows.rows == {}
    rows.update(Update(2, added=[(0, Params({XARG: "{"}), [1], [])]))  # unreadable: left free
    assert rows.rows == {}


def check_masks(rows: ConstraintRows, expected: dict[int, tuple[Any, list[int]]],
                width: int) -> None:
    """`rows.apply` masks exactly the constrained rows, each as the engine's `restrict` does."""
    logits = torch.randn(width, 400, generator=torch.Generator().manual_seed(1))
    before = logits.clone()
    out = rows.apply(logits)
    for row in range(width):
        if row in expected:
            constraint, reply = expected[row]
            assert torch.equal(out[row], restrict(before[row], constraint.allowed(reply)))
            assert torch.isinf(out[row]).any()
        else:
            assert torch.equal(out[row], before[row])


@pytest.mark.parametrize("kind", ["copy", "restate"])
def test_the_same_tokens_as_the_engines_rule_step_by_step(constraints: dict, kind: str) -> None:
    """Three rows, noisy logits, 24 greedy steps with a reshuffle halfway: each constrained
    row's tokens are those `service.sampling.sample_rows` picks with the same constraint."""
    constraint = constraints[kind]
    generator = torch.Generator().manual_seed(7)
    outs: list[list[int]] = [[], [], []]
    engine_replies: list[list[int]] = [[], [], []]
    at = [0, 1, 2]  # request -> its row in vLLM's batch
    rows = ConstraintRows()
    rows.update(Update(3, added=[(i, Params(constraint_xargs(constraint) if i != 1 else None),
                                  [1], outs[i]) for i in range(3)]))
    for step in range(24):
        if step == 12:  # requests 0 and 2 trade rows
            rows.update(Update(3, moved=[(0, 2, Direction.SWAP)]))
            at = [2, 1, 0]
        logits = torch.randn(3, 400, generator=generator)
        ours = rows.apply(logits.clone())
        for request in (0, 2):
            expected = sample_rows(logits[[at[request]]].clone(), [SamplingParams(
                24, constraint=constraint)], [None], [engine_replies[request]])[0]
            token = int(ours[at[request]].argmax())
            assert token == expected, (kind, step, request)
            outs[request].append(token)
            engine_replies[request].append(expected)
        outs[1].append(int(ours[at[1]].argmax()))
    assert outs[0] == engine_replies[0] and outs[2] == engine_replies[2]


def test_the_logic_imports_nothing_of_the_service_stack() -> None:
    """What the vLLM server imports: no FastAPI, transformers, FAISS, httpx or engine."""
    code = ("import sys, service.vllm_plugin.processor, service.vllm_plugin.rows; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'fastapi', "
            "'transformers', 'faiss', 'httpx', 'pydantic', 'starlette'} or m in "
            "{'service.engine', 'service.app', 'service.grounding', 'service.upstream'}); "
            "print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_forcing_holds_the_first_token() -> None:
    assert forcing(42).allowed([]) == frozenset([42])
    assert forcing(42).allowed([42]) == frozenset()  # then only the stops: none here


def test_the_adapter_class_over_a_stand_in_for_vllm(constraints: dict,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The class body, which only vLLM's presence defines, run over a stand-in module of
    vLLM's abstract base (the real one is below, where vLLM is installed)."""
    import abc
    import importlib
    import types

    import service.vllm_plugin.processor as module

    fake = types.ModuleType("vllm.v1.sample.logits_processor")
    fake.LogitsProcessor = type("LogitsProcessor", (abc.ABC,), {})  # type: ignore[attr-defined]
    for name in ("vllm", "vllm.v1", "vllm.v1.sample"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    try:
        processor = importlib.reload(module).EvidenceConstraintProcessor(None, "cpu", False)
        assert isinstance(processor, fake.LogitsProcessor)
        assert processor.is_argmax_invariant() is False and processor.needs_output_token_ids()
        out: list[int] = []
        processor.update_state(Update(1, added=[(0, Params(constraint_xargs(constraints["copy"])),
                                                 [1], out)]))
        check_masks(processor.rows, {0: (constraints["copy"], out)}, width=1)
        with pytest.raises(ValueError, match="malformed"):
            processor.validate_params(Params({XARG: "{"}))
    finally:
        monkeypatch.undo()
        vars(module).pop("EvidenceConstraintProcessor")  # a reload keeps old names
        importlib.reload(module)  # as it was: over the real vLLM, or none


# --- the adapter, against the real vLLM (skipped where vLLM is not installed) -------------

def vllm_processor() -> Any:
    pytest.importorskip("vllm", reason="vLLM is not installed here (multi-GB CUDA wheels, not a "
                        "dependency): the adapter's tests run on a machine where it is")
    from service.vllm_plugin.processor import EvidenceConstraintProcessor

    return EvidenceConstraintProcessor


def test_the_adapter_is_a_vllm_logits_processor(constraints: dict) -> None:
    processor_class = vllm_processor()
    from vllm import SamplingParams as VllmParams
    from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor, MoveDirectionality

    assert issubclass(processor_class, LogitsProcessor)
    processor = processor_class(None, torch.device("cpu"), False)
    assert processor.is_argmax_invariant() is False
    copy, restate = constraints["copy"], constraints["restate"]
    outs: list[list[int]] = [[], []]
    processor.update_state(BatchUpdate(batch_size=2, removed=[], moved=[], added=[
        (0, VllmParams(extra_args=constraint_xargs(copy)), [1], outs[0]),
        (1, VllmParams(extra_args=constraint_xargs(restate)), [1], outs[1])]))
    processor.update_state(BatchUpdate(batch_size=2, removed=[], added=[],
                                       moved=[(0, 1, MoveDirectionality.SWAP)]))
    check_masks(processor.rows, {1: (copy, outs[0]), 0: (restate, outs[1])}, width=2)
    processor_class.validate_params(VllmParams(extra_args=constraint_xargs(copy)))
    with pytest.raises(ValueError, match="malformed"):
        processor_class.validate_params(VllmParams(extra_args={XARG: "{"}))


def test_vllm_generates_under_the_constraint(tiny_llama_dir: Path) -> None:
    """vLLM's engine with the processor loaded by name: a request held to one token gets it,
    a request without the argument is free."""
    processor_class = vllm_processor()
    if not torch.cuda.is_available():
        pytest.skip("vLLM's engine needs a GPU here")
    from vllm import LLM
    from vllm import SamplingParams as VllmParams

    assert processor_class.__module__ == "service.vllm_plugin.processor"
    # The class by name, as `vllm serve --logits-processors` passes it.
    name = "service.vllm_plugin.processor:EvidenceConstraintProcessor"
    llm = LLM(model=str(tiny_llama_dir), logits_processors=[name],
              gpu_memory_utilization=0.2, enforce_eager=True)
    free = llm.generate([{"prompt_token_ids": [5, 6, 7]}],
                        VllmParams(max_tokens=1, temperature=0))[0].outputs[0].token_ids
    held = 300 if free[0] != 300 else 301
    out = llm.generate([{"prompt_token_ids": [5, 6, 7]}], VllmParams(
        max_tokens=1, temperature=0, extra_args=constraint_xargs(forcing(held))))
    assert list(out[0].outputs[0].token_ids) == [held]
