"""The evidence sentences: each passage cut down to the sentences that answer the question.

A small reader confuses look-alike facts of one passage ("the currency code of Ghana is GHS" for
its internet domain), so it reads only the sentences nearest the question. Nearness is the sum
of three scores (docs/facts.md, chosen on `benchmarks/paraphrase_eval.py`'s tune half):
- the embedding's cosine of the question and the sentence;
- the cosine of the question and the sentence without the values it states (`without_values`):
  a forward question asks for the value, so the value cannot match it, yet pulls the sentence's
  embedding its own way ("Which part of its continent is Portugal in?" is nearer "Portugal lies
  in the world region Europe." for "Europe", and nearer "The subregion of Portugal is" than
  "Portugal lies in the world region" once the values are gone): what is left is the entity and
  the relation's words, which the question's relation words are compared with;
- `lexical_weight` times the share of the question's content words the sentence holds: the
  embedding alone prefers "the capital of Samoa is Apia" for a question about American Samoa.
Before the scores, `answering` rules out the sentences that cannot answer the question, judged
by the entity a document is about (its metadata `name` and `aliases`) and the values the
question and the sentence give (docs/facts.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from retrieval.chunker import sentence_spans
from service.conversation import holds, name_spans
from service.evidence_constraints import FUNCTION_WORDS, WORD

if TYPE_CHECKING:
    from retrieval.knowledge_base import Hit

# A code or a number ("PEN", "81", ".by", "+352", "10,477,800", "208.98"): a value a sentence
# states, or an exact term a question gives.
EXACT = re.compile(r"(?<![\w.])(?:\.[a-z]{2,3}|\+?\d+(?:[.,]\d+)*|[A-Z]{2,4})(?!\w)")
# The weight of the value-free view's cosine beside the whole sentence's (tune half: 74 -> 81
# of 87 right sentences at 1.0, 79-82 from 0.5 to 2.0; the author's own phrasings over the tune
# half's entities: 64 -> 66 of 73).
VALUE_FREE_WEIGHT = 1.0
# The value-free view is embedded for this many sentences, the best by the other two scores
# (each costs an embedding inside the request; tune half: 77, 80, 81 and 81 of 87 right with
# 2, 3, 4 and every sentence).
FINALISTS = 4
# A question that asks for an amount: the answer is a number ("How big is Nepal?", "In what
# year did Ohio join?").
AMOUNT = re.compile(r"\bhow (?:many|much|big|large|small|heavy|dense|old|far|long|high|tall|"
                    r"populous)\b|\b(?:what|which) year\b|^\s*when\b", re.IGNORECASE)
# The entity given by another of its facts and something else asked about it ("What is the
# money code of the country whose capital is Kigali?", "The country governed from Suva lies in
# which region?"): a kind named with "the" in a question that asks for something else ...
KIND = r"(?:country|nation|state|element|place|territory)"
DESCRIBED = re.compile(rf"\bthe {KIND}\b", re.IGNORECASE)
INTERROGATIVE = re.compile(r"\b(?:which|what|how|where|when|who)\b", re.IGNORECASE)
# ... and not for the kind itself ("Which country's capital is Suva?", "What is the state
# with the FIPS code 39?").
ASKS_KIND = re.compile(rf"\b(?:which|what)(?:'s| is| was)?(?: the)?(?: [a-z]+)? {KIND}s?\b",
                       re.IGNORECASE)
Encode = Callable[[list[str]], np.ndarray]


def pieces(hits: Sequence[Hit]) -> list[tuple[int, str]]:
    """The sentences of the passages, each with its passage's index."""
    return [(i, hit.text[a:b]) for i, hit in enumerate(hits) for a, b in sentence_spans(hit.text)]


def content_words(text: str) -> set[str]:
    """Lowercased words of `text` without question openers and function words."""
    return {w for w in WORD.findall(text.lower()) if w not in FUNCTION_WORDS}


def without_values(sentence: str, question: str) -> str:
    """`sentence` without the values it states: the names the question does not give, codes
    and numbers. "The subregion of Portugal is Southern Europe." asked "Which part of its
    continent is Portugal in?" is "The subregion of Portugal is."; an inverse question's given
    value stays ("Which country is governed from Suva?": "The capital of Fiji is Suva." keeps
    "Suva", loses "Fiji"). The sentence itself when nothing is left."""
    out = sentence
    for span in sorted(set(name_spans(sentence)), key=len, reverse=True):
        if not holds(question, span):
            out = re.sub(rf"(?<!\w){re.escape(span)}(?!\w)", " ", out)
    out = " ".join(EXACT.sub(" ", out).split())
    return out if WORD.search(out) else sentence


def sentence_texts(query: str, hits: Sequence[Hit]) -> list[str]:
    """The texts `closest_sentences` embeds first for `query` over `hits`: the query, then
    every sentence (their value-free views come after, for the best few: `value_free_texts`)."""
    return [query] + [text for _, text in pieces(hits)]


