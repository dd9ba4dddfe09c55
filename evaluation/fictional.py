"""Invented entities with invented attributes: facts that no model can have memorized.

Names are built from syllables by a seeded generator, so the same entities come back on every
run and every machine; a name that happens to match a real entity is skipped. The entities use
the real relations of `cogcore.facts`, so their documents and questions read like the real ones.
"""

from __future__ import annotations

import random
import string
from functools import cache

from cogcore.facts import (
    COUNTRY_RELATIONS,
    ELEMENT_RELATIONS,
    STATE_RELATIONS,
    Entity,
    Fact,
    load_entities,
    normalize,
    slug,
)

SYLLABLES = (
    "ka", "lo", "mir", "vet", "dra", "sun", "bel", "tor", "qui", "zan", "oph", "rel", "mun",
    "gal", "ste", "rix", "pa", "nor", "vi", "das", "el", "ku", "thar", "om", "bri", "sel",
)
SEED = 20240
COUNTS = {"country": 200, "element": 60, "us_state": 60}


def _name(rng: random.Random, taken: set[str], suffix: str = "") -> str:
    """A fresh pronounceable name: two or three syllables, never a real or earlier one."""
    while True:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3)))) + suffix
        name = word.capitalize()
        if normalize(name) not in taken:
            taken.add(normalize(name))
            return name


def _letters(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(count))


def _entity(kind: str, name: str, facts: list[tuple]) -> Entity:
    entity_id = f"fictional-{kind}:{slug(name)}"
    built = tuple(Fact(entity_id, name, kind, rel, answer) for rel, answer in facts)
    return Entity(entity_id, name, kind, "invented", built)


def _country(rng: random.Random, taken: set[str]) -> Entity:
    rel = COUNTRY_RELATIONS
    return _entity("country", _name(rng, taken), [
        (rel["capital"], _name(rng, taken)),
        (rel["currency"], _letters(rng, 3)),
        (rel["calling_code"], str(rng.randint(300, 999))),
        (rel["tld"], "." + _letters(rng, 2).lower()),
    ])


def _element(rng: random.Random, taken: set[str]) -> Entity:
    rel = ELEMENT_RELATIONS
    symbol = _letters(rng, 1) + _letters(rng, 1).lower()
    return _entity("element", _name(rng, taken, suffix="ium"), [
        (rel["symbol"], symbol),
        (rel["atomic_number"], str(rng.randint(130, 400))),
    ])


def _state(rng: random.Random, taken: set[str]) -> Entity:
    rel = STATE_RELATIONS
    return _entity("us_state", _name(rng, taken), [
        (rel["capital"], _name(rng, taken)),
        (rel["abbreviation"], _letters(rng, 2)),
        (rel["statehood_year"], str(rng.randint(1700, 2000))),
    ])


@cache
def fictional_entities() -> tuple[Entity, ...]:
    """Invented countries, elements and US states, the same on every run."""
    rng = random.Random(SEED)
    taken = {normalize(e.name) for e in load_entities()}
    makers = {"country": _country, "element": _element, "us_state": _state}
    return tuple(
        makers[kind](rng, taken) for kind, count in COUNTS.items() for _ in range(count)
    )
