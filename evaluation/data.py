"""Evaluation data, built from `cogcore.facts` and generators; also the pruning calibration sets.

Stable API (the pruning methods import it; names and meanings do not change):

- `closed_book_items(split)`: `QAItem`s asking a world fact with no evidence. `split` is
  "calibration" (the only facts a pruning method may score on) or "heldout" (never used by
  pruning); entities are split by `split_of(entity_id, "eval", {"calibration": 0.4,
  "heldout": 0.6})`, so all facts of one entity fall on the same side.
- `reading_items(kind, split)`: `QAItem`s with evidence in the shared reader prompt
  (`cogcore.prompts.reader_prompt`). `kind` is "open_book" (the closed-book questions of the
  split, with two passages as evidence: three sentences about the entity, one of which answers,
  and two about another entity of the same kind, one of the same relation), "counterfactual"
  (the evidence states a plausible wrong answer: another entity's value of the same relation;
  `item.memorized` is the true fact) or "fictional" (invented entities, pure reading).
- `reasoning_items(task, split, count)`: `ChoiceItem`s of one task of `REASONING_TASKS`.
- `closed_book_paraphrase_items()`: a second closed-book held-out set over the same held-out
  entities, asked with other templates, question forms (inverse, fill-in, "Tell me ...") and
  relations than the calibration (`evaluation.paraphrase`). Never a calibration entity.
- `general_text()`: English prose for perplexity (the Python language reference shipped in the
  standard library as `pydoc_data.topics`, prose paragraphs only: it states few world facts).
- `everyday_text()`: a second perplexity text that is no documentation at all: everyday English
  prose written for this project (`evaluation/texts.py`, CC0), shipped in the package.
- `practical_text()`: a third, held-out perplexity text: practical English (notices, messages,
  instructions, advice; `evaluation/texts.py`, CC0), written after the healing text and the
  vocabulary were chosen and never read while choosing them.
- `perplexity_texts()`: every perplexity text by name. Whatever trains or selects (calibration,
  healing, a vocabulary keep-set) must exclude all of them.

Every list comes in a fixed pseudo-random order (a hash of the item id), so its first N items are
a stable sample across relations. A `QAItem` carries `prompt` (chat messages plus the start of
the assistant's reply: render it with `item.prompt.render(tokenizer)`), `expected` (a `Fact`:
`expected.accepts(reply)` scores a reply), and `target`, the continuation of the rendered prompt
that a correct reply starts with, for scoring at the answer positions.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from functools import cache

from cogcore.facts import Entity, Fact, load_entities, split_of
from cogcore.prompts import closed_book_prompt, reader_prompt
from evaluation.fictional import fictional_entities
from evaluation.items import ChoiceItem, QAItem
from evaluation.paraphrase import paraphrased
from evaluation.reasoning_tasks import TASKS, generate_task

SPLITS = {"calibration": 0.4, "heldout": 0.6}
READING_KINDS = ("open_book", "counterfactual", "fictional")
REASONING_TASKS = tuple(TASKS)
EXCERPT_EXTRA = 2  # sentences of the entity beside the one that answers


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")


def _fact_id(fact: Fact) -> str:
    return f"{fact.entity_id}/{fact.relation.name}"


def _relation_key(fact: Fact) -> str:
    return f"{fact.kind}.{fact.relation.name}"


def _askable(entities: tuple[Entity, ...], split: str) -> list[tuple[Entity, Fact]]:
    chosen = [
        (entity, fact)
        for entity in entities
        if split_of(entity.id, "eval", SPLITS) == split
        for fact in entity.facts
        if fact.askable
    ]
    return sorted(chosen, key=lambda pair: _hash(_fact_id(pair[1])))


def _reading_target(fact: Fact) -> str:
    """The statement as it continues "According to the context,"."""
    sentence = fact.statement
    if not fact.relation.statement.startswith("{entity}"):
        sentence = sentence[0].lower() + sentence[1:]
    return " " + sentence


@cache
def closed_book_items(split: str) -> tuple[QAItem, ...]:
    """World-fact questions without evidence, for the entities of `split`."""
    _check_split(split)
    return tuple(
        QAItem(
            id=f"closed_book/{_fact_id(fact)}",
            relation=_relation_key(fact),
            prompt=closed_book_prompt(fact.question, fact.relation.prefix(fact.entity)),
            expected=fact,
            target=f" {fact.answer}",
        )
        for _, fact in _askable(load_entities(), split)
    )


@cache
def closed_book_paraphrase_items() -> tuple[QAItem, ...]:
    """Held-out world-fact questions phrased otherwise than the calibration (see
    `evaluation.paraphrase`): the held-out entities only, in a fixed pseudo-random order."""
    entities = load_entities()
    countries = frozenset(e.name for e in entities if e.kind == "country")
    asked = [
        a
        for entity in entities
        if split_of(entity.id, "eval", SPLITS) == "heldout"
        for a in paraphrased(entity, countries)
    ]
    return tuple(
        QAItem(
            id=a.id,
            relation=a.relation,
            prompt=closed_book_prompt(a.question, a.prefix),
            expected=a.expected,
            target=f" {a.expected.answer}",
        )
        for a in sorted(asked, key=lambda a: _hash(a.id))
    )


def _distractor(entity: Entity, pool: tuple[Entity, ...], avoid: set[str]) -> Entity:
    """Another entity of the same kind, chosen by hash, whose excerpt is distracting evidence."""
    same = [e for e in pool if e.kind == entity.kind and e.id not in avoid | {entity.id}]
    return same[_hash(f"distractor:{entity.id}") % len(same)]


def _excerpt(entity: Entity, relation: str, statement: str | None = None) -> str:
    """The entity's sentence of `relation` (or `statement` instead) and two more of its facts.

    Short excerpts rather than whole documents keep the reading suites within the time budget.
    """
    keep = next((f for f in entity.facts if f.relation.name == relation), entity.facts[0])
    others = sorted(
        (f for f in entity.facts if f != keep), key=lambda f: _hash(f"excerpt:{_fact_id(f)}")
    )[:EXCERPT_EXTRA]
    return " ".join(
        (statement or f.statement) if f == keep else f.statement
        for f in entity.facts
        if f == keep or f in others
    )


def _evidence(fact: Fact, entity: Entity, pool: tuple[Entity, ...], statement: str | None,
              avoid: set[str]) -> list[str]:
    """The entity's excerpt and a distractor's (same relation), in an order fixed by hash."""
    distractor = _distractor(entity, pool, avoid)
    passages = [_excerpt(entity, fact.relation.name, statement),
                _excerpt(distractor, fact.relation.name)]
    return passages if _hash(f"order:{_fact_id(fact)}") % 2 == 0 else passages[::-1]


@cache
def _values(kind: str, relation: str) -> tuple[tuple[str, Fact], ...]:
    """Every (entity id, fact) of one relation of one kind, in a fixed order."""
    return tuple(
        (e.id, f)
        for e in load_entities()
        if e.kind == kind
        for f in e.facts
        if f.relation.name == relation
    )


def _counterfactual(fact: Fact) -> tuple[Fact, str]:
    """The fact with a plausible wrong answer: another entity's value of the same relation."""
    others = [
        (entity_id, f)
        for entity_id, f in _values(fact.kind, fact.relation.name)
        if entity_id != fact.entity_id and not fact.accepts(f.answer)
    ]
    start = _hash(f"counterfactual:{_fact_id(fact)}")
    for step in range(len(others)):
        source_id, other = others[(start + step) % len(others)]
        wrong = replace(fact, answer=other.answer, aliases=())
        if not wrong.accepts(fact.answer):
            return wrong, source_id
    raise ValueError(f"no counterfactual answer for {_fact_id(fact)}")


