"""Healing with a reading retain term (`pruning.reading_heal`) applied to a core already cut,
refitted and trimmed, as `cogcore prune --heal-reading-steps N` runs it last in the pipeline.

The pipeline is deterministic, so the default core (`artifacts/core/default`) plus this stage is
what `cogcore prune` with the default recipe and `--heal-reading-steps N` builds, without
spending the half hour of scoring and refit again. Usage:

    python benchmarks/reading_heal.py --core artifacts/core/default --steps 120 --share 0.5 \
        --lr 5e-5 --seconds 540 --out artifacts/tmp/heal-reading

Writes OUT (a checkpoint) with core_report.json: the core's recorded recipe with the healing's
settings and the steps actually taken (`--seconds` may stop it first), its cost and losses.
Measure it with `python -m evaluation.partial OUT RESULT.json --suites ... --against EVAL.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--core", type=Path, required=True, help="a core checkpoint")
    parser.add_argument("--base", type=Path, default=Path("artifacts/base/smollm2-135m-instruct"))
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--share", type=float, default=0.5, help="steps on retain answers")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--calibration", type=int, default=64, help="examples per retain set")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import torch

    from cogcore.checkpoint import load_causal_lm, save_checkpoint
    from pruning.calibration import calibration_sets
    from pruning.kfac import KfacConfig
    from pruning.pipeline import PruneConfig
    from pruning.reading_heal import heal_with_reading
    from pruning.scoring import ContrastiveConfig

    torch.manual_seed(0)
    recorded = json.loads((args.core / "core_report.json").read_text())["config"]
    contrastive = ContrastiveConfig(**recorded.pop("contrastive"))
    kfac = recorded.pop("kfac")
    kfac = KfacConfig(**{**kfac, "projections": tuple(kfac["projections"])})
    cfg = replace(PruneConfig(**recorded, contrastive=contrastive, kfac=kfac),
                  heal_reading_steps=args.steps,
                  heal_reading_lr=args.lr, heal_reading_share=args.share)
    teacher, tokenizer = load_causal_lm(args.base)
    core, trimmed = load_causal_lm(args.core)
    data = calibration_sets(tokenizer, args.calibration)
    started = time.perf_counter()
    details = heal_with_reading(core, teacher, tokenizer, trimmed, data, cfg,
                                max_seconds=args.seconds)
    seconds = time.perf_counter() - started
    cfg = replace(cfg, heal_reading_steps=details["heal_reading_steps_taken"])
    save_checkpoint(core, trimmed, args.out)
    report = {"command": "python " + " ".join(sys.argv), "base": str(args.base),
              "started_from": str(args.core), "config": cfg.as_dict(),
              "seconds": {"heal_reading": seconds}, "threads": torch.get_num_threads(),
              "details": details}
    (args.out / "core_report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
