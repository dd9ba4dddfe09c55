"""World facts from maintained data packages: the one home of the project's factual data.

Every fact comes from `countryinfo` (countries), `periodictable` (elements) or `us` (US states).
Each relation has one statement template; the knowledge base turns statements into documents,
the evaluation harness turns the askable ones into questions. Entities are split into seeded,
stable groups by hashing their ids, so a split never changes when the data grows.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Relation:
    """A kind of fact: how to state it and, when it is askable, how to ask it."""

    name: str
    statement: str  # a template with {entity} and {answer}
    question: str | None = None  # None: stated in documents but never asked
    noun: str | None = None  # how a question names the relation: "currency code"

    def state(self, entity: str, answer: str) -> str:
        """The fact as one sentence."""
        return self.statement.format(entity=entity, answer=answer)

    def prefix(self, entity: str) -> str:
        """The statement up to its answer: the start of a closed-book reply."""
        return self.statement.split("{answer}")[0].format(entity=entity).rstrip()

    def ask(self, entity: str) -> str:
        """The question whose answer is this fact."""
        if self.question is None:
            raise ValueError(f"relation {self.name} is not askable")
        return self.question.format(entity=entity)


@dataclass(frozen=True)
class Fact:
    """One attribute of one entity, with the strings that count as its answer."""

    entity_id: str
    entity: str
    kind: str
    relation: Relation
    answer: str
    aliases: tuple[str, ...] = ()

    @property
    def askable(self) -> bool:
        """Whether the evaluation and question sets may ask it."""
        return self.relation.question is not None

    @property
    def statement(self) -> str:
        """The fact as one sentence."""
        return self.relation.state(self.entity, self.answer)

    @property
    def question(self) -> str:
        """The question whose answer is this fact."""
        return self.relation.ask(self.entity)

    def accepts(self, text: str) -> bool:
        """Whether `text` contains the answer or one of its aliases (case and accents folded)."""
        return any(mentions(text, a) for a in (self.answer, *self.aliases))


@dataclass(frozen=True)
class Entity:
    """A country, an element or a US state, with every fact the packages give about it."""

    id: str
    name: str
    kind: str
    source: str
    facts: tuple[Fact, ...]
    # Other names people use ("Czechia", "Great Britain"): the document states them, so the
    # store knows them and a question that uses one is not refused as naming the unknown.
    aliases: tuple[str, ...] = ()

    def document(self) -> str:
        """A natural-language document: its other names, then every fact, one sentence each."""
        names = [f"{self.name} is also called {_join(list(self.aliases))}."] if self.aliases \
            else []
        return " ".join(names + [f.statement for f in self.facts])


R = Relation
COUNTRY_RELATIONS = {
    "capital": R("capital", "The capital of {entity} is {answer}.",
                 "What is the capital of {entity}?", "capital"),
    "region": R("region", "{entity} lies in the world region {answer}.",
                "In which world region does {entity} lie?", "world region"),
    "subregion": R("subregion", "The subregion of {entity} is {answer}."),
    "demonym": R("demonym", "A person from {entity} is called {answer}.",
                 "What is a person from {entity} called?", "demonym"),
    "currency": R("currency", "The currency code of {entity} is {answer}.",
                  "What is the ISO currency code used in {entity}?", "currency code"),
    "calling_code": R("calling_code", "The international calling code of {entity} is +{answer}.",
                      "What is the international calling code of {entity}?",
                      "international calling code"),
    "tld": R("tld", "The internet domain of {entity} is {answer}.",
             "What is the internet country domain of {entity}?", "internet domain"),
    "iso_alpha3": R("iso_alpha3", "The ISO 3166 alpha-3 code of {entity} is {answer}."),
    "population": R("population", "The population of {entity} is {answer}."),
    "area": R("area", "The area of {entity} is {answer} square kilometres."),
    "borders": R("borders", "{entity} borders {answer}."),
}
ELEMENT_RELATIONS = {
    "symbol": R("symbol", "The chemical symbol of {entity} is {answer}.",
                "What is the chemical symbol of {entity}?", "chemical symbol"),
    "atomic_number": R("atomic_number", "The atomic number of {entity} is {answer}.",
                       "What is the atomic number of {entity}?", "atomic number"),
    "mass": R("mass", "The standard atomic mass of {entity} is {answer} u."),
    "density": R("density", "The density of {entity} is {answer} g/cm3."),
}
STATE_RELATIONS = {
    "capital": R("capital", "The capital of the US state of {entity} is {answer}.",
                 "What is the capital of the US state of {entity}?", "capital"),
    "abbreviation": R("abbreviation", "The postal abbreviation of {entity} is {answer}.",
                      "What is the postal abbreviation of the US state of {entity}?",
                      "postal abbreviation"),
    "statehood_year": R("statehood_year", "{entity} became a US state in {answer}.",
                        "In which year did {entity} become a US state?", "statehood year"),
    "time_zone": R("time_zone", "The time zone of the capital of {entity} is {answer}."),
    "fips": R("fips", "The FIPS code of {entity} is {answer}."),
}


def mentions(text: str, answer: str) -> bool:
    """Whether `text` holds `answer` as whole words, case and accents folded."""
    return f" {normalize(answer)} " in f" {normalize(text)} "


def normalize(text: str) -> str:
    """Lower-case, strip accents and punctuation, collapse spaces: for answer matching."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    # Keep '.' inside tokens ('.fr', '55.845') but not at the end of a sentence.
    tokens = re.sub(r"[^a-z0-9.]+", " ", folded.lower()).split()
    return " ".join(t.rstrip(".") or t for t in tokens)


