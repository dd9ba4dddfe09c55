"""The grounded reader's evidence: which sentences it reads, and how its reply copies them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from cogcore.prompts import READER_SYSTEM, Prompt
from retrieval.documents import Document
from retrieval.embedder import CachedEncoder
from retrieval.knowledge_base import Hit, KnowledgeBase
from service.conversation import standalone_question
from service.errors import InvalidRequest
from service.evidence_constraints import (
    CopyConstraint,
    EvidenceConstraint,
    copy_constraint,
    evidence_constraint,
    repeating,
)
from service.evidence_sentences import closest_sentences
from service.grounding import Grounded, Grounding, alternating, fit_evidence
from service.request_prompts import template_errors
from service.routing.router import Router
from service.settings import GroundingSettings
from tests.retrieval.fakes import HashingEncoder


def test_evidence_constraint_copies_the_evidence(tiny_llama_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    evidence = ["The capital of Elqui is Quisun.", "What is the capital of Elqui?"]
    constraint = evidence_constraint(tokenizer, evidence, {tokenizer.eos_token_id})

    def ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    anywhere = constraint.allowed([])
    assert set(ids(" the capital of Elqui is Quisun.")) <= anywhere, "restating the evidence"
    assert tokenizer.eos_token_id in anywhere
    assert not set(ids(" Zanzibar")) <= anywhere
    # Inside a word the evidence continues, only its continuation (or the end) may follow.
    name = ids(" Quisun")
    inside = [(a, b) for a, b in zip(name, name[1:], strict=False)
              if tokenizer.decode([b])[:1].isalnum()]
    assert inside, "the tiny tokenizer splits the name"
    a, b = inside[0]
    assert b in constraint.allowed([a])
    assert not set(ids(".")) & (constraint.allowed([a]) - constraint.successors[a])
    # Where the evidence ends a word, glue words and punctuation may follow too.
    period = ids(".")[0]
    assert period in constraint.allowed(name)


def test_copy_constraint_copies_one_sentence_from_a_word_to_its_end(
        tiny_llama_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    stop = tokenizer.eos_token_id
    evidence = ["Station > Boats\nThe capital of Elqui is Quisun. Elqui borders Varn."]

    def ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    def begins(constraint: CopyConstraint) -> set[str]:
        return {tokenizer.decode(run[i:]).split()[0]
                for run, at in zip(constraint.runs, constraint.starts, strict=True) for i in at}

    constraint = copy_constraint(tokenizer, evidence, {stop}, "What is the capital of Elqui?")
    copied = [tokenizer.decode(run) for run in constraint.runs]
    assert copied == [" the capital of Elqui is Quisun.", " Elqui borders Varn."], "no heading"
    assert begins(constraint) == {"Elqui", "is", "Quisun.", "borders"}, "no restating"
    assert stop not in constraint.allowed([]), "the reply copies something"
    reply = ids(" Elqui is")
    assert constraint.allowed(reply) == {ids(" Elqui is Quisun")[len(reply)]}
    assert constraint.allowed(ids(" Elqui is Quisun.")) == {stop}, "then it ends"
    assert len(constraint.allowed(ids(" Elqui"))) == 2, "either sentence goes on"
    # The answer of "Which country borders Varn?" is before "Varn"; the copy starts no later
    # than the first word new to the question.
    asked = copy_constraint(tokenizer, evidence, {stop}, "Which country borders Varn?")
    assert begins(asked) == {"the", "capital", "Elqui"}
    late = copy_constraint(tokenizer, ["Elqui opened a port in Varn in 1990."], {stop},
                           "Where did Elqui open a port?")
    assert begins(late) == {"Elqui", "opened"}, "not after the answer (' in 1990.')"
    every = copy_constraint(tokenizer, ["Elqui borders Varn."], {stop}, "Elqui borders Varn")
    assert every.allowed([]) == {every.runs[0][0]}, "all words asked: from the beginning"


# A Mistral-like chat template: roles alternate from a user turn after an optional system one.
STRICT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{% if not loop.first %}"
    "{{ raise_exception('system first') }}{% endif %}{% elif (m['role'] == 'user') != "
    "((loop.index0 - (messages[0]['role'] == 'system')) % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
    "[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}")


def metaspace_tokenizer() -> PreTrainedTokenizerFast:
    """A small SentencePiece-style (Metaspace) tokenizer, as Llama-2, Mistral and Gemma have:
    decoding one token drops its space."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    corpus = ["The capital of Elqui is Quisun.", "Elqui borders Varn.", "What is the capital?"]
    tok.train_from_iterator(corpus * 10, trainers.BpeTrainer(
        vocab_size=60, special_tokens=["<unk>", "</s>"], show_progress=False))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="</s>")
    tokenizer.chat_template = STRICT_TEMPLATE
    return tokenizer


