"""Facts from the store, measured through HTTP against a running service (docs/facts.md).

Usage: .venv/bin/python benchmarks/facts_eval.py [--model DIR] [--kb DIR] [--n 200] [--out DIR]

Starts `cogcore serve` on a copy of the knowledge base (the original is never written), then,
through the HTTP API only:
- routing: the route of every question of the routing set's never-tuned split;
- answers: questions of the KB question set's never-tuned split, answered with retrieval
  (`auto`) and closed-book (`never`) by the same model, with the answering document's citation;
- updates: invented entities added through POST /v1/documents, then asked about; real facts
  contradicted (original deleted, a changed copy added), then asked about;
- abstention: questions about invented entities the store lacks and about the open world;
- aliases: questions that name a country by another of its names ("Czechia"), which no
  setting was chosen on;
- inverse: the answer given, the entity asked for ("Which element has atomic number 81?"), on
  the never-tuned half of `retrieval.questions.inverse_questions` (its own phrasings).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import tempfile
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from cogcore.facts import Entity, Fact, load_entities, mentions
from cogcore.paths import artifacts_dir, default_kb_dir
from evaluation.fictional import fictional_entities
from loadtest.server import running_service
from retrieval.questions import inverse_questions, question_set
from service.routing.questions import OPEN_WORLD, routing_questions
from service.settings import default_model_dir

KEY = "facts-eval-admin"
CONCURRENCY = 8
MAX_TOKENS = 24  # per answer; --max-tokens
SEED = 5  # which questions, invented entities and contradicted countries; --seed


@dataclass(frozen=True)
class Asked:
    """One question sent, and what came back."""

    question: str
    answer: str
    route: str
    abstained: bool
    sources: list[str]
    evidence: list[str]


async def ask(client: httpx.AsyncClient, model: str, question: str, retrieval: str = "auto",
              max_tokens: int = MAX_TOKENS) -> Asked:
    """One greedy chat completion; the reply with its `cogcore` extension."""
    body = {"model": model, "messages": [{"role": "user", "content": question}],
            "max_tokens": max_tokens, "temperature": 0, "retrieval": retrieval}
    response = await client.post("/v1/chat/completions", json=body)
    response.raise_for_status()
    data = response.json()
    info = data["cogcore"]
    return Asked(question, data["choices"][0]["message"]["content"], info["route"],
                 info["abstained"], [s["id"] for s in info["sources"]],
                 [s["text"] for s in info["sources"]])


T = TypeVar("T")


async def bounded(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Await `calls` (coroutines not yet started), CONCURRENCY at a time; results in order."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def ask_all(client: httpx.AsyncClient, model: str, questions: Sequence[str],
                  **kwargs: object) -> list[Asked]:
    """Ask every question, CONCURRENCY at a time, answers in question order."""
    return await bounded(ask(client, model, q, **kwargs) for q in questions)


def miss(asked: Asked, expected: str) -> dict:
    """A wrong answer with what the reader was given, for reading the failures one by one."""
    return {"question": asked.question, "expected": expected, "answer": asked.answer,
            "abstained": asked.abstained, "evidence": asked.evidence}


def rate(flags: Sequence[bool]) -> dict[str, float | int]:
    """A share with its count."""
    return {"rate": round(sum(flags) / max(len(flags), 1), 4), "n": len(flags)}


def first_askable(entity: Entity) -> Fact:
    """The entity's first fact that can be asked."""
    return next(f for f in entity.facts if f.askable)


async def routing(client: httpx.AsyncClient, model: str) -> dict:
    """Route accuracy on the never-tuned routing questions; reasoning answers carry no sources."""
    test = [q for q in routing_questions() if q.split == "test"]
    asked = await ask_all(client, model, [q.text for q in test], max_tokens=1)
    reasoning = [a for a, q in zip(asked, test, strict=True) if q.route == "reasoning"]
    return {"accuracy": rate([a.route == q.route for a, q in zip(asked, test, strict=True)]),
            "reasoning_routed_without_sources": rate(
                [a.route == "reasoning" and not a.sources for a in reasoning])}


