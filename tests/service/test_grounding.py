"""The grounded reader's evidence: which sentences it reads, and the tokens it may answer with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from transformers import AutoTokenizer

from retrieval.knowledge_base import Hit
from service.grounding import closest_sentences, evidence_vocabulary


def test_evidence_vocabulary_holds_the_evidence_and_not_other_words(tiny_llama_dir: Path
                                                                     ) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    allowed = evidence_vocabulary(
        tokenizer, ["The capital of Elqui is Quisun.", "What is the capital of Elqui?"],
        {tokenizer.eos_token_id})

    def ids(text: str) -> set[int]:
        return set(tokenizer(text, add_special_tokens=False)["input_ids"])

    assert ids(" the capital of Elqui is Quisun.") <= allowed, "the reply restating the evidence"
    assert ids("Quisun") <= allowed, "a name at a word start without its space"
    assert tokenizer.eos_token_id in allowed
    assert not ids(" Zanzibar") <= allowed
    assert len(allowed) < len(tokenizer) / 2


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

    by_embedding = closest_sentences(query, hits, encode, 1, 0.0)
    assert [(h.document_id, h.text) for h in by_embedding] == [
        ("samoa", "The capital of Samoa is Apia.")]
    with_words = closest_sentences(query, hits, encode, 1, 0.25)
    assert [(h.document_id, h.text) for h in with_words] == [
        ("american-samoa", "The capital of American Samoa is Bishkek.")]
    both = closest_sentences(query, hits, encode, 2, 0.25)
    assert [h.document_id for h in both] == ["samoa", "american-samoa"], "passage order kept"