def test_copy_constraint_reads_a_sentencepiece_tokenizer() -> None:
    tokenizer = metaspace_tokenizer()
    stop = tokenizer.eos_token_id
    evidence = ["The capital of Elqui is Quisun. Elqui borders Varn."]
    constraint = copy_constraint(tokenizer, evidence, {stop}, "What is the capital of Elqui?")
    begins = {tokenizer.decode(run[i:]).split()[0]
              for run, at in zip(constraint.runs, constraint.starts, strict=True) for i in at}
    assert begins == {"Elqui", "is", "Quisun.", "borders"}
    every = copy_constraint(tokenizer, ["Elqui borders Varn."], {stop}, "Elqui borders Varn")
    assert every.allowed([]) == {every.runs[0][0]}, "all words asked: from the beginning"


def test_the_history_is_dropped_before_any_passage() -> None:
    hits = [Hit(i, f"d{i}", f"Passage {i} " + "word " * 20, 1.0, {}) for i in range(2)]
    history = tuple({"role": r, "content": "turn " * 30} for r in ("user", "assistant") * 2)
    grounded = Grounded("facts", hits, query="Q?", system="Be brief.", history=history)

    def size(prompt: Prompt) -> int:
        return sum(len(m["content"].split()) for m in prompt.messages)

    whole = fit_evidence(grounded, size, 10_000)
    assert whole is not None and whole.history == history and len(whole.sources) == 2
    assert whole.prompt is not None and whole.prompt.messages[0]["content"] == (
        f"Be brief.\n\n{READER_SYSTEM}")
    budget = size(whole.prompt)
    fitted = fit_evidence(grounded, size, budget - 1)
    assert fitted is not None and len(fitted.sources) == 2
    assert fitted.history == history[2:], "the oldest exchange goes first, both its messages"
    bare = fit_evidence(grounded, size, budget - 4 * 30)
    assert bare is not None and len(bare.sources) == 2 and bare.history == ()
    one = fit_evidence(grounded, size, budget - 4 * 30 - 1)
    assert one is not None and one.sources == hits[:1] and one.history == ()


def test_the_kept_history_alternates_from_a_user_turn_for_strict_templates() -> None:
    def said(*roles: str) -> list[dict[str, str]]:
        return [{"role": r, "content": f"{r} {i}"} for i, r in enumerate(roles)]

    assert alternating(said("assistant", "user", "user", "assistant", "user")) == [
        {"role": "user", "content": "user 1\n\nuser 2"},
        {"role": "assistant", "content": "assistant 3"}]
    history = tuple(alternating(said("user", "assistant") * 3))
    tokenizer = metaspace_tokenizer()
    grounded = Grounded("facts", [Hit(0, "d0", "Passage.", 1.0, {})], query="Q?",
                        system="Be brief.", history=history)

    def size(prompt: Prompt) -> int:
        return len(prompt.render(tokenizer))  # the strict template raises on a bad order

    whole = fit_evidence(grounded, size, 10_000)
    assert whole is not None and whole.prompt is not None
    for budget in range(size(whole.prompt), 0, -7):
        fitted = fit_evidence(grounded, size, budget)
        if fitted is not None:
            assert fitted.history in (history[:0], history[2:], history[4:], history)
    odd = Prompt(({"role": "system", "content": "S"}, {"role": "assistant", "content": "A"},
                  {"role": "user", "content": "Q"}))
    with pytest.raises(InvalidRequest, match="chat template refuses"), template_errors():
        odd.render(tokenizer)


