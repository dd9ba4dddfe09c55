"""Healing with a reading retain term (`pruning.reading_heal`) applied to a core already cut,
refitted and trimmed, as `cogcore prune --heal-reading-steps N` runs it last in the pipeline.

The pipeline is deterministic, so the default core (`artifacts/core/default`) plus this stage is
what `cogcore prune` with the default recipe and `--heal-reading-steps N` builds, without
spending the half hour of scoring and refit again. Usage:

    python benchmarks/reading_heal.py --core artifacts/core/default --steps 120 --share 0.5 \
        --lr 5e-5 --seconds 540 --out artifacts/tmp/heal-reading

Writes OUT (a checkpoint) with core_report.json: the core's recorded recipe with the healing's
settings and the steps actually taken (`--seconds` may stop it first), its cost and losses.
Measure it with `python -m evaluation.partial OUT RESULT.json --suites ... --against EVAL.json`
(one suite or a few per run), then pair every result with the full run's base and its first
compared core (the default core's recorded run) in one JSON report:

    python benchmarks/reading_heal.py report --eval docs/pruning/core-v2-eval/eval.json \
        --core OUT --out docs/pruning/heal-X.json RESULT.json [RESULT.json ...]

How often a core's reader replies end their turn (emit the end-of-turn token within the
evaluation's reader budget, greedy, the held-out open-book prompts), for several checkpoints:

    python benchmarks/reading_heal.py ends --n 100 --out docs/pruning/heal-ends.json CKPT...

Two healed cores item by item (each a `report` output or an evaluation.partial one; `--extra`
adds partial runs of the reference core on suites it lacks, such as a text measured later):

    python benchmarks/reading_heal.py pair --reference docs/pruning/s10/F-ev0.5-heal.json \
        --out docs/pruning/s11/H-vs-F.json docs/pruning/s11/H-heal.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path


def report_main(argv: list[str]) -> None:
    """The partial results of one healed core, merged and paired with the full run's base and
    default core: ratios with 95% intervals, the healing's recipe and cost beside them."""
    from evaluation.compare import paired_ratios
    from evaluation.partial import with_suites_of
    from evaluation.suites import merged_reasoning

    parser = argparse.ArgumentParser(prog="reading_heal.py report")
    parser.add_argument("results", type=Path, nargs="+", help="evaluation.partial outputs")
    parser.add_argument("--eval", type=Path, required=True, help="a full run's eval.json")
    parser.add_argument("--eval-extra", type=Path, action="append", default=[],
                        help="an evaluation.partial output of the same base on suites the full "
                        "run lacks, such as the held-out perplexity text (repeatable)")
    parser.add_argument("--core", type=Path, required=True, help="the healed checkpoint")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    full = with_suites_of(json.loads(args.eval.read_text()), args.eval_extra)
    default = {"model": full["compare"][0]["model"], "suites": full["compare"][0]["suites"]}
    merged: dict = {"model": str(args.core), "suites": {}, "seconds": {}}
    reasoning = []
    for path in args.results:
        part = json.loads(path.read_text())
        merged["suites"].update(part["suites"])
        merged["seconds"][path.name] = part["seconds"]
        reasoning += [part["suites"]["reasoning"]] if "reasoning" in part["suites"] else []
    if reasoning:  # each task may come from its own run
        merged["suites"]["reasoning"] = merged_reasoning(reasoning)
    healing = json.loads((args.core / "core_report.json").read_text())
    # The default core's figures on what was measured here (the headline over the same tasks).
    measured = {k: v for k, v in default["suites"].items() if k in merged["suites"]}
    if "reasoning" in measured:
        tasks = merged["suites"]["reasoning"]["headline_tasks"]
        measured["reasoning"] = {**measured["reasoning"], "headline_tasks": [
            t for t in measured["reasoning"]["headline_tasks"] if t in tasks]}
    out = {"command": "python " + " ".join(sys.argv), "core": str(args.core),
           "healing": {key: healing[key] for key in ("command", "config", "seconds", "details")},
           "against_base": paired_ratios(full, merged),
           "default_against_base": paired_ratios(full, {**default, "suites": measured}),
           "against_default": paired_ratios(default, merged), "evaluated": merged}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    for label, entry in out["against_base"].items():
        old, vs = out["default_against_base"].get(label), out["against_default"].get(label)
        if old is None or vs is None:  # a suite the default's full run lacks
            print(f"{label}: base {entry['base']:.3f}, healed {entry['model']:.3f}; healed / "
                  f"base {entry['ratio']:.3f} [{entry['low']:.2f}, {entry['high']:.2f}]")
            continue
        print(f"{label}: base {entry['base']:.3f}, default {old['model']:.3f}, healed "
              f"{entry['model']:.3f}; healed / base {entry['ratio']:.3f} "
              f"[{entry['low']:.2f}, {entry['high']:.2f}], default / base {old['ratio']:.3f}, "
              f"healed / default {vs['ratio']:.3f} [{vs['low']:.2f}, {vs['high']:.2f}]")


def _evaluated(path: Path) -> dict:
    """The evaluated figures of a `report` output, or an evaluation.partial output itself."""
    data = json.loads(path.read_text())
    return data.get("evaluated", data)


