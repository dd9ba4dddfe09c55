"""The vLLM logits processor that applies this service's evidence constraint per request.

    vllm serve MODEL \
        --logits-processors service.vllm_plugin.processor:EvidenceConstraintProcessor

Follows the interface of vLLM's v1 sampler, `vllm.v1.sample.logits_processor.LogitsProcessor`,
as vLLM 0.20 to 0.31 define it (read in vllm/v1/sample/logits_processor/interface.py,
`__init__.py`, `builtin.py` and `state.py`, and the API reference of v0.20.2 and v0.29.0):
`__init__(vllm_config, device, is_pin_memory)`, `validate_params(sampling_params)` (a
classmethod, run at admission: a ValueError there is the client's 400), `is_argmax_invariant()`,
`update_state(batch_update)`, `apply(logits)`, and, in later releases,
`needs_output_token_ids()` (True: under async scheduling vLLM otherwise leaves placeholders in
the output ids a constraint reads). vLLM 0.32's Model Runner V2 has another interface
(`vllm.v1.worker.gpu.sample.logits_processor`) and refuses v1 processors: start 0.32 with
`VLLM_USE_V2_MODEL_RUNNER=0`. Custom processors are off under speculative decoding in the v1
runner.

The class is defined only where vLLM imports; the logic (`rows`, `wire`) is tested without it.
"""

from __future__ import annotations

from typing import Any

from service.vllm_plugin.rows import ConstraintRows
from service.vllm_plugin.wire import constraint_from_xargs

try:
    from vllm.v1.sample.logits_processor import LogitsProcessor
except ImportError:  # no vLLM here: only the logic is importable
    LogitsProcessor = None

if LogitsProcessor is not None:

    class EvidenceConstraintProcessor(LogitsProcessor):
        """Masks each constrained request's row to what its evidence allows next."""

        def __init__(self, vllm_config: Any, device: Any, is_pin_memory: bool) -> None:
            self.rows = ConstraintRows()

        @classmethod
        def validate_params(cls, sampling_params: Any) -> None:
            """A malformed constraint is refused at admission (ValueError: a 400)."""
            constraint_from_xargs(getattr(sampling_params, "extra_args", None))

        def is_argmax_invariant(self) -> bool:
            """Masking changes the greedy choice."""
            return False

        def needs_output_token_ids(self) -> bool:
            """The constraint reads the tokens generated so far."""
            return True

        def update_state(self, batch_update: Any) -> None:
            """Follow the batch's make-up."""
            self.rows.update(batch_update)

        def apply(self, logits: Any) -> Any:
            """Mask the constrained rows in place."""
            return self.rows.apply(logits)