def test_cogcore_reader_selects_the_restate_reader_and_its_repetition_guard(
        tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    grounded = Grounded("facts", [Hit(0, "d0", "Elqui borders Varn.", 1.0, {})],
                        query="What borders Varn?", prompt=Prompt(()))
    assert GroundingSettings().reader == "copy"
    monkeypatch.setenv("COGCORE_READER", "restate")
    monkeypatch.setenv("COGCORE_NO_REPEAT_NGRAM", "5")
    settings = GroundingSettings()
    grounding = Grounding(None, None, settings, reader=settings.reader)  # type: ignore[arg-type]
    constraint = grounding.constraint(grounded, tokenizer, {tokenizer.eos_token_id})
    assert isinstance(constraint, EvidenceConstraint) and constraint.no_repeat == 5
    copying = Grounding(None, None, GroundingSettings(reader="copy"))  # type: ignore[arg-type]
    assert isinstance(copying.constraint(grounded, tokenizer, set()), CopyConstraint)


def test_evidence_constraint_never_repeats_a_reply_ngram(tiny_llama_dir: Path) -> None:
    """A reply that restarts the sentence it copies ("the capital of the capital of") cannot
    complete the n-gram twice; the end of the reply stays allowed."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    evidence = ["The capital of Elqui is Quisun.", "What is the capital of Elqui?"]
    stop = tokenizer.eos_token_id
    reply = list(tokenizer(" the capital of the capital", add_special_tokens=False)["input_ids"])
    of = reply[2]
    free = evidence_constraint(tokenizer, evidence, {stop})
    guarded = evidence_constraint(tokenizer, evidence, {stop}, no_repeat=3)
    assert of in free.allowed(reply)
    assert of not in guarded.allowed(reply)
    assert stop in guarded.allowed(reply)
    assert guarded.allowed(reply[:2]) == free.allowed(reply[:2]), "nothing repeated yet"
    # Inside a word nothing is banned: the name may be copied again in full.
    name = list(tokenizer(" Quisun", add_special_tokens=False)["input_ids"])
    assert len(name) >= 3 and not tokenizer.decode(name[-1:])[:1].isspace()
    again = name + list(tokenizer(" is", add_special_tokens=False)["input_ids"]) + name[:-1]
    assert name[-1] in guarded.allowed(again)


def test_repeating_finds_the_tokens_that_close_a_seen_ngram() -> None:
    assert repeating([1, 2, 3, 1, 2], 3) == {3}
    assert repeating([1, 2, 3, 1, 2], 2) == {3}
    assert repeating([1, 2, 1, 2, 1], 2) == {2}
    assert repeating([1, 2, 3, 1, 2], 0) == frozenset()
    assert repeating([1, 2], 3) == frozenset()
    assert repeating([4, 5, 4], 1) == {4, 5}
    assert repeating([7, 7, 7], 2) == {7}


def _hit(document_id: str, text: str) -> Hit:
    return Hit(chunk_id=0, document_id=document_id, text=text, score=1.0, metadata={})


def test_the_questions_words_break_a_near_tie_of_the_embedding() -> None:
    """The embedding (faked: it prefers Apia a little) against the question's own words."""
    query = "What is the capital of American Samoa?"
    hits = [_hit("samoa", "The capital of Samoa is Apia. Samoa lies in Oceania."),
            _hit("american-samoa", "The capital of American Samoa is Bishkek.")]
    cosine = {query: 1.0, "The capital of Samoa is Apia.": 0.80, "Samoa lies in Oceania.": 0.3,
              "The capital of American Samoa is Bishkek.": 0.75}

    def encode(texts: list[str]) -> np.ndarray:
        return np.array([[cosine[t]] for t in texts])

    by_embedding = closest_sentences(query, hits, encode, 1, 0.0, value_weight=0.0)
    assert [(h.document_id, h.text) for h in by_embedding] == [
        ("samoa", "The capital of Samoa is Apia.")]
    with_words = closest_sentences(query, hits, encode, 1, 0.25, value_weight=0.0)
    assert [(h.document_id, h.text) for h in with_words] == [
        ("american-samoa", "The capital of American Samoa is Bishkek.")]
    both = closest_sentences(query, hits, encode, 2, 0.25, value_weight=0.0)
    assert [h.document_id for h in both] == ["samoa", "american-samoa"], "passage order kept"


class RecordingEncoder(HashingEncoder):
    """The hashing encoder, remembering every text it embedded."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        return super().encode(texts)


def test_a_grounded_question_is_embedded_once(tmp_path: Path) -> None:
    """Route, abstention check, hybrid search and evidence sentences all read one vector."""
    inner = RecordingEncoder()
    encoder = CachedEncoder(inner)
    query = "What is the capital of Elqui?"
    with KnowledgeBase.open(tmp_path / "kb", embedder=encoder) as kb:
        kb.upsert([Document("elqui", "The capital of Elqui is Quisun. Elqui lies in the sea."),
                   Document("peru", "The capital of Peru is Lima.")])
        router = Router(encoder, retrieval_threshold=-1.0)  # a store match routes to facts
        grounding = Grounding(kb, router, GroundingSettings(abstain_min_score=-1.0))
        inner.texts.clear()
        grounded = grounding.ground([query])
    assert grounded.route == "facts" and not grounded.abstained
    assert [h.text for h in grounded.sources] == ["The capital of Elqui is Quisun."]
    assert inner.texts.count(query) == 1


def test_a_code_the_store_holds_is_looked_up_though_the_embedding_is_far(
        tmp_path: Path) -> None:
    """The dense bar alone would refuse an inverse question; a code the store holds does not."""
    encoder = HashingEncoder()
    with KnowledgeBase.open(tmp_path / "kb", embedder=encoder) as kb:
        kb.upsert([Document("peru", "The currency code of Peru is PEN."),
                   Document("chile", "The currency code of Chile is CLP.")])
        router = Router(encoder, retrieval_threshold=-1.0)  # every question routes to facts
        grounding = Grounding(kb, router, GroundingSettings(abstain_min_score=0.99))
        held = grounding.ground(["Which country uses PEN?"])
        assert not held.abstained and held.sources[0].document_id == "peru"
        assert grounding.ground(["Which country uses XYZ?"]).abstained, "a code nobody holds"
        assert grounding.ground(["Which country uses pens?"]).abstained, "no code at all"


def test_a_follow_up_whose_rewrite_passes_the_size_limit_is_searched_as_written(
        tmp_path: Path) -> None:
    encoder = HashingEncoder()
    with KnowledgeBase.open(tmp_path / "kb", embedder=encoder) as kb:
        kb.upsert([Document("peru", "The currency code of Peru is PEN.")])
        router = Router(encoder, threshold=0.0, retrieval_threshold=-1.0)  # all to facts
        grounding = Grounding(kb, router, GroundingSettings(abstain_min_score=-1.0))
        short = grounding.ground(["What is the capital of Peru?", "What is its currency code?"])
        assert short.query == "What is the currency code of Peru?"
        long_turn = "please " * 581 + "what is its currency code?"
        turns = ["What is the capital of Peru?", long_turn]
        rewritten = standalone_question(turns, kb.knows)
        assert len(long_turn.encode()) <= kb.settings.max_query_bytes < len(rewritten.encode())
        assert grounding.router.route(long_turn).route == "facts"  # so it would be rewritten
        grounded = grounding.ground(turns)
        assert grounded.query == long_turn and grounded.route == "facts"


def test_another_name_of_a_stored_entity_is_answered_under_its_own_name(
        tmp_path: Path) -> None:
    encoder = HashingEncoder()
    with KnowledgeBase.open(tmp_path / "kb", embedder=encoder) as kb:
        kb.upsert([Document("dk", "Denmark is also called Danmark. The currency code of "
                                  "Denmark is DKK.", {"name": "Denmark", "aliases": ["Danmark"]}),
                   Document("se", "The currency code of Sweden is SEK.", {"name": "Sweden"})])
        router = Router(encoder, threshold=0.0)  # every question routes to facts
        grounding = Grounding(kb, router, GroundingSettings(abstain_min_score=0.99))
        grounded = grounding.ground(["Which currency does Danmark use?"])
        assert not grounded.abstained and grounded.query == "Which currency does Denmark use?"
        assert [h.text for h in grounded.sources] == ["The currency code of Denmark is DKK."]
        assert grounding.ground(["Which currency does Sweden use?"]).abstained, (
            "its own name is held to the embedding bar as before")
