"""The evaluation harness: memorization against reading and reasoning, on any checkpoint.

`data` builds the item sets (also the pruning calibration sets), `suites` runs them through an
`lm.EvalModel`, `cost` measures size and speed, `report` writes eval.json, eval.md and plots;
`run.evaluate_checkpoint` ties them together for `cogcore eval`.
"""
