"""Where parameters cost prose least: query heads against MLP neurons, at equal parameters.

A probe for issue 15's perplexity line, before any pipeline work: the base's MLP width has been
the only source of parameters besides the vocabulary, and the cut's share of the perplexity
loss grows fast as it narrows. SmolLM2-135M has 9 query heads a layer in 3 key-value groups;
dropping one query head per group (9 -> 6, `head_dim` 64 kept in the config, so stock
transformers still loads it) frees exactly as many parameters as 128 MLP neurons a layer
(2 x 3 x 64 x 576 = 128 x 3 x 576). Each arm scores its units by the same measure on the same
prose, the mean norm of what the unit writes to the residual stream (a head: W_o's columns
times its output; a neuron: its activation times its down-projection column), drops the
weakest, and is measured on the three perplexity texts at the full evaluation's sizes, paired
window by window with the base's full run. No refit, no healing: what each cut costs raw.
The calibration prose (`pruning.corpus.general_corpus` and the base's everyday samples,
`pruning.everyday`) never contains the perplexity texts. Usage:

    python benchmarks/attention_probe.py --eval docs/pruning/core-v2-eval/eval.json \
        --eval-extra docs/pruning/s9/base-ppl-third.json --out docs/pruning/s14/attention-probe

Writes OUT/attention-probe.{json,md} and OUT/<arm>.json (the partial runs, reused when present).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from evaluation.compare import PERPLEXITY, paired_ratios
from evaluation.partial import run_model, with_suites_of
from pruning.compact import decoder_layers

SUITES = ("perplexity", "perplexity_second", "perplexity_third")
FIGURES = tuple(label for label, _ in PERPLEXITY)
ARMS = ("heads", "neurons", "heads-random")
WINDOW = 128  # tokens per calibration window
PROSE_CHARS = 60_000  # of each calibration source


def calibration_windows(tokenizer, windows: int) -> torch.Tensor:  # noqa: ANN001
    """`windows` windows of `WINDOW` tokens, half general prose, half everyday prose."""
    from pruning.corpus import general_corpus
    from pruning.everyday import everyday_samples
    from pruning.heal import text_windows

    return torch.tensor([row for texts in (general_corpus(PROSE_CHARS), everyday_samples())
                         for row in text_windows(tokenizer, texts, WINDOW)[: windows // 2]])


@torch.no_grad()
def write_norms(model, batches: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:  # noqa: ANN001
    """Per layer: each query head's and each MLP neuron's mean output norm on `batches`."""
    layers = decoder_layers(model)
    head_dim = model.config.head_dim
    heads = [torch.zeros(model.config.num_attention_heads) for _ in layers]
    neurons = [torch.zeros(model.config.intermediate_size) for _ in layers]
    hooks = []
    for i, layer in enumerate(layers):
        w_o = layer.self_attn.o_proj.weight  # (hidden, heads * head_dim)
        w_down_norm = layer.mlp.down_proj.weight.norm(dim=0)  # (intermediate,)

        def on_o(_mod, args, i=i, w_o=w_o):  # noqa: ANN001, ANN202
            x = args[0].reshape(-1, w_o.shape[1] // head_dim, head_dim)  # (tokens, heads, d)
            for h in range(x.shape[1]):
                part = x[:, h] @ w_o[:, h * head_dim : (h + 1) * head_dim].T
                heads[i][h] += part.norm(dim=-1).sum()

        def on_down(_mod, args, i=i, w=w_down_norm):  # noqa: ANN001, ANN202
            neurons[i] += args[0].reshape(-1, w.shape[0]).abs().sum(0) * w

        hooks += [layer.self_attn.o_proj.register_forward_pre_hook(on_o),
                  layer.mlp.down_proj.register_forward_pre_hook(on_down)]
    try:
        for start in range(0, len(batches), 8):
            model(batches[start : start + 8])
    finally:
        for hook in hooks:
            hook.remove()
    return heads, neurons


@torch.no_grad()
def drop_heads(model, drop: list[list[int]]) -> None:  # noqa: ANN001
    """Remove the query heads `drop[layer]` (the same number from every key-value group)."""
    cfg = model.config
    d, per_group = cfg.head_dim, cfg.num_attention_heads // cfg.num_key_value_heads
    for layer, gone in zip(decoder_layers(model), drop, strict=True):
        kept = [h for h in range(cfg.num_attention_heads) if h not in gone]
        groups = [sum(1 for h in kept if h // per_group == g)
                  for g in range(cfg.num_key_value_heads)]
        if len(set(groups)) != 1:
            raise ValueError(f"uneven key-value groups after the cut: {groups}")
        index = torch.cat([torch.arange(h * d, (h + 1) * d) for h in kept])
        attn = layer.self_attn
        attn.q_proj.weight = torch.nn.Parameter(attn.q_proj.weight[index].clone())
        if attn.q_proj.bias is not None:
            attn.q_proj.bias = torch.nn.Parameter(attn.q_proj.bias[index].clone())
        attn.q_proj.out_features = len(index)
        attn.o_proj.weight = torch.nn.Parameter(attn.o_proj.weight[:, index].clone())
        attn.o_proj.in_features = len(index)
        attn.num_key_value_groups = groups[0]
    cfg.num_attention_heads -= len(drop[0])


def weakest_per_group(scores: torch.Tensor, groups: int) -> list[int]:
    """The lowest-scoring head of each key-value group."""
    per = len(scores) // groups
    return [g * per + int(scores[g * per : (g + 1) * per].argmin()) for g in range(groups)]


def cut(arm: str, base: Path, windows: int) -> tuple:
    """The base with `arm`'s cut applied, in memory, and its tokenizer."""
    from cogcore.checkpoint import load_causal_lm
    from pruning.compact import compact_mlp, keep_top

    model, tokenizer = load_causal_lm(base)
    groups = model.config.num_key_value_heads
    if arm == "heads-random":
        gen = torch.Generator().manual_seed(0)
        scores = [torch.rand(model.config.num_attention_heads, generator=gen)
                  for _ in decoder_layers(model)]
        drop_heads(model, [weakest_per_group(s, groups) for s in scores])
        return model, tokenizer
    heads, neurons = write_norms(model, calibration_windows(tokenizer, windows))
    if arm == "heads":
        drop_heads(model, [weakest_per_group(s, groups) for s in heads])
    else:
        per_head = 2 * model.config.head_dim * model.config.hidden_size
        width = model.config.intermediate_size - groups * per_head // (
            3 * model.config.hidden_size)
        compact_mlp(model, keep_top(neurons, width))
    return model, tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, required=True, help="the base's full eval.json")
    parser.add_argument("--eval-extra", type=Path, action="append", default=[],
                        help="a partial run of the base on suites its full run lacks")
    parser.add_argument("--windows", type=int, default=64, help="calibration windows")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.manual_seed(0)
    full = with_suites_of(json.loads(args.eval.read_text()), args.eval_extra)
    base = Path(full["model"])
    args.out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for arm in ARMS:
        path = args.out / f"{arm}.json"
        result = json.loads(path.read_text()) if path.is_file() else {}
        if (not set(SUITES) <= set(result.get("suites", ())) or "params" not in result
                or result.get("windows") != args.windows):  # missing, cut short or stale
            model, tokenizer = cut(arm, base, args.windows)
            params = sum(p.numel() for p in model.parameters())
            result = run_model(model, tokenizer, f"{base} cut by {arm}", path, SUITES)
            result.update(params=params, windows=args.windows)
            path.write_text(json.dumps(result, indent=2) + "\n")
        ratios = paired_ratios(full, result)
        rows[arm] = {"params": result["params"], **{f: ratios[f] for f in FIGURES}}
    command = "python benchmarks/attention_probe.py " + " ".join(
        [f"--eval {args.eval}", *(f"--eval-extra {p}" for p in args.eval_extra),
         f"--windows {args.windows}", f"--out {args.out}"])
    (args.out / "attention-probe.json").write_text(json.dumps(
        {"command": command, "rows": rows}, indent=2) + "\n")
    lines = ["# Query heads against MLP neurons at equal parameters (no refit, no healing)", "",
             f"`{command}`", "", "| arm | parameters | " + " | ".join(FIGURES) + " |",
             "|" + " --- |" * (len(FIGURES) + 2)]
    for arm, row in rows.items():
        cells = [f"{row[f]['ratio']:.3f} [{row[f]['low']:.2f}, {row[f]['high']:.2f}]"
                 for f in FIGURES]
        lines.append(f"| {arm} | {row['params'] / 1e6:.2f}M | " + " | ".join(cells) + " |")
    (args.out / "attention-probe.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
