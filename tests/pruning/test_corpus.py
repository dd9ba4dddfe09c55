"""The general prose corpus: prose only, deduplicated, fixed order, no perplexity text in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.data import general_text
from evaluation.fictional import fictional_entities
from pruning import corpus

PROSE = ("The store keeps every document it is given and answers a question from the passages "
         "that match it best, citing each one.")
OTHER = ("A reader that cannot recall a fact has to find it in the context, which is exactly "
         "what the service wants it to do.")


def _module(directory: Path, name: str, docs: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    body = "\n\n".join(f"def f{i}():\n    '''{doc}'''\n" for i, doc in enumerate(docs))
    (directory / name).write_text(body)


@pytest.fixture()
def fake_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stdlib of a few modules instead of the real one (the real build takes minutes)."""
    reference = next(p for p in general_text().split("\n\n") if len(p.split()) > 30)
    _module(tmp_path / "pkg", "a.py", [PROSE, f"{OTHER}\n\n>>> f(1)\n2", PROSE,
                                       "Short line.", "x : int\n    The value."])
    _module(tmp_path / "pkg", "b.py", [f"Summary.\n\n{reference}"])
    _module(tmp_path / "pydoc_data", "topics.py", [OTHER.replace("reader", "model")])
    _module(tmp_path / "pkg" / "tests", "test_a.py", [OTHER.replace("reader", "parser")])
    monkeypatch.setattr(corpus, "_roots", lambda: [tmp_path])
    return tmp_path


def test_build_keeps_prose_once_and_drops_code_tests_and_perplexity_text(fake_roots: Path) -> None:
    built = corpus._build()
    assert sorted(built) == sorted([PROSE, OTHER]), built


def test_a_paragraph_sharing_a_run_of_words_with_a_perplexity_text_is_dropped(
    fake_roots: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(corpus, "perplexity_texts", lambda: [general_text(), "x " + OTHER])
    assert corpus._build() == [PROSE]


def test_perplexity_texts_include_the_evaluation_text_and_its_module_is_skipped() -> None:
    assert general_text() in corpus.perplexity_texts()
    assert "pydoc_data" in corpus.SKIP_PARTS and "pydoc_data" in corpus.EXCLUDED_MODULES


def test_order_is_fixed_and_max_chars_takes_a_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    paragraphs = tuple(f"Paragraph number {i} says something long enough." for i in range(50))
    monkeypatch.setattr(corpus, "_all_paragraphs", lambda: paragraphs)
    assert corpus.general_corpus() == list(paragraphs)
    part = corpus.general_corpus(200)
    assert part == list(paragraphs[: len(part)]) and sum(map(len, part)) <= 200 < sum(
        map(len, paragraphs[: len(part) + 1]))


def test_knowledge_base_texts_hold_real_entities_only() -> None:
    texts = corpus.knowledge_base_texts()
    assert len(texts) > 200 and any("The capital of France is Paris." in t for t in texts)
    joined = "\n".join(texts)
    invented = [e.name for e in fictional_entities()]
    assert not [name for name in invented if f" {name} " in joined or f"{name} is" in joined]


def test_prompt_texts_hold_the_reader_scaffolding_and_no_evaluation_item(
    tiny_llama_dir: Path,
) -> None:
    from transformers import AutoTokenizer

    from cogcore.prompts import READER_PREFIX, READER_SYSTEM

    texts = corpus.prompt_texts(AutoTokenizer.from_pretrained(tiny_llama_dir))
    rendered = texts[-1]
    assert READER_SYSTEM in rendered and rendered.endswith(READER_PREFIX)
    assert "Question: Which one is it?" in rendered and "Context:\n[1] " in rendered


def test_english_words_come_in_their_running_text_forms_most_frequent_first() -> None:
    words = corpus.english_words(50)
    assert len(words) == 50 * len(corpus.WORD_FORMS)
    assert words[0][0] == " the" and words[0][1] > 0
    assert words[1][0] == " The" and words[2][0] == "The"
    lower = [weight for form, weight in words[:: len(corpus.WORD_FORMS)]]
    assert lower == sorted(lower, reverse=True)  # most frequent first
