"""The evidence constraint carried to a vLLM upstream: a logits processor loaded by the vLLM
server, switched on per request by what this service sends in `vllm_xargs`.

- `wire`: the constraint as one `vllm_xargs` entry (what `service.upstream` sends) and back;
- `rows`: the per-request state of vLLM's persistent batch (added, removed, moved) and the mask
  on each constrained row, by the rule of `service.evidence_constraints` (the in-process engine's);
- `processor`: the vLLM class, defined only where vLLM imports:
  `vllm serve MODEL --logits-processors service.vllm_plugin.processor:EvidenceConstraintProcessor`.

Nothing here imports FastAPI, transformers or the engine: the vLLM server needs this checkout on
its PYTHONPATH (or `pip install --no-deps`), and its own torch. docs/deploy.md has the commands.
"""