def slug(name: str) -> str:
    """A lower-case ASCII id part: 'Côte d'Ivoire' -> 'cote-d-ivoire'."""
    return "-".join(normalize(name).replace(".", " ").split())


def _entity(kind: str, source: str, name: str, facts: Iterable[tuple[Relation, str, tuple]],
            aliases: Iterable[str] = ()) -> Entity:
    entity_id = f"{kind}:{slug(name)}"
    built = tuple(
        Fact(entity_id, name, kind, relation, answer, answer_aliases)
        for relation, answer, answer_aliases in facts
        if answer
    )
    return Entity(entity_id, name, kind, source, built, tuple(aliases))


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _countries() -> list[Entity]:
    import countryinfo

    infos = [c.info() for c in countryinfo.all_countries()]
    by_alpha3 = {i["ISO"]["alpha3"]: i["name"] for i in infos if i.get("ISO")}
    entities = []
    for info in sorted(infos, key=lambda i: i["name"]):
        rel = COUNTRY_RELATIONS
        currencies = list(info.get("currencies") or [])
        codes = list(info.get("callingCodes") or [])
        tlds = list(info.get("tld") or [])
        borders = [by_alpha3[b] for b in info.get("borders") or [] if b in by_alpha3]
        capital = info.get("capital") or ""
        if isinstance(capital, list):  # the package gives Vatican City's capital as a list
            capital = capital[0] if capital else ""
        facts = [
            (rel["capital"], capital, ()),
            (rel["region"], info.get("region") or "", ()),
            (rel["subregion"], info.get("subregion") or "", ()),
            (rel["demonym"], info.get("demonym") or "", ()),
            (rel["currency"], currencies[0] if currencies else "", tuple(currencies[1:])),
            (rel["calling_code"], codes[0] if codes else "", tuple(codes[1:])),
            (rel["tld"], tlds[0] if tlds else "", tuple(tlds[1:])),
            (rel["iso_alpha3"], info.get("ISO", {}).get("alpha3", ""), ()),
            (rel["population"], f"{int(info['population']):,}" if info.get("population") else "",
             ()),
            (rel["area"], f"{int(float(info['area'])):,}" if info.get("area") else "", ()),
            (rel["borders"], _join(borders) if borders else "", ()),
        ]
        entities.append(_entity("country", "countryinfo", info["name"], facts, _aliases(info)))
    return entities


def _aliases(info: dict) -> list[str]:
    """The country's other names in Latin script; not its two-letter codes, which collide
    with element symbols and words ("RU", "US"), nor the alpha-3 code it already states."""
    name, alpha3 = info["name"], info.get("ISO", {}).get("alpha3")
    names = []
    for alias in info.get("altSpellings") or []:
        alias = alias.strip()
        latin = unicodedata.normalize("NFKD", alias).encode("ascii", "ignore").decode()
        if len(latin) < len(alias) - 2 or len(alias) <= 2 or alias in (name, alpha3):
            continue  # another script, a two-letter code, or what the document already says
        if alias not in names:
            names.append(alias)
    return names


def _elements() -> list[Entity]:
    import periodictable

    entities = []
    for element in periodictable.elements:
        if element.number == 0:  # the package's free neutron is not an element
            continue
        rel = ELEMENT_RELATIONS
        facts = [
            (rel["symbol"], element.symbol, ()),
            (rel["atomic_number"], str(element.number), ()),
            (rel["mass"], f"{element.mass:g}" if element.mass else "", ()),
            (rel["density"], f"{element.density:g}" if element.density else "", ()),
        ]
        entities.append(_entity("element", "periodictable", element.name.capitalize(), facts))
    return entities


def _states() -> list[Entity]:
    import us

    entities = []
    for state in sorted(us.states.STATES, key=lambda s: s.name):
        rel = STATE_RELATIONS
        facts = [
            (rel["capital"], state.capital or "", ()),
            (rel["abbreviation"], state.abbr, ()),
            (rel["statehood_year"], str(state.statehood_year or ""), ()),
            (rel["time_zone"], state.capital_tz or "", ()),
            (rel["fips"], state.fips or "", ()),
        ]
        entities.append(_entity("us_state", "us", state.name, facts))
    return entities


@cache
def load_entities() -> tuple[Entity, ...]:
    """Every entity of the three packages, in a fixed order, each with at least one fact."""
    everything = [*_countries(), *_elements(), *_states()]
    return tuple(e for e in everything if e.facts)


def split_of(entity_id: str, salt: str, fractions: dict[str, float]) -> str:
    """The named group an entity falls in: stable, seeded by `salt`, sized by `fractions`."""
    digest = hashlib.sha256(f"{salt}:{entity_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    cumulative = 0.0
    for name, fraction in fractions.items():
        cumulative += fraction
        if point < cumulative:
            return name
    return name