def _reading_item(kind: str, entity: Entity, fact: Fact, pool: tuple[Entity, ...]) -> QAItem:
    if kind == "counterfactual":
        wrong, source_id = _counterfactual(fact)
        passages = _evidence(fact, entity, pool, wrong.statement, avoid={source_id})
        expected, memorized = wrong, fact
    else:
        passages = _evidence(fact, entity, pool, None, avoid=set())
        expected, memorized = fact, None
    return QAItem(
        id=f"{kind}/{_fact_id(fact)}",
        relation=_relation_key(fact),
        prompt=reader_prompt(fact.question, passages),
        expected=expected,
        target=_reading_target(expected),
        memorized=memorized,
    )


@cache
def reading_items(kind: str, split: str = "heldout") -> tuple[QAItem, ...]:
    """Questions with evidence in the reader prompt: open_book, counterfactual or fictional."""
    _check_split(split)
    if kind not in READING_KINDS:
        raise ValueError(f"unknown reading kind {kind!r}; expected one of {READING_KINDS}")
    pool = fictional_entities() if kind == "fictional" else load_entities()
    return tuple(_reading_item(kind, e, f, pool) for e, f in _askable(pool, split))


def reasoning_items(task: str, split: str = "heldout", count: int = 100) -> list[ChoiceItem]:
    """`count` multiple-choice items of one reasoning task, seeded by task and split."""
    _check_split(split)
    if task not in TASKS:
        raise ValueError(f"unknown reasoning task {task!r}; expected one of {REASONING_TASKS}")
    return generate_task(task, split, count)


@cache
def general_text() -> str:
    """English prose for perplexity: the prose paragraphs of the Python language reference."""
    from pydoc_data.topics import topics

    paragraphs = []
    for key in sorted(topics):
        for block in topics[key].split("\n\n"):
            # Indented blocks are code or grammar; lines of '*' or '=' underline headings.
            if block.startswith(" ") or re.search(r"^[*=\-]{3,}$", block, re.M):
                continue
            if len(block.split()) >= 12:
                paragraphs.append(" ".join(block.split()))
    return "\n\n".join(paragraphs)


@cache
def everyday_text() -> str:
    """English prose that is no documentation: short pieces on everyday life written for this
    project (CC0), paragraphs separated by blank lines; few world facts and no famous text, so
    no model has it memorized."""
    from evaluation.texts import EVERYDAY

    return _paragraphs(EVERYDAY)


def _paragraphs(text: str) -> str:
    """`text`'s paragraphs, each on one line, separated by blank lines."""
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n") if p.strip())


@cache
def practical_text() -> str:
    """Practical English prose (notices, messages, instructions, advice) written for this project
    (CC0): the held-out twin of `everyday_text()`, in another register."""
    from evaluation.texts import PRACTICAL

    return _paragraphs(PRACTICAL)


PERPLEXITY_SOURCES = {
    "general": "Python language reference prose (standard library pydoc_data.topics)",
    "everyday": "everyday English prose written for this project (evaluation/texts.py, CC0)",
    "practical": "practical English prose, held out (evaluation/texts.py, CC0)",
}


def perplexity_texts() -> dict[str, str]:
    """Every text the perplexity suites score, by name. Keep all of them out of anything that
    trains or selects (calibration, healing, a vocabulary keep-set): the figure is only honest
    on text the pruning never saw."""
    return {"general": general_text(), "everyday": everyday_text(),
            "practical": practical_text()}