async def answers(client: httpx.AsyncClient, model: str, n: int, max_tokens: int,
                  seed: int = SEED) -> dict:
    """Grounded against closed-book accuracy on the same never-tuned KB questions."""
    test = [q for q in question_set() if q.split == "test" and q.phrasing == "question"]
    sample = random.Random(seed + 2).sample(test, min(n, len(test)))
    texts = [q.text for q in sample]
    grounded = await ask_all(client, model, texts, max_tokens=max_tokens)
    closed = await ask_all(client, model, texts, retrieval="never", max_tokens=max_tokens)
    pairs = list(zip(sample, grounded, closed, strict=True))
    return {
        "grounded_correct": rate([mentions(g.answer, q.answer) for q, g, _ in pairs]),
        "grounded_correct_and_cited": rate(
            [mentions(g.answer, q.answer) and q.entity_id in g.sources for q, g, _ in pairs]),
        "closed_book_correct": rate([mentions(c.answer, q.answer) for q, _, c in pairs]),
        "abstained_on_answerable": rate([g.abstained for _, g, _ in pairs]),
        "misses": [miss(g, q.answer) for q, g, _ in pairs if not mentions(g.answer, q.answer)],
    }


async def upsert(client: httpx.AsyncClient, documents: list[dict]) -> None:
    """Write documents through the API (admin key)."""
    response = await client.post("/v1/documents", json={"documents": documents})
    response.raise_for_status()


async def updates(client: httpx.AsyncClient, model: str, invented: list[Entity],
                  max_tokens: int, seed: int = SEED) -> dict:
    """New entities become answerable; contradicted facts are answered from the store."""
    await upsert(client, [{"id": e.id, "text": e.document(), "metadata": {"kind": e.kind}}
                          for e in invented])
    facts = [first_askable(e) for e in invented]
    new = await ask_all(client, model, [f.question for f in facts], max_tokens=max_tokens)
    countries = [e for e in load_entities() if e.kind == "country"
                 and any(f.relation.name == "capital" for f in e.facts)]
    chosen = random.Random(seed + 6).sample(countries, 40)
    changed = []
    for entity, donor in zip(chosen, chosen[1:] + chosen[:1], strict=True):
        real = next(f for f in entity.facts if f.relation.name == "capital")
        fake = next(f for f in donor.facts if f.relation.name == "capital").answer
        await client.delete(f"/v1/documents/{entity.id}")
        text = entity.document().replace(real.statement, real.relation.state(entity.name, fake))
        changed.append((real, fake, f"corrected:{entity.id}", text))
    await upsert(client, [{"id": i, "text": t, "metadata": {"kind": "country"}}
                          for _, _, i, t in changed])
    followed = await ask_all(client, model, [real.question for real, *_ in changed],
                             max_tokens=max_tokens)
    return {
        "new_entities_correct_and_cited": rate(
            [mentions(a.answer, f.answer) and f.entity_id in a.sources
             for a, f in zip(new, facts, strict=True)]),
        "contradictions_followed": rate(
            [mentions(a.answer, fake) for a, (_, fake, _, _) in zip(followed, changed,
                                                                     strict=True)]),
        "contradictions_citing_the_new_document": rate(
            [i in a.sources for a, (_, _, i, _) in zip(followed, changed, strict=True)]),
        "misses": [miss(a, f.answer) for a, f in zip(new, facts, strict=True)
                   if not mentions(a.answer, f.answer)]
        + [miss(a, fake) for a, (_, fake, _, _) in zip(followed, changed, strict=True)
           if not mentions(a.answer, fake)],
    }


async def abstention(client: httpx.AsyncClient, model: str, absent: list[Entity]) -> dict:
    """Questions the store cannot answer: invented entities it lacks and the open world."""
    invented = await ask_all(client, model, [first_askable(e).question for e in absent])
    world = await ask_all(client, model, list(OPEN_WORLD))
    return {"invented_entities": rate([a.abstained for a in invented]),
            "open_world": rate([a.abstained for a in world]),
            "all": rate([a.abstained for a in invented + world])}