def pair_main(argv: list[str]) -> None:
    """One healed core's figures against another's, paired item by item, 95% intervals."""
    from evaluation.compare import paired_ratios
    from evaluation.partial import with_suites_of

    parser = argparse.ArgumentParser(prog="reading_heal.py pair")
    parser.add_argument("model", type=Path, help="a `report` or evaluation.partial output: the "
                        "core compared")
    parser.add_argument("--reference", type=Path, required=True,
                        help="a `report` or evaluation.partial output: the core it is compared "
                        "with")
    parser.add_argument("--extra", type=Path, action="append", default=[],
                        help="an evaluation.partial output of the reference core (repeatable)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    reference, model = (_evaluated(path) for path in (args.reference, args.model))
    reference = with_suites_of(reference, args.extra)
    ratios = paired_ratios(reference, model)
    out = {"command": "python " + " ".join(sys.argv), "reference": str(args.reference),
           "model": str(args.model), "ratios": ratios}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    for label, entry in ratios.items():
        print(f"{label}: {entry['base']:.3f} -> {entry['model']:.3f}; {entry['ratio']:.3f} "
              f"[{entry['low']:.2f}, {entry['high']:.2f}]")


def turn_length(new_tokens: list[int], end: int) -> int | None:
    """The tokens a reply takes up to and with its end-of-turn token; None if it never ends."""
    return new_tokens.index(end) + 1 if end in new_tokens else None


def ends_main(argv: list[str]) -> None:
    """Per checkpoint, the share of held-out open-book reader replies that end their turn
    within `READER_TOKENS` new tokens (greedy), and the mean count of new tokens."""
    import torch

    from cogcore.checkpoint import load_causal_lm
    from evaluation.data import reading_items
    from evaluation.generation import length_batches, pad_id_of, pad_left
    from evaluation.suites import READER_TOKENS

    parser = argparse.ArgumentParser(prog="reading_heal.py ends")
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--n", type=int, default=100, help="open-book prompts")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    out: dict = {"command": "python " + " ".join(sys.argv), "n": args.n,
                 "max_new_tokens": READER_TOKENS, "checkpoints": {}}
    for checkpoint in args.checkpoints:
        model, tokenizer = load_causal_lm(checkpoint)
        end, pad = tokenizer.eos_token_id, pad_id_of(tokenizer)
        prompts = [tokenizer(i.prompt.render(tokenizer), add_special_tokens=False)["input_ids"]
                   for i in reading_items("open_book")[: args.n]]
        lengths: list = []
        for batch in length_batches([len(p) for p in prompts], 32):
            ids, mask, _ = pad_left([prompts[i] for i in batch], pad)
            with torch.inference_mode():
                new = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                     max_new_tokens=READER_TOKENS, eos_token_id=end,
                                     pad_token_id=pad)[:, ids.shape[1]:]
            lengths += [turn_length(row, end) for row in new.tolist()]
        ended = sum(n is not None for n in lengths)
        lengths = [READER_TOKENS if n is None else n for n in lengths]
        out["checkpoints"][str(checkpoint)] = {"ended": ended / len(prompts),
                                               "mean_new_tokens": sum(lengths) / len(lengths)}
        print(checkpoint, out["checkpoints"][str(checkpoint)], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")


def main() -> None:
    subcommands = {"report": report_main, "pair": pair_main, "ends": ends_main}
    if sys.argv[1:2] and sys.argv[1] in subcommands:
        subcommands[sys.argv[1]](sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--core", type=Path, required=True, help="a core checkpoint")
    parser.add_argument("--base", type=Path, default=Path("artifacts/base/smollm2-135m-instruct"))
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--share", type=float, default=0.5, help="steps on retain answers")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch", type=int, default=4, help="prose windows or retain "
                        "examples per step")
    parser.add_argument("--everyday", type=float, default=0.0, help="share of prose windows "
                        "from everyday prose sampled from the base (pruning/everyday.py)")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--calibration", type=int, default=64, help="examples per retain set")
    parser.add_argument("--seed", type=int, default=None, help="the retain examples' order "
                        "(default: the core's recorded seed)")
    parser.add_argument("--no-end-turn", action="store_true",
                        help="score the reader answers without their end-of-turn token (the "
                             "first run's reading term)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import torch

    from cogcore.checkpoint import load_causal_lm, save_checkpoint
    from pruning.calibration import calibration_sets
    from pruning.kfac import KfacConfig
    from pruning.pipeline import PruneConfig
    from pruning.reading_heal import heal_with_reading
    from pruning.scoring import ContrastiveConfig

    recorded = json.loads((args.core / "core_report.json").read_text())["config"]
    if args.seed is not None:
        recorded["seed"] = args.seed
    torch.manual_seed(recorded.get("seed", 0))
    contrastive = ContrastiveConfig(**recorded.pop("contrastive"))
    kfac = recorded.pop("kfac")
    kfac = KfacConfig(**{**kfac, "projections": tuple(kfac["projections"])})
    cfg = replace(PruneConfig(**recorded, contrastive=contrastive, kfac=kfac),
                  heal_reading_steps=args.steps,
                  heal_reading_lr=args.lr, heal_reading_share=args.share,
                  heal_reading_batch=args.batch, heal_reading_everyday=args.everyday)
    teacher, tokenizer = load_causal_lm(args.base)
    core, trimmed = load_causal_lm(args.core)
    data = calibration_sets(tokenizer, args.calibration)
    started = time.perf_counter()
    details = heal_with_reading(core, teacher, tokenizer, trimmed, data, cfg,
                                max_seconds=args.seconds, end_turn=not args.no_end_turn)
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
