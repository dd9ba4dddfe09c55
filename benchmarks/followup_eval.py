"""Follow-up questions in a chat, measured through HTTP against a running service.

Usage: .venv/bin/python benchmarks/followup_eval.py [--model DIR] [--kb DIR] [--n 30]
           [--out DIR]

Conversations over the default knowledge base's entities, each turn sent with the whole chat
so far (the service's own earlier replies included), as a chat client does:
- pronoun: a question about an entity, then one about another of its facts ("its", "it",
  "there", "that country"), and a three-turn chain of such follow-ups;
- ellipsis: a question, then the same question about another entity ("What about Peru?").
The set is split in two halves with disjoint entities and disjoint phrasings: `tune` (the
phrasings the rules were written against) and `heldout` (other phrasings, never tuned on; its
figures are the ones that count). The last turn is scored: correct (the answer holds the fact),
cited (the answering entity's document is a source), citing another entity, abstained.
The service runs twice on one copy of the knowledge base, with follow-up resolution on and off
(`COGCORE_RESOLVE_FOLLOW_UPS`), the control for the same questions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
from facts_eval import KEY, MAX_TOKENS, bounded, rate

from cogcore.facts import Entity, Fact, load_entities, split_of
from cogcore.paths import artifacts_dir, default_kb_dir
from loadtest.server import running_service
from service.settings import default_model_dir

SEED = 11
KIND_WORD = {"country": "country", "element": "element", "us_state": "state"}
TEMPLATES = {
    "tune": {"pronoun": ("What is its {p}?", "And its {p}?", "Which {p} does it have?"),
             "ellipsis": ("What about {e}?", "And {e}?")},
    "heldout": {"pronoun": ("Do you also know its {p}?", "Tell me the {p} of that {k}.",
                            "OK, and what's the {p} there?", "What {p} does this {k} have?"),
                "ellipsis": ("How about {e}?", "And for {e}?", "Same question for {e}.")},
}


@dataclass(frozen=True)
class Conversation:
    """User turns to send one by one, and the fact the last one asks for."""

    kind: str
    split: str
    turns: tuple[str, ...]
    expected: Fact


def _facts(entity: Entity) -> list[Fact]:
    return [f for f in entity.facts if f.askable and f.relation.noun]


def conversations(split: str, n: int, seed: int = SEED) -> list[Conversation]:
    """`n` conversations of each kind (pronoun, chain, ellipsis) over `split`'s entities."""
    rng = random.Random(f"{seed}:{split}")
    entities = [e for e in load_entities() if len(_facts(e)) >= 2
                and split_of(e.id, "followups", {"tune": 0.5, "heldout": 0.5}) == split]
    pronoun, ellipsis = TEMPLATES[split]["pronoun"], TEMPLATES[split]["ellipsis"]

    def follow(fact: Fact) -> str:
        return rng.choice(pronoun).format(p=fact.relation.noun, k=KIND_WORD[fact.kind])

    out = []
    for _ in range(n):
        entity = rng.choice(entities)
        first, second = rng.sample(_facts(entity), 2)
        out.append(Conversation("pronoun", split, (first.question, follow(second)), second))
        entity = rng.choice([e for e in entities if len(_facts(e)) >= 3])
        first, second, third = rng.sample(_facts(entity), 3)
        out.append(Conversation("chain", split,
                                (first.question, follow(second), follow(third)), third))
        entity = rng.choice(entities)
        asked = rng.choice(_facts(entity))
        others = [e for e in entities if e.kind == entity.kind and e.id != entity.id
                  and any(f.relation == asked.relation for f in e.facts)]
        target = next(f for f in rng.choice(others).facts if f.relation == asked.relation)
        out.append(Conversation("ellipsis", split, (asked.question, rng.choice(ellipsis).format(
            e=target.entity)), target))
    return out


