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
    scores = _whole_scores(query, cut, encode, lexical_weight)
    return [without_values(cut[j][1], query) for j in _finalists(cut, scores, count)]


def _whole_scores(query: str, cut: list[tuple[int, str]], encode: Encode,
                  lexical_weight: float) -> np.ndarray:
    """Each sentence's cosine to `query`, plus the share of the question's words it holds."""
    vectors = encode([query] + [text for _, text in cut])
    scores = vectors[1:] @ vectors[0]
    asked = content_words(query)
    if lexical_weight and asked:
        scores = scores + lexical_weight * np.array(
            [len(asked & content_words(text)) / len(asked) for _, text in cut])
    return scores


def _finalists(cut: list[tuple[int, str]], scores: np.ndarray, count: int) -> list[int]:
    """The sentences the value-free view weighs: the best FINALISTS (or `count`) by the rest,
    a sentence that overlapping passages both hold counted once."""
    out: list[int] = []
    seen: set[str] = set()
    for j in np.argsort(-scores, kind="stable"):
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
    scores = _whole_scores(query, cut, encode, lexical_weight)
    if value_weight:
        finalists = _finalists(cut, scores, count)
        views = encode([query] + [without_values(cut[j][1], query) for j in finalists])
        weighed = np.full(len(cut), -np.inf)
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