async def inverse(client: httpx.AsyncClient, model: str, n: int, max_tokens: int,
                  seed: int = SEED) -> dict:
    """Never-tuned inverse questions: the entity named in the answer, its document cited."""
    test = [q for q in inverse_questions() if q.split == "test"]
    sample = random.Random(seed + 8).sample(test, min(n, len(test)))
    asked = await ask_all(client, model, [q.text for q in sample], max_tokens=max_tokens)
    pairs = list(zip(sample, asked, strict=True))
    return {
        "correct_and_cited": rate(
            [mentions(a.answer, q.answer) and q.entity_id in a.sources for q, a in pairs]),
        "wrong_with_citation": rate(
            [not mentions(a.answer, q.answer) and bool(a.sources) for q, a in pairs]),
        "abstained": rate([a.abstained for _, a in pairs]),
        "misses": [miss(a, q.answer) for q, a in pairs if not mentions(a.answer, q.answer)],
    }


# Updates change the store (contradicted capitals): they come last.
async def aliases(client: httpx.AsyncClient, model: str, n: int, max_tokens: int,
                  seed: int = SEED) -> dict:
    """Askable facts of countries asked by another of their names: answered, not abstained."""
    cases = [(alias, fact) for e in load_entities() for alias in e.aliases
             for fact in e.facts if fact.askable and alias.isascii()]
    sample = random.Random(seed + 9).sample(cases, min(n, len(cases)))
    texts = [fact.question.replace(fact.entity, alias) for alias, fact in sample]
    asked = await ask_all(client, model, texts, max_tokens=max_tokens)
    pairs = list(zip(sample, asked, strict=True))
    return {
        "answered": rate([not a.abstained for a in asked]),
        "correct_and_cited": rate([f.accepts(a.answer) and f.entity_id in a.sources
                                   for (_, f), a in pairs]),
        "misses": [miss(a, f.answer) for (_, f), a in pairs if not f.accepts(a.answer)],
    }


PARTS = ("routing", "answers", "abstention", "aliases", "inverse", "updates")


async def measure(url: str, model: str, n: int, parts: Sequence[str] = PARTS,
                  max_tokens: int = MAX_TOKENS, seed: int = SEED) -> dict:
    """The figures of docs/facts.md (every part by default), in one run against one service."""
    fictional = list(fictional_entities())
    rng = random.Random(seed)
    rng.shuffle(fictional)
    headers = {"Authorization": f"Bearer {KEY}"}
    jobs = {"routing": lambda c: routing(c, model),
            "answers": lambda c: answers(c, model, n, max_tokens, seed),
            "abstention": lambda c: abstention(c, model, fictional[40:100]),
            "updates": lambda c: updates(c, model, fictional[:40], max_tokens, seed),
            "inverse": lambda c: inverse(c, model, n, max_tokens, seed),
            "aliases": lambda c: aliases(c, model, n, max_tokens, seed)}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as client:
        return {part: await jobs[part](client) for part in PARTS if part in parts}


def main() -> None:
    """Copy the knowledge base, start the service on it, measure, print and save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=default_model_dir(),
                        help="[default: what `cogcore serve` serves: the core, else the base]")
    parser.add_argument("--kb", type=Path, default=default_kb_dir())
    parser.add_argument("--n", type=int, default=200, help="KB questions to answer")
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS,
                        help="tokens per answer [default: %(default)s]")
    parser.add_argument("--only", default=",".join(PARTS),
                        help="comma-separated parts to measure [default: all]")
    parser.add_argument("--seed", type=int, default=SEED,
                        help="another seed draws other questions, entities and countries, "
                        "for a check on data no setting was chosen on [default: %(default)s]")
    parser.add_argument("--out", type=Path, default=artifacts_dir() / "reports" / "facts")
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if not parts or set(parts) - set(PARTS):
        parser.error(f"--only takes parts of {','.join(PARTS)}")
    with tempfile.TemporaryDirectory() as scratch:
        kb = Path(scratch) / "kb"
        shutil.copytree(args.kb, kb, ignore=shutil.ignore_patterns("writer.lock"))
        env = {"COGCORE_ADMIN_KEYS": KEY, "COGCORE_KB_DIR": str(kb)}
        with running_service(args.model, env) as (url, model):
            report = asyncio.run(measure(url, model, args.n, parts, args.max_tokens, args.seed))
    report.update(model=str(args.model), max_tokens=args.max_tokens, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "facts.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
