"""Probe for issue 15's forgetting edit (a): project entity writes out of the early MLPs.

Closed-book recall on SmolLM2 is read out of what the early MLPs write at the subject's tokens,
and reading does not need those writes. A weight edit has no subject position at run time, so it
can only remove *directions*: per layer, the directions v maximising vᵀC_F v / vᵀC_R v, where
C_F is the second moment (about the retain mean) of the MLP outputs at entity-name tokens of
closed-book calibration prompts and C_R the covariance at every other token of retain text.
`down_proj` is edited so that the output's component in their span is replaced by its retain
mean (orthogonal projection; the massive "attention sink" outputs at the first token are kept
out of the span, since touching them breaks every prompt).

Measured by teacher forcing on the calibration split's second half of entities (the first half
fits the directions): exact match of the answer tokens and the mean log-probability of its first
token, for closed-book, open-book, counterfactual and fictional items, and the NLL of general
prose. Usage:

    .venv/bin/python benchmarks/forget_directions.py 1-14:16 1-14:256 \
        --out docs/pruning/forget-directions.json
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cogcore.facts import load_entities, split_of
from cogcore.paths import default_base_dir
from evaluation import data
from pruning.calibration import general_paragraphs
from pruning.compact import mlp_modules

BATCH = 16
SINK_RATIO = 8.0  # an MLP output this many times the median norm is an attention-sink write


def half(item: object) -> str:
    return split_of(item.expected.entity_id, "forget", {"fit": 0.5, "select": 0.5})


class Probe:
    def __init__(self, base: Path, layers: range, per_set: int) -> None:
        self.tok = AutoTokenizer.from_pretrained(base)
        self.model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
        self.mlps = mlp_modules(self.model)
        self.layers = list(layers)
        self.dim = self.model.config.hidden_size
        names = sorted({e.name for e in load_entities()}, key=len, reverse=True)
        self.names = re.compile("|".join(re.escape(n) for n in names))
        closed = data.closed_book_items("calibration")
        reading = {k: data.reading_items(k, "calibration") for k in data.READING_KINDS}
        self.fit_forget = [i.prompt.render(self.tok) for i in closed if half(i) == "fit"][:per_set]
        self.fit_retain = (
            [i.prompt.render(self.tok) + i.target for items in reading.values()
             for i in [x for x in items if half(x) == "fit"][: per_set // 2]]
            + [i.context + i.answer for t in data.REASONING_TASKS
               for i in data.reasoning_items(t, "calibration", 6)]
            + general_paragraphs(per_set // 2))
        self.select = {"closed_book": self._answers([i for i in closed if half(i) == "select"]
                                                    [:per_set]),
                       **{k: self._answers([i for i in v if half(i) == "select"][:per_set // 2])
                          for k, v in reading.items()}}
        self.prose = general_paragraphs(per_set)[per_set // 2:]
        self.original = {i: self.mlps[i].down_proj.weight.data.clone() for i in self.layers}

    def _answers(self, items: list) -> list[tuple[list[int], list[int]]]:
        rows = []
        for item in items:
            prompt, target = item.prompt.render(self.tok), item.target
            at = target.find(item.answer)
            if at < 0:
                continue
            head = prompt + target[:at].rstrip(" ")
            ids = self.tok(head, add_special_tokens=False)["input_ids"]
            answer = self.tok(head + (" " if at and target[at - 1] == " " else "") + item.answer,
                              add_special_tokens=False)["input_ids"][len(ids):]
            rows.append((ids, answer))
        return sorted(rows, key=lambda r: len(r[0]) + len(r[1]))

    def _entity_mask(self, text: str) -> tuple[list[int], list[bool]]:
        enc = self.tok(text, return_offsets_mapping=True, add_special_tokens=False)
        spans = [m.span() for m in self.names.finditer(text)]
        return enc["input_ids"], [any(s < e2 and s2 < e for s2, e2 in spans)
                                  for s, e in enc["offset_mapping"]]

    @torch.no_grad()
    def moments(self, texts: list[str], entity: bool) -> dict[int, list]:
        """Per layer: count, sum and outer-product sum of MLP outputs at the chosen tokens,
        and the outputs at attention-sink positions (to keep out of the edit)."""
        acc = {i: [0, torch.zeros(self.dim, dtype=torch.float64),
                   torch.zeros(self.dim, self.dim, dtype=torch.float64), []] for i in self.layers}
        chosen: list[torch.Tensor] = []

        def hook(_m: object, _a: object, out: torch.Tensor, i: int) -> None:
            h = out[chosen[0]].double()
            norms = h.norm(dim=-1)
            sink = norms > SINK_RATIO * norms.median()
            acc[i][3].append(h[sink])
            h = h[~sink]
            acc[i][0] += h.shape[0]
            acc[i][1] += h.sum(0)
            acc[i][2] += h.T @ h

        hooks = [self.mlps[i].register_forward_hook(lambda m, a, o, i=i: hook(m, a, o, i))
                 for i in self.layers]
        encoded = sorted((self._entity_mask(t) for t in texts), key=lambda e: len(e[0]))
        for start in range(0, len(encoded), BATCH):
            chunk = encoded[start:start + BATCH]
            width = min(384, max(len(ids) for ids, _ in chunk))
            ids = torch.zeros(len(chunk), width, dtype=torch.long)
            attention = torch.zeros_like(ids)
            mask = torch.zeros(len(chunk), width, dtype=torch.bool)
            for row, (tokens, ent) in enumerate(chunk):
                n = min(len(tokens), width)
                ids[row, :n], attention[row, :n] = torch.tensor(tokens[:n]), 1
                flags = torch.tensor(ent[:n])
                mask[row, :n] = flags if entity else ~flags
            chosen[:] = [mask]
            self.model(input_ids=ids, attention_mask=attention)
        for handle in hooks:
            handle.remove()
        return acc

    def edit(self, forget: dict, retain: dict, layers: range, k: int, ridge: float) -> None:
        """Restore every layer, then project the top-k directions out of `layers`."""
        eye = torch.eye(self.dim, dtype=torch.float64)
        for i in self.layers:
            self.mlps[i].down_proj.weight.data.copy_(self.original[i])
            self.mlps[i].down_proj.bias = None
        for i in layers:
            nr, sr, qr, sinks_r = retain[i]
            nf, sf, qf, _ = forget[i]
            mu_r, mu_f = sr / nr, sf / nf
            c_r = qr / nr - torch.outer(mu_r, mu_r)
            c_f = (qf / nf - torch.outer(mu_f, mu_r) - torch.outer(mu_r, mu_f)
                   + torch.outer(mu_r, mu_r))
            sinks = torch.cat(sinks_r) if sinks_r else torch.zeros(0, self.dim)
            basis = eye
            if len(sinks):
                u, s, _ = torch.linalg.svd(sinks.T.double(), full_matrices=False)
                sink = u[:, : int((s > 0.05 * s[0]).sum())]
                basis = torch.linalg.svd(eye - sink @ sink.T)[0][:, : self.dim - sink.shape[1]]
            c_r, c_f = basis.T @ c_r @ basis, basis.T @ c_f @ basis
            c_r += ridge * torch.linalg.eigvalsh(c_r).median() * torch.eye(len(c_r),
                                                                           dtype=torch.float64)
            inv = torch.linalg.inv(torch.linalg.cholesky(c_r))
            _, vectors = torch.linalg.eigh(inv @ c_f @ inv.T)
            span = torch.linalg.qr(basis @ (inv.T @ vectors[:, -k:]))[0]
            project = span @ span.T
            down = self.mlps[i].down_proj
            down.weight.data.copy_(((eye - project) @ self.original[i].double()).float())
            down.bias = torch.nn.Parameter((project @ mu_r).float())

    @torch.no_grad()
    def measure(self) -> dict[str, float]:
        figures: dict[str, float] = {}
        for name, rows in self.select.items():
            hits, first = 0, []
            for start in range(0, len(rows), BATCH):
                chunk = rows[start:start + BATCH]
                width = max(len(p) + len(a) for p, a in chunk)
                ids = torch.zeros(len(chunk), width, dtype=torch.long)
                attention = torch.zeros_like(ids)
                for row, (p, a) in enumerate(chunk):
                    ids[row, : len(p) + len(a)], attention[row, : len(p) + len(a)] = (
                        torch.tensor(p + a), 1)
                logits = self.model(input_ids=ids, attention_mask=attention).logits.float()
                logp = logits.log_softmax(-1)
                for row, (p, a) in enumerate(chunk):
                    guess = logits[row, len(p) - 1: len(p) + len(a) - 1].argmax(-1)
                    hits += bool((guess == torch.tensor(a)).all())
                    first.append(float(logp[row, len(p) - 1, a[0]]))
            figures[f"{name}_exact"] = round(hits / len(rows), 3)
            figures[f"{name}_first_logp"] = round(sum(first) / len(first), 3)
        total, count = 0.0, 0
        for text in self.prose:
            ids = torch.tensor([self.tok(text)["input_ids"][:256]])
            total += float(self.model(input_ids=ids, labels=ids).loss) * (ids.shape[1] - 1)
            count += ids.shape[1] - 1
        figures["prose_nll"] = round(total / count, 3)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("settings", nargs="+", help="LAYERS:K, e.g. 1-14:16")
    parser.add_argument("--base", type=Path, default=None)
    parser.add_argument("--per-set", type=int, default=96)
    parser.add_argument("--ridge", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    parsed = []
    for setting in args.settings:
        layers, _, k = setting.partition(":")
        first, _, last = layers.partition("-")
        parsed.append((setting, range(int(first), int(last or first) + 1), int(k)))
    probe = Probe(args.base or default_base_dir(), range(0, 1 + max(r[-1] for _, r, _ in parsed)),
                  args.per_set)
    start = time.perf_counter()
    forget, retain = probe.moments(probe.fit_forget, True), probe.moments(probe.fit_retain, False)
    print(f"moments in {time.perf_counter() - start:.0f} s", flush=True)
    runs: list[dict] = []
    record = {"command": "benchmarks/forget_directions.py " + " ".join(args.settings),
              "per_set": args.per_set, "ridge": args.ridge, "runs": runs}
    for setting, layers, k in [("base", range(0), 0), *parsed]:
        probe.edit(forget, retain, layers, k, args.ridge)
        runs.append({"setting": setting, **probe.measure()})
        print(runs[-1], flush=True)
        if args.out:  # after every setting: a stopped run keeps what it measured
            args.out.write_text(json.dumps(record, indent=2) + "\n")

if __name__ == "__main__":
    main()
