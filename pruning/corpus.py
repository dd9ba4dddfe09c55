"""General English prose that is on every machine after `make install`, offline.

The prose paragraphs of the docstrings of the Python standard library and of the installed
packages (module, class and function docstrings, read with `ast`: nothing is imported). Code,
doctests, parameter tables and short lines are dropped; paragraphs are deduplicated and put in a
fixed pseudo-random order (a hash of their text), so any prefix is a sample of the whole and the
same packages give the same corpus on every machine, whatever their paths.

The evaluation's perplexity texts never enter it: the modules they are drawn from are skipped
(`pydoc_data`, the language reference that `evaluation.data.general_text` reads), and any
paragraph that shares a run of `SHINGLE` words with a perplexity text is dropped.

API (a vocabulary keep-set and the least-squares refit both read it):
- `general_corpus(max_chars=None) -> list[str]`: prose paragraphs, at most `max_chars` in all.
- `knowledge_base_texts() -> list[str]`: the default knowledge base's documents, generated
  from `cogcore.facts` as `retrieval.default_kb` does (real entities only).
- `prompt_texts(tokenizer) -> list[str]`: the scaffolding every served request carries (the
  reader prompt of `cogcore.prompts` around two knowledge-base documents, chat template included).
- `perplexity_texts() -> list[str]`: the texts the evaluation measures perplexity on.
- `disjoint_from_perplexity(texts) -> list[str]`: `texts` less those sharing a run of `SHINGLE`
  words with a perplexity text.
- `english_words(n) -> list[tuple[str, float]]`: the `n` most frequent English words (wordfreq's
  lists, drawn from subtitles, news, books, web text and more: the everyday English the docstrings
  lack), each as it appears in running text with its share of the word's frequency.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import sys
import sysconfig
import warnings
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from pathlib import Path

from cogcore.paths import artifacts_dir

SHINGLE = 8  # words: a paragraph sharing this many consecutive words with a perplexity text goes
MIN_WORDS = 12
MAX_FILE_BYTES = 1_000_000
# Modules never read: the evaluation's perplexity text (pydoc_data), tests, this project's own.
SKIP_PARTS = frozenset({"pydoc_data", "test", "tests", "testing", "site-packages", "__pycache__",
                        "idle_test", "cogcore", "pruning", "evaluation", "retrieval", "service",
                        "cli", "loadtest"})
EXCLUDED_MODULES = ("pydoc_data",)
_CODE = re.compile(r">>>|^\s*[$%]|[{};]|\w+\(.*\)\s*$|^\s*[-=*~^]{3,}\s*$|^\s*:\w+", re.M)
_FIELD = re.compile(r"^\s*\w+\s*:\s*\S", re.M)  # numpy/Google "name : type" / "Args:" lines


# How a word appears in running text: after a space in lower case, capitalized after a space
# (names, titles), capitalized at a line's start. Shares fixed a priori, not tuned.
WORD_FORMS = ((" {}", 0.8), (" {}", 0.1), ("{}", 0.1))


def english_words(n: int) -> list[tuple[str, float]]:
    """The `n` most frequent English words in their running-text forms, with frequencies."""
    from wordfreq import top_n_list, word_frequency

    out = []
    for word in top_n_list("en", n):
        frequency = word_frequency(word, "en")
        for (form, share), text in zip(WORD_FORMS, (word, word.capitalize(), word.capitalize()),
                                       strict=True):
            out.append((form.format(text), frequency * share))
    return out


def perplexity_texts() -> list[str]:
    """Every text the evaluation measures perplexity on (`evaluation.data`)."""
    from evaluation import data

    listed = getattr(data, "perplexity_texts", None)
    if listed is None:
        return [data.general_text()]
    texts = listed()
    return list(texts.values()) if isinstance(texts, dict) else list(texts)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _shingles(words: list[str]) -> Iterator[int]:
    for start in range(max(0, len(words) - SHINGLE + 1)):
        yield hash(" ".join(words[start : start + SHINGLE]))


def _prose(block: str) -> str | None:
    """`block` as one line when it is a prose paragraph, else None."""
    lines = block.splitlines()
    if not lines or lines[0].startswith((" ", "\t")) or _CODE.search(block) or (
            _FIELD.search(block) and len(lines) > 1):
        return None
    text = " ".join(block.split())
    words = text.split()
    if len(words) < MIN_WORDS or not text[0].isupper() or text[-1] not in ".:!?":
        return None
    letters = sum(c.isalpha() or c == " " for c in text)
    if letters < 0.85 * len(text) or not text.isascii():
        return None
    return text


def _docstrings(path: Path) -> Iterator[str]:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, OSError, RecursionError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node)
            if doc:
                yield doc


def _roots() -> list[Path]:
    paths = sysconfig.get_paths()
    roots = [Path(paths["stdlib"]), Path(paths["purelib"]), Path(paths["platlib"])]
    unique: list[Path] = []
    for root in roots:
        if root.is_dir() and root not in unique:
            unique.append(root)
    return unique


def _sources() -> Iterator[Path]:
    for root in _roots():
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).parts
            if not SKIP_PARTS.intersection(parts[:-1]) and not parts[0].startswith(
                    EXCLUDED_MODULES):
                yield path


def _fingerprint() -> str:
    """What the corpus depends on: Python's version, the installed distributions, the rules."""
    dists = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    rules = [SHINGLE, MIN_WORDS, MAX_FILE_BYTES, sorted(SKIP_PARTS), _CODE.pattern,
             _FIELD.pattern, hashlib.sha256("\n".join(perplexity_texts()).encode()).hexdigest()]
    blob = json.dumps([sys.version_info[:2], dists, rules])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _perplexity_shingles() -> set[int]:
    return {s for text in perplexity_texts() for s in _shingles(_words(text))}