def value_free_texts(query: str, hits: Sequence[Hit], encode: Encode, count: int,
                     lexical_weight: float) -> list[str]:
    """The value-free views `closest_sentences` embeds second: of the sentences it weighs."""
    cut = pieces(hits)
    if not cut:
        return []
    scores = _whole_scores(query, hits, cut, encode, lexical_weight)
    return [without_values(cut[j][1], query) for j in _finalists(cut, scores, count)]


def _whole_scores(query: str, hits: Sequence[Hit], cut: list[tuple[int, str]], encode: Encode,
                  lexical_weight: float) -> np.ndarray:
    """Each sentence's cosine to `query`, plus the share of the question's words it holds;
    -inf for a sentence that cannot answer it (`answering`)."""
    vectors = encode([query] + [text for _, text in cut])
    scores = vectors[1:] @ vectors[0]
    asked = content_words(query)
    if lexical_weight and asked:
        scores = scores + lexical_weight * np.array(
            [len(asked & content_words(text)) / len(asked) for _, text in cut])
    return np.where(answering(query, hits, cut), scores, -np.inf)


def entity_names(metadata: dict) -> list[str]:
    """The names of the entity a document is about (`name`, then `aliases`), longest first;
    none for a document that names no entity (a file's section)."""
    name, aliases = metadata.get("name"), metadata.get("aliases")
    if not isinstance(name, str) or not name:
        return []
    others = [a for a in aliases if isinstance(a, str) and a] if isinstance(aliases, list) else []
    return sorted({name, *others}, key=len, reverse=True)


def _terms(text: str) -> list[str]:
    """The names and the codes or numbers `text` gives."""
    return [*name_spans(text), *EXACT.findall(text)]


def _holds(text: str, term: str) -> bool:
    """Whether `text` holds the name or code `term` whole: "14" is not in "14.78" or "1,014"."""
    return re.search(rf"(?<![\w.,]){re.escape(term)}(?!\w|[.,]\d)", text) is not None


def _names(query: str, name: str, longer: Sequence[str]) -> bool:
    """Whether `query` names `name`: it holds it, and not only inside one of the `longer` names
    ("Papua New Guinea" does not name Guinea) or a hyphenated one ("Fort-de-France")."""
    return holds(query, name) and not any(
        len(t) > len(name) and holds(t, name) for t in longer) and not re.search(
        rf"(?:\w-{re.escape(name)}|{re.escape(name)}-\w)", query)


def _new_values(sentence: str, question: str, own: Sequence[str]) -> list[str]:
    """The values `sentence` states that the question does not give, the entity's own names
    aside: what a copy of it could answer."""
    for name in own:
        sentence = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", " ", sentence)
    return [t for t in _terms(sentence) if not holds(question, t)]


def _named(query: str, own: Sequence[Sequence[str]]) -> list[bool]:
    """Which of the documents whose entities' names are `own` the question names."""
    longer = [n for names in own for n in names if holds(query, n)]
    return [any(_names(query, n, longer) for n in names) for names in own]


def _held(given: Sequence[str], hits: Sequence[Hit], own: Sequence[Sequence[str]]
          ) -> list[list[str]]:
    """The `given` terms each passage holds (or its entity's names are)."""
    return [[t for t in given if _holds(h.text, t) or t in names]
            for h, names in zip(hits, own, strict=True)]


def unanchored(query: str, hits: Sequence[Hit]) -> list[str]:
    """The names and codes `query` gives when entity passages are all `hits` has and none of
    them is about an entity it names or holds any of those terms: the search went astray
    ("West Island is the capital of what nation?" found West Virginia), and a lookup of the
    terms may find the page; else none."""
    own = [entity_names(h.metadata) for h in hits]
    given = list(dict.fromkeys(_terms(query)))
    if not hits or not all(own) or any(_named(query, own)) or any(_held(given, hits, own)):
        return []
    return given


def holding(terms: Sequence[str], hits: Sequence[Hit]) -> list[Hit]:
    """The entity passages of `hits` that hold one of `terms` (or are about one)."""
    own = [entity_names(h.metadata) for h in hits]
    return [h for h, names, held in zip(hits, own, _held(terms, hits, own), strict=True)
            if names and held]