async def talk(client: httpx.AsyncClient, model: str, conv: Conversation,
               max_tokens: int) -> dict:
    """Send the turns one by one with the chat so far; the last reply and its grounding."""
    messages: list[dict[str, str]] = []
    for turn in conv.turns:
        messages.append({"role": "user", "content": turn})
        body = {"model": model, "messages": messages, "max_tokens": max_tokens,
                "temperature": 0}
        response = await client.post("/v1/chat/completions", json=body)
        response.raise_for_status()
        data = response.json()
        messages.append({"role": "assistant",
                         "content": data["choices"][0]["message"]["content"]})
    info = data["cogcore"]
    return {"turns": list(conv.turns), "kind": conv.kind, "expected": conv.expected.answer,
            "entity": conv.expected.entity_id, "answer": messages[-1]["content"],
            "query": info.get("query"), "abstained": info["abstained"],
            "sources": [s["id"] for s in info["sources"]]}


def score(rows: list[dict], facts: list[Fact]) -> dict:
    """The rates of one group of conversations."""
    correct = [f.accepts(r["answer"]) and not r["abstained"] for r, f in zip(rows, facts,
                                                                           strict=True)]
    cited = [r["entity"] in r["sources"] for r in rows]
    return {
        "correct_and_cited": rate([c and s for c, s in zip(correct, cited, strict=True)]),
        "correct": rate(correct),
        "cites_another_entity": rate([any(s != r["entity"] for s in r["sources"])
                                      for r in rows]),
        "wrong_with_citation": rate([not c and bool(r["sources"]) and not r["abstained"]
                                     for c, r in zip(correct, rows, strict=True)]),
        "abstained": rate([r["abstained"] for r in rows]),
    }


async def measure(url: str, model: str, convs: list[Conversation], max_tokens: int) -> dict:
    """Every conversation, CONCURRENCY at a time; rates per split and kind, and the misses."""
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"},
                                 timeout=600) as client:
        rows = await bounded(talk(client, model, c, max_tokens) for c in convs)
    report: dict = {}
    for split in ("tune", "heldout"):
        picked = [(r, c) for r, c in zip(rows, convs, strict=True) if c.split == split]
        groups = {"all": picked, **{k: [(r, c) for r, c in picked if c.kind == k]
                                    for k in ("pronoun", "chain", "ellipsis")}}
        report[split] = {name: score([r for r, _ in g], [c.expected for _, c in g])
                         for name, g in groups.items()}
    report["misses"] = [r for r, c in zip(rows, convs, strict=True)
                        if not (c.expected.accepts(r["answer"]) and r["entity"] in r["sources"])]
    return report


def main() -> None:
    """Copy the knowledge base, serve it with resolution on and off, measure, print, save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=default_model_dir())
    parser.add_argument("--kb", type=Path, default=default_kb_dir())
    parser.add_argument("--n", type=int, default=30, help="conversations per kind and half")
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=artifacts_dir() / "reports" / "followups")
    args = parser.parse_args()
    convs = [c for split in ("tune", "heldout") for c in conversations(split, args.n, args.seed)]
    report: dict = {"model": str(args.model), "n_per_kind": args.n, "seed": args.seed}
    with tempfile.TemporaryDirectory() as scratch:
        kb = Path(scratch) / "kb"
        shutil.copytree(args.kb, kb, ignore=shutil.ignore_patterns("writer.lock"))
        for name, resolve in (("resolved", "true"), ("control: last turn only", "false")):
            env = {"COGCORE_ADMIN_KEYS": KEY, "COGCORE_KB_DIR": str(kb),
                   "COGCORE_RESOLVE_FOLLOW_UPS": resolve}
            with running_service(args.model, env) as (url, model):
                report[name] = asyncio.run(measure(url, model, convs, args.max_tokens))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "followups.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v if not isinstance(v, dict) else
                      {s: v[s]["all"] for s in ("tune", "heldout")} for k, v in report.items()},
                     indent=2))


if __name__ == "__main__":
    main()
