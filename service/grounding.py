"""Facts from the store: route a query, retrieve its evidence, build the reader prompt, or abstain.

For the `facts` route the evidence is the knowledge base's hybrid search, read through the
shared reader prompt (`cogcore.prompts`). When the evidence falls short, the service abstains
with a fixed reply instead of letting the core recall freely. The bar was chosen by measurement
(`benchmarks/facts_eval.py`, docs/facts.md): the best passage must be close to the question in
embedding space, and no name in the question (a capitalized word) may be one the store has never
seen: a question about an invented place is otherwise close enough to a real country's page.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from cogcore.prompts import Prompt, reader_prompt
from retrieval.embedder import CachedEncoder
from service.conversation import (
    OPENERS,
    canonical_names,
    holds,
    standalone_question,
    value_names,
)
from service.evidence_constraints import (
    CopyConstraint,
    EvidenceConstraint,
    copy_constraint,
    evidence_constraint,
)
from service.evidence_sentences import (
    EXACT,
    VALUE_FREE_WEIGHT,
    closest_sentences,  # noqa: F401 - benchmarks/evidence_eval.py imports it from here
    holding,
    keep_best,
    sentence_scores,
    sentence_texts,
    unanchored,
    value_free_texts,
)
from service.grounding_batch import MicroBatcher
from service.question_likelihood import QuestionScorer, contenders, reranked
from service.routing.questions import Route
from service.routing.router import Router
from service.settings import GroundingSettings

if TYPE_CHECKING:
    from retrieval.knowledge_base import Hit, KnowledgeBase

Policy = Literal["auto", "always", "never"]
Reader = Literal["copy", "restate"]
NAME = re.compile(r"\b[A-Z][\w'-]*")
# Below this P(facts) by the router's classifier, a follow-up's own form asks for no fact
# ("Make it rhyme.": 0.08) and it is not rewritten. Lower than the route threshold: terse
# follow-ups of fact ("What about Fermium?") score 0.36 and up on the tune half.
FOLLOW_UP_MIN_P_FACTS = 0.3
# A code or a number a question gives (`EXACT`: "PEN", "81", ".by", "+352") is an exact
# lookup, which the embedding (blind to such tokens) scores low, so the lexical match decides.
# A name given as a value ("Suva") is as exact when no other document among its best BM25
# matches holds it.
VALUE_HOLDERS = 3
# How deep the lexical lookup of a question's names and codes goes when the search found no
# page holding them (`Grounding._anchored`): BM25 ranks "West Island" fifth, below four pages
# holding "West" and "Island" apart (well under a millisecond at 20).
LOOKUP_DEPTH = 20


@dataclass(frozen=True)
class Grounded:
    """The decision for one request: its route, evidence and prompt (None: as the user wrote).

    `query` is the question that was routed and searched: the user's last turn, rewritten to
    stand alone when it follows up on an earlier one.
    """

    route: Route
    sources: list[Hit]
    abstained: bool = False
    prompt: Prompt | None = None
    query: str = ""
    # The chat around the question, kept in the reader prompt: the client's system prompt and
    # the earlier user and assistant messages (at most HISTORY_MESSAGES, oldest first).
    system: str | None = None
    history: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class Ask:
    """What one request asks `Grounding.ground_batch`: the arguments of `Grounding.ground`."""

    turns: tuple[str, ...]
    policy: Policy = "auto"
    system: str | None = None
    history: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class _Evidence:
    """A question routed to facts and its passages, before the evidence sentences are chosen."""

    query: str
    hits: list[Hit]
    # The passages' sentences and their scores (`service.evidence_sentences`), once weighed.
    sentences: list[tuple[int, str]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


# Earlier chat messages the reader prompt keeps at most (two exchanges of a chat), before the
# context budget drops the oldest: a follow-up's reply reads the turns it follows.
HISTORY_MESSAGES = 4


def fit_evidence(grounded: Grounded, size: Callable[[Prompt], int], budget: int
                 ) -> Grounded | None:
    """The reader prompt with as much of the history and the best passages as fit in `budget`
    tokens.

    The history goes first, from its oldest exchange (a user message and the reply to it, so
    the kept history still starts with a user turn, as strict chat templates require); then
    passages, from the worst up. Nothing is cut, and the sources list names exactly the
    passages the model reads. None when not even the best passage fits alone.
    """
    history = grounded.history
    starts = [i for i, m in enumerate(history) if m["role"] == "user"] + [len(history)]
    for n in range(len(grounded.sources), 0, -1):
        texts = [h.text for h in grounded.sources[:n]]
        for start in starts:
            prompt = reader_prompt(grounded.query, texts, grounded.system, history[start:])
            if size(prompt) <= budget:
                return replace(grounded, sources=grounded.sources[:n], prompt=prompt,
                               history=history[start:])
    return None


def alternating(history: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """The chat's earlier messages as exchanges: a user message, then the assistant's reply.

    Strict chat templates (Mistral, Llama-2) refuse a chat whose roles do not alternate from a
    user turn, and the reader's question (a user message) follows the history. So messages of
    one role in a row (a blank reply left out between them) are joined, and an assistant
    message before the first user one, or a user message with no reply after the last
    exchange, is left out.
    """
    merged: list[dict[str, str]] = []
    for m in history:
        if merged and merged[-1]["role"] == m["role"]:
            merged[-1] = {"role": m["role"],
                          "content": merged[-1]["content"] + "\n\n" + m["content"]}
        else:
            merged.append({"role": m["role"], "content": m["content"]})
    if merged and merged[0]["role"] != "user":
        merged = merged[1:]
    if merged and merged[-1]["role"] == "user":
        merged = merged[:-1]
    return merged


def names(text: str) -> list[str]:
    """Capitalized words of `text`, an opening word aside ("What", "What's", "I'm", "Tell"):
    the names a question hinges on."""
    words = NAME.findall(text)
    return [w for i, w in enumerate(words)
            if not (i == 0 and w.lower().split("'")[0] in OPENERS)]


class Grounding:
    """Routes, retrieves and decides whether the evidence is enough to answer."""

    def __init__(self, kb: KnowledgeBase, router: Router, settings: GroundingSettings,
                 reader: Reader = "copy", value_weight: float = VALUE_FREE_WEIGHT,
                 scorer: QuestionScorer | None = None) -> None:
        self.kb = kb
        self.router = router
        self.settings = settings
        # "copy": the reply copies one evidence sentence from a word the core chooses;
        # "restate": it may restate the question with the evidence's tokens (the earlier
        # reader). Chosen on benchmarks/paraphrase_eval.py's tune half (docs/facts.md).
        self.reader = reader
        # The evidence sentence's score without its values, beside the whole sentence's
        # (`service.evidence_sentences`; 0: the whole sentence and the question's words only).
        self.value_weight = value_weight
        # The served model's log P(question | sentence), which re-ranks the best two evidence
        # sentences (`service.question_likelihood`; the app sets it once its engine runs).
        self.scorer = scorer
        # Concurrent requests' grounding, batched on one worker thread (`aground`).
        self.batcher = MicroBatcher(self.ground_batch, settings.batch_window_ms / 1000,
                                    name="cogcore-grounding")

    def constraint(self, grounded: Grounded, tokenizer: Any, stop_ids: Iterable[int]
                   ) -> CopyConstraint | EvidenceConstraint | None:
        """What a reply to `grounded` may say next; None when it is free (no evidence read,
        or `constrain_to_evidence` off)."""
        if grounded.prompt is None or not self.settings.constrain_to_evidence:
            return None
        evidence = [hit.text for hit in grounded.sources]
        if self.reader == "copy":
            return copy_constraint(tokenizer, evidence, stop_ids, grounded.query)
        return evidence_constraint(tokenizer, [*evidence, grounded.query], stop_ids,
                                   self.settings.no_repeat_ngram)

    def ground(self, turns: Sequence[str], policy: Policy = "auto", system: str | None = None,
               history: Sequence[dict[str, str]] = ()) -> Grounded:
        """Route the last of the user's `turns` and, for facts, find its evidence (blocking).

        A follow-up is first rewritten to stand alone from the earlier turns
        (`service.conversation`); routing, search and evidence see only that standalone
        question. The reader prompt also keeps the client's `system` prompt and the last
        HISTORY_MESSAGES of the chat's earlier messages (`history`, oldest first).
        """
        result = self.ground_batch([Ask(tuple(turns), policy, system, tuple(history))])[0]
        if isinstance(result, Exception):
            raise result
        return result

    async def aground(self, turns: Sequence[str], policy: Policy = "auto",
                      system: str | None = None, history: Sequence[dict[str, str]] = ()
                      ) -> Grounded:
        """`ground`, off the event loop, batched with the requests that arrive beside it."""
        return await self.batcher.submit(Ask(tuple(turns), policy, system, tuple(history)))

    def ground_batch(self, asks: Sequence[Ask]) -> list[Grounded | Exception]:
        """`ground` for several requests at once: what each needs embedded (its question, then
        its evidence sentences) is embedded in one encoder call per stage, into the shared
        cache that each request's own steps then read. A request's error is its own result."""
        results = [_isolated(self._question, ask) for ask in asks]
        self._prefetch([r for r in results if isinstance(r, str)])
        results = [_isolated(self._retrieve, ask, r) if isinstance(r, str) else r
                   for ask, r in zip(asks, results, strict=True)]
        found = [r for r in results if isinstance(r, _Evidence)]
        if self.settings.evidence_sentences:
            self._prefetch([text for r in found for text in sentence_texts(r.query, r.hits)])
            if self.value_weight:  # a request's error is raised again where it reads them
                views = [_isolated(self._value_free_texts, r) for r in found]
                self._prefetch([text for v in views if isinstance(v, list) for text in v])
            results = self._rerank([_isolated(self._weigh, r) if isinstance(r, _Evidence)
                                    else r for r in results])
        return [_isolated(self._finish, ask, r) if isinstance(r, _Evidence) else r
                for ask, r in zip(asks, results, strict=True)]

    def _prefetch(self, texts: list[str]) -> None:
        """Embed `texts` in one call into the shared cache (nothing to do without one)."""
        encoder = self.kb.embedder
        if texts and isinstance(encoder, CachedEncoder) and encoder.max_entries != 0:
            with contextlib.suppress(Exception):  # raised again, per request, where it is read
                encoder.encode(texts)

    def _question(self, ask: Ask) -> Grounded | str:
        """The question to look up (a follow-up made standalone), or the answer not to."""
        query = ask.turns[-1] if ask.turns else ""
        if ask.policy == "never" or not query.strip():
            return Grounded("reasoning", [], query=query)
        if ask.policy == "auto" and len(query.encode()) > self.kb.settings.max_query_bytes:
            # A long text to work on, not a question to look up.
            return Grounded("reasoning", [], query=query)
        if len(ask.turns) > 1 and self.settings.resolve_follow_ups:
            query = self._standalone(ask.turns)
        return query

    def _retrieve(self, ask: Ask, query: str) -> Grounded | _Evidence:
        """Route `query`, find its passages, or abstain when they fall short."""
        s = self.settings
        dense = self.kb.search(query, k=1, mode="dense")
        best = dense[0].score if dense else 0.0
        if ask.policy == "auto" and self.router.route(query, best).route == "reasoning":
            return Grounded("reasoning", [], query=query)
        named = names(query)
        unknown = self.kb.unknown_terms(" ".join(named)) if named else []
        unknown = [term for term in unknown if term != self._ordinary_opener(query)]
        if len(unknown) > s.abstain_max_unknown_names:
            return Grounded("facts", [], abstained=True, query=query)
        hits = self.kb.search(query, k=s.retrieval_k, mode=s.retrieval_mode)
        # Close enough to answer: near in embedding space, or an exact match the embedding
        # cannot see: a code or number the store holds, or a name its best document gives
        # its entity ("Danmark" for Denmark).
        canonical = canonical_names(query, hits[0].metadata) if hits else query
        if not (best >= s.abstain_min_score or self._holds_exact_term(query)
                or canonical != query or (hits and self._gives_a_value(query, hits[0]))):
            return Grounded("facts", [], abstained=True, query=query)
        return _Evidence(canonical, self._anchored(canonical, hits))

    def _anchored(self, query: str, hits: list[Hit]) -> list[Hit]:
        """`hits`, or, when they are about nothing the question names or gives
        (`service.evidence_sentences.unanchored`), the pages a lexical lookup of its names and
        codes finds holding them ("West Island" -> Cocos (Keeling) Islands); `hits` when
        none does (the evidence check then abstains)."""
        terms = unanchored(query, hits)
        if not terms:
            return hits
        found = self.kb.search(" ".join(terms), k=LOOKUP_DEPTH, mode="bm25")
        return holding(terms, found)[:self.settings.retrieval_k] or hits

    def _finish(self, ask: Ask, found: _Evidence) -> Grounded:
        """The reader prompt over the evidence sentences nearest the question."""
        query, hits = found.query, found.hits
        if self.settings.evidence_sentences:
            hits = keep_best(hits, found.sentences, found.scores, self.settings.evidence_sentences)
        exchanges = alternating(ask.history)
        kept = tuple(exchanges[len(exchanges) - HISTORY_MESSAGES:]) if HISTORY_MESSAGES else ()
        return Grounded("facts", hits, query=query, system=ask.system, history=kept,
                        prompt=reader_prompt(query, [h.text for h in hits], ask.system, kept))

    def _ordinary_opener(self, query: str) -> str | None:
        """The question's first word, lowercased, when the embedder's vocabulary holds it
        whole ("About how big is Nepal?", "Quick one: ..."): a word that opens a sentence, not
        a name, though the store never uses it. An invented name is not one token of it
        ("zorblaxia": 4); a real place the store lacks may be, and is then judged by the
        embedding bar alone. Found on the author's own phrasings (docs/facts.md)."""
        count = getattr(self.kb.embedder, "count_tokens", None)
        first = query.split(maxsplit=1)[0].strip(",.:;!?").lower() if query.split() else ""
        return first if count is not None and first.isalpha() and count(first) == 1 else None

    def _holds_exact_term(self, query: str) -> bool:
        """Whether `query` gives a code or number that the store holds."""
        terms = EXACT.findall(query)
        return bool(terms) and self.kb.knows(" ".join(terms))

    def _gives_a_value(self, query: str, hit: Hit) -> bool:
        """Whether `query` asks which entity of `hit`'s kind holds a name that `hit` alone
        gives ("Which country is governed from Suva?"): a rare value of one document is as
        exact a lookup as a code. A name that other documents also hold ("US") is not."""
        for name in value_names(query, hit.text, hit.metadata):
            found = self.kb.search(name, k=VALUE_HOLDERS, mode="bm25")
            if {h.document_id for h in found if holds(h.text, name)} == {hit.document_id}:
                return True
        return False

    def _standalone(self, turns: Sequence[str]) -> str:
        """The last turn resolved against the earlier ones, or as written if that is too long."""
        limit = self.kb.settings.max_query_bytes
        if len(turns[-1].encode()) > limit:
            return turns[-1]  # refused by the search as too long, rewritten or not
        if self.router.probabilities([turns[-1]])[0] < FOLLOW_UP_MIN_P_FACTS:
            return turns[-1]  # "Make it rhyme.": its form asks for no fact to look up
        # Each name is looked up once per request, however often the rules ask.
        query = standalone_question(turns, functools.cache(self.kb.knows))
        return query if len(query.encode()) <= limit else turns[-1]

    def _value_free_texts(self, found: _Evidence) -> list[str]:
        """What `_weigh` embeds second for `found`: the finalists' views."""
        return value_free_texts(found.query, found.hits, self.kb.embedder.encode,
                                self.settings.evidence_sentences,
                                self.settings.evidence_lexical_weight)

    def _weigh(self, found: _Evidence) -> _Evidence | Grounded:
        """`found` with its sentences scored by the embedding and the question's words."""
        cut, scores = sentence_scores(found.query, found.hits, self.kb.embedder.encode,
                                      self.settings.evidence_sentences,
                                      self.settings.evidence_lexical_weight, self.value_weight)
        if cut and not any(np.isfinite(scores)):
            # No sentence could answer (`service.evidence_sentences.answering`): another
            # entity's page, or none with the value asked for. No reply beats a wrong citation.
            return Grounded("facts", [], abstained=True, query=found.query)
        return replace(found, sentences=cut, scores=scores)

    def _rerank(self, results: list[Any]) -> list[Any]:
        """One evidence sentence chosen among the best two by the served model's likelihood
        of the question as well, for every request of the batch in one engine pass; the
        embedding's choice where the two are far apart, or without a scorer."""
        if self.scorer is None or not self.settings.evidence_rerank \
                or self.settings.evidence_sentences != 1:
            return results
        picks = {i: contenders(r.scores, [t for _, t in r.sentences])
                 for i, r in enumerate(results) if isinstance(r, _Evidence)}
        picks = {i: p for i, p in picks.items() if p}
        means = self.scorer([(results[i].query, [results[i].sentences[j][1] for j in p])
                             for i, p in picks.items()]) if picks else None
        out = list(results)
        for (i, p), m in zip(picks.items(), means or [], strict=False):
            out[i] = replace(results[i], scores=reranked(results[i].scores, p, m))
        return out


def _isolated(step: Callable[..., Any], *args: Any) -> Any:
    """`step(*args)`, or the exception it raised: one request's error is not its batch's."""
    try:
        return step(*args)
    except Exception as exc:  # noqa: BLE001 - handed to that request's caller, who raises it
        return exc