def answering(query: str, hits: Sequence[Hit], cut: Sequence[tuple[int, str]]) -> list[bool]:
    """Which sentences of `hits` (`pieces`) could answer `query`. Only the passages of entity
    documents (`entity_names`) are judged; any other sentence may answer.

    - The document: when the question names entities of the passages (a name or another
      name, not only inside a longer name it gives), only their documents answer; else only the
      documents that hold the most of the names and codes it gives ("Funafuti" for "the
      country whose capital is Funafuti"; on a tie, the most in a sentence that shares a word
      with the question: "atomic number 14", not "the density of Berkelium is 14"); and none
      when it gives some and no passage holds any ("West Island is the capital of what
      nation?" against West Virginia's page).
    - The sentence: a question that names its entity, or describes it by another fact
      (`DESCRIBED`), asks for a value, so the sentence must state one the question does not
      give, the entity's own names aside ("Kenya is also called Republic of Kenya." and "A
      person from Djibouti is called Djibouti." answer nothing); a number when it asks for an
      amount (`AMOUNT`). A question that asks for the entity ("Which nation does the ISO
      abbreviate as MAR?") must find in the sentence the names or codes it gives that the
      fewest of the page's sentences hold ("MD", not "US", of "Which US state's postal code
      is MD?").
    """
    own = [entity_names(h.metadata) for h in hits]
    if not any(own):
        return [True] * len(cut)
    given = list(dict.fromkeys(_terms(query)))
    matched = _named(query, own)
    held = _held(given, hits, own)
    if any(matched):
        agree = matched
    elif given and not any(held):
        agree = [False] * len(hits)
    else:  # the most given terms held, then the most held in a sentence on the question's
        # relation (a word of it beside the term: "atomic number 14", not "density ... 14")
        asked = content_words(query)
        support = [(len(h), sum(any(_holds(t, term) and content_words(t) & asked - {term.lower()}
                                    for j, t in cut if j == i) for term in h))
                   for i, h in enumerate(held)]
        agree = [x == max(support) for x in support]
    asks_value = any(matched) or bool(DESCRIBED.search(query) and INTERROGATIVE.search(query)
                                      and not ASKS_KIND.search(query))
    amount = bool(AMOUNT.search(query))
    out = []
    for i, sentence in cut:
        if not own[i]:
            out.append(True)
        elif not agree[i]:
            out.append(False)
        elif asks_value:
            new = _new_values(sentence, query, own[i])
            out.append(any(re.search(r"\d", t) for t in new) if amount else bool(new))
        else:
            wanted = _rarest(held[i], [t for j, t in cut if j == i])
            out.append(not wanted or any(_holds(sentence, t) for t in wanted))
    return out


def _rarest(terms: Sequence[str], sentences: Sequence[str]) -> list[str]:
    """The `terms` that the fewest of a page's `sentences` hold (at least one): for "Which US
    state's postal code is MD?" "MD", not "US", which two of the state's sentences hold."""
    counts = {t: sum(_holds(s, t) for s in sentences) for t in terms}
    least = min((c for c in counts.values() if c), default=0)
    return [t for t, c in counts.items() if c == least and c]


def _finalists(cut: list[tuple[int, str]], scores: np.ndarray, count: int) -> list[int]:
    """The sentences the value-free view weighs: the best FINALISTS (or `count`) by the rest,
    a sentence that overlapping passages both hold counted once."""
    out: list[int] = []
    seen: set[str] = set()
    for j in np.argsort(-scores, kind="stable"):
        if not np.isfinite(scores[j]):
            break
        if cut[j][1] not in seen:
            seen.add(cut[j][1])
            out.append(int(j))
            if len(out) == max(count, FINALISTS):
                break
    return out


def closest_sentences(query: str, hits: list[Hit], encode: Encode, count: int,
                      lexical_weight: float, value_weight: float = VALUE_FREE_WEIGHT
                      ) -> list[Hit]:
    """Each passage cut down to its `count` sentences nearest `query` (module docstring), best
    passages first; the passages' order is kept."""
    cut, scores = sentence_scores(query, hits, encode, count, lexical_weight, value_weight)
    return keep_best(hits, cut, scores, count)


def sentence_scores(query: str, hits: Sequence[Hit], encode: Encode, count: int,
                    lexical_weight: float, value_weight: float = VALUE_FREE_WEIGHT
                    ) -> tuple[list[tuple[int, str]], list[float]]:
    """The sentences of `hits` (`pieces`) and each one's nearness to `query` (module
    docstring; -inf for those the value-free view did not weigh)."""
    cut = pieces(hits)
    if not cut:
        return cut, []
    scores = _whole_scores(query, hits, cut, encode, lexical_weight)
    if value_weight:
        finalists = _finalists(cut, scores, count)
        weighed = np.full(len(cut), -np.inf)
        if finalists:
            views = encode([query] + [without_values(cut[j][1], query) for j in finalists])
            weighed[finalists] = scores[finalists] + value_weight * (views[1:] @ views[0])
        scores = weighed
    return cut, [float(x) for x in scores]


def keep_best(hits: list[Hit], cut: list[tuple[int, str]], scores: Sequence[float],
              count: int) -> list[Hit]:
    """Each passage cut down to its sentences among the `count` best `scores`; the passages'
    order is kept (`hits` as they are when there are no sentences)."""
    if not cut:
        return hits
    chosen = sorted(np.argsort(-np.asarray(scores), kind="stable")[:count])
    kept: dict[int, list[str]] = {}
    for j in chosen:
        kept.setdefault(cut[j][0], []).append(cut[j][1])
    return [replace(hits[i], text=" ".join(kept[i])) for i in sorted(kept)]