def disjoint_from_perplexity(texts: list[str]) -> list[str]:
    """`texts` less any that shares a run of `SHINGLE` words with a perplexity text."""
    excluded = _perplexity_shingles()
    return [text for text in texts if excluded.isdisjoint(_shingles(_words(text)))]


def _build() -> list[str]:
    excluded = _perplexity_shingles()
    seen: set[str] = set()
    for path in _sources():
        for doc in _docstrings(path):
            for block in re.split(r"\n\s*\n", doc):
                text = _prose(block)
                if text is None or text in seen:
                    continue
                if not excluded.isdisjoint(_shingles(_words(text))):
                    continue
                seen.add(text)
    return sorted(seen, key=lambda t: hashlib.sha256(t.encode()).digest())


@cache
def _all_paragraphs() -> tuple[str, ...]:
    cache_file = artifacts_dir() / "cache" / f"general-corpus-{_fingerprint()}.json"
    if cache_file.is_file():
        return tuple(json.loads(cache_file.read_text()))
    paragraphs = _build()
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_name(f"{cache_file.stem}.{os.getpid()}.partial")  # one per writer
    partial.write_text(json.dumps(paragraphs))
    partial.replace(cache_file)
    return tuple(paragraphs)


def general_corpus(max_chars: int | None = None) -> list[str]:
    """Prose paragraphs in a fixed order, at most `max_chars` characters in all (None: every one).

    Built once per set of installed packages (a few minutes on two cores), then read from
    `artifacts/cache/`.
    """
    out, total = [], 0
    for text in _all_paragraphs():
        if max_chars is not None and total + len(text) > max_chars:
            break
        out.append(text)
        total += len(text)
    return out


def knowledge_base_texts() -> list[str]:
    """The default knowledge base's documents (one per real entity of `cogcore.facts`)."""
    from cogcore.facts import load_entities

    return [entity.document() for entity in load_entities()]


def prompt_texts(tokenizer) -> list[str]:  # noqa: ANN001 - any tokenizer with a chat template
    """The reader prompt's scaffolding as the service renders it, around knowledge-base text.

    No evaluation item enters: the question is a placeholder, the passages are real documents.
    """
    from cogcore.prompts import READER_PREFIX, READER_SYSTEM, reader_prompt

    documents = knowledge_base_texts()[:2]
    texts = [READER_SYSTEM, READER_PREFIX]
    if getattr(tokenizer, "chat_template", None):
        texts.append(reader_prompt("Which one is it?", documents).render(tokenizer))
    return texts
