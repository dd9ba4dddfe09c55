"""The default cognitive core: what `make serve` builds when `artifacts/core/default` is missing.

The setting is the best of those measured in docs/core-report.md that two CPU cores build in
under 30 minutes: the cut, refit and trim, then healing with a reading retain term. The build is
cached: a core whose report records the same recipe and base is left alone; a half-written one
never takes the core's place (it is built beside it, then renamed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pruning.pipeline import PruneConfig
from pruning.report import write_core_report
from pruning.runs import RunSettings, prune_job
from pruning.scoring import ContrastiveConfig

DEFAULT_WIDTH = 1335  # of SmolLM2-135M's 1536 neurons per MLP (13% cut): with the trimmed
# vocabulary, 79.98% of the base's parameters
DEFAULT_VOCAB = 20480  # of 49152 tokens
DEFAULT_CALIBRATION = 64  # examples per calibration set
DEFAULT_PROSE_CHARS = 200_000  # general prose the refit reproduces beside the retain sets
# Each MLP refitted to the base's stream after its layer, not to the base MLP on drifted
# inputs: after the same healing, addition 1.23x of the "mlp" target's core's, paired (1.15x of
# the base's), reading, perplexity and the rest within noise (docs/core-report.md, 2026-12-02).
DEFAULT_REFIT_TARGET = "residual"
# The keep-set by prose use (pruning.vocab.USE_RULES): names rare in prose are re-split, so the
# trim alone forgets more than the merge rank did, reads better and costs less perplexity
# (docs/core-report.md, "A vocabulary for prose"). Against 16384 tokens at width 1367, 20480 at
# 1335 reads prose 8-12% better, forgets as much or more and adds as well (docs/core-report.md,
# fourth session); 24576 at 1290 reads prose better still but adds at 0.88x of the base's.
DEFAULT_VOCAB_SELECTION = "prose"
# Last, every parameter distilled from the base: 68 steps of 16 prose windows or 16 retain
# examples (every set in each batch), half and half, at AdamW lr 3e-5. Batches of 4 were a
# lottery between seeds (open-book 0.74-0.94x, addition 0.61-1.09x of the base's after 16
# steps); 16 examples a step for 68 steps read and add like the base (docs/core-report.md).
DEFAULT_HEAL_STEPS = 68
DEFAULT_HEAL_BATCH = 16
DEFAULT_HEAL_LR = 3e-5
# The base's everyday samples (pruning/everyday.py) in the cut (a retain set, half the refit's
# prose) and in half the healing's prose windows: the cut and refit otherwise see docstrings only.
DEFAULT_EVERYDAY_PROSE = True
DEFAULT_HEAL_EVERYDAY = 0.5


def default_config(width: int = DEFAULT_WIDTH) -> PruneConfig:
    """The default core's recipe: contrastive neurons (the most-protective retain set decides,
    arithmetic and everyday prose protected by sets of their own), least-squares refit on
    retain sets and prose to the base's residual stream, vocabulary trimmed to the prose
    keep-set, then healing from the base on prose (half of it everyday) and the retain sets'
    answers."""
    return PruneConfig(method="contrastive", width=width, vocab_size=DEFAULT_VOCAB,
                       vocab_selection=DEFAULT_VOCAB_SELECTION,
                       refit_prose_chars=DEFAULT_PROSE_CHARS,
                       refit_target=DEFAULT_REFIT_TARGET,
                       everyday_prose=DEFAULT_EVERYDAY_PROSE,
                       heal_reading_steps=DEFAULT_HEAL_STEPS,
                       heal_reading_batch=DEFAULT_HEAL_BATCH,
                       heal_reading_lr=DEFAULT_HEAL_LR, heal_reading_share=0.5,
                       heal_reading_everyday=DEFAULT_HEAL_EVERYDAY,
                       contrastive=ContrastiveConfig(retain_reduce="max"))


def _plain(cfg: PruneConfig) -> dict:
    return json.loads(json.dumps(cfg.as_dict()))


def _filled(recorded: dict, defaults: dict) -> dict:
    """`recorded` with every field it lacks at its default: an option added to `PruneConfig`
    after a core was built did not exist then, so the core was built as its default does."""
    return {key: (_filled(recorded.get(key, {}), value) if isinstance(value, dict)
                  else recorded.get(key, value)) for key, value in defaults.items()} | {
        key: value for key, value in recorded.items() if key not in defaults}


def is_current(out: Path, base: Path, cfg: PruneConfig) -> bool:
    """True when `out` holds a core built from `base` with exactly `cfg`."""
    report = out / "core_report.json"
    if not (out / "config.json").is_file() or not report.is_file():
        return False
    recorded = json.loads(report.read_text())
    config = recorded.get("config")
    return isinstance(config, dict) and _filled(
        config, _plain(PruneConfig(method=cfg.method))) == _plain(cfg) and recorded.get(
        "base") == str(base)


def build_default_core(settings: RunSettings, out: Path, *, force: bool = False) -> bool:
    """Build the default core into `out` unless it is current; True when it was built."""
    cfg = default_config()
    if not force and is_current(out, settings.base, cfg):
        return False
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    report = {**prune_job(settings, cfg, partial), "out": str(out)}
    if "suites" in report:  # evaluated: the Markdown view names the final directory too
        write_core_report(partial, report)
    else:
        (partial / "core_report.json").write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return True
