"""Token constraints of a grounded reply: what it may say next, given the evidence it reads.

Two readers (`GroundingSettings.reader`): "copy" copies one evidence sentence from a word the
core chooses to its end (`CopyConstraint`); "restate" may restate the question with the
evidence's tokens and repeats no n-gram (`EvidenceConstraint`). Both implement
`service.sampling.TokenConstraint`; the engine applies them row by row.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from retrieval.chunker import sentence_spans

# Words that open a question without naming anything, and the function words around them.
OPENERS = frozenset(
    "what which who whom whose when where why how is are was were do does did can could "
    "tell give name list in on at the a an i".split()
)
WORD = re.compile(r"\w+")
FUNCTION_WORDS = OPENERS | frozenset("of to for by with from and or its it this that".split())


# Words a reply restates the evidence with that the evidence itself may lack in that form.
# No quote marks: after one, a small reader starts quoting the evidence from its first word.
GLUE = ("the", "a", "an", "is", "are", "was", "were", "of", "in", "and", "or", "called", "it",
        "its", "not", "no", "yes", "to", "by", "as", "for", "on", "at", ".", ",")


@dataclass(frozen=True)
class EvidenceConstraint:
    """What a grounded reply may say next: it copies the evidence, and does not loop.

    After a token that the evidence continues (" Ku" in "Kuwait City"), only its continuations
    there may follow, and glue words or punctuation only where the evidence ends a word after
    it; after any other token (glue, the reply's start), any evidence token may start a copy.
    No token that begins a word may complete an n-gram (`no_repeat`) the reply already holds:
    copying, a small reader otherwise restarts the sentence it copies ("the capital of the
    capital of ...").
    """

    vocabulary: frozenset[int]
    successors: dict[int, frozenset[int]]
    breaks: frozenset[int]  # glue words and punctuation, allowed where a word ends
    word_starts: frozenset[int]  # evidence and glue tokens that begin a word or are punctuation
    stop_ids: frozenset[int]
    no_repeat: int = 0  # n-gram size; 0: repeats allowed

    def allowed(self, reply: Sequence[int]) -> frozenset[int]:
        """The ids that may follow the `reply` generated so far."""
        following = self.successors.get(reply[-1]) if reply else None
        if not following:
            allowed = self.vocabulary
        elif following & self.word_starts:
            allowed = following | self.breaks | self.stop_ids
        else:
            allowed = following | self.stop_ids
        # Only a token that begins a word can repeat: the pieces inside a word stay free, so
        # "Salvadoran" (" Sal", "v", "ador", "an") can follow "El Salvador".
        return allowed - (repeating(reply, self.no_repeat) & self.word_starts)


def repeating(reply: Sequence[int], n: int) -> frozenset[int]:
    """The tokens that would end an n-gram `reply` already holds (none when `n` is 0)."""
    if n <= 0 or len(reply) < n:
        return frozenset()
    if n == 1:
        return frozenset(reply)
    last, tail = reply[-1], tuple(reply[len(reply) - n + 1:])
    return frozenset(reply[i + n - 1] for i in range(len(reply) - n + 1)
                     if reply[i + n - 2] == last and tuple(reply[i:i + n - 1]) == tail)


def evidence_constraint(tokenizer: Any, texts: Iterable[str], stop_ids: Iterable[int],
                        no_repeat: int = 0) -> EvidenceConstraint:
    """The constraint of a reply grounded in `texts` (the evidence the reader reads and the
    question, as written and lowercased; not the prompt's scaffolding such as "Question:").

    A 135M reader that has to copy a rare name ("Quisun", "Kuwait City") from the evidence
    otherwise garbles it into a likelier one ("Quzun") or stops after its first piece ("Ku");
    docs/facts.md measures the difference.
    """
    text = "\n".join(texts)
    runs = [_encode(tokenizer, v) for v in (text, " " + text, text.lower(), " " + text.lower())]
    successors: dict[int, set[int]] = {}
    for run in runs:
        for a, b in itertools.pairwise(run):
            successors.setdefault(a, set()).add(b)
    evidence = {i for run in runs for i in run}
    breaks = _glue_ids(tokenizer)
    starts = {i for i in evidence | breaks if not tokenizer.decode([i])[:1].isalnum()}
    stops = frozenset(stop_ids)
    return EvidenceConstraint(
        vocabulary=frozenset(evidence) | breaks | stops,
        successors={a: frozenset(b) for a, b in successors.items()},
        breaks=breaks, word_starts=frozenset(starts), stop_ids=stops, no_repeat=no_repeat)


@dataclass(frozen=True)
class CopyConstraint:
    """A grounded reply that copies one evidence sentence, from a word the reader chooses to
    the sentence's end, and then stops.

    The reader's own likelihood chooses where the copy starts (" the capital of Brunei is
    ...", " Malaysia is MYR." or " Bandar Seri Begawan."); after that each token is the
    evidence's next one. A 135M reader asked in other words than the evidence's ("Which city
    serves as the seat of government of Brunei?") otherwise restates the question and wanders
    ("the seat of government of Brunei is the seat or the seat ..."); docs/facts.md measures
    the difference on benchmarks/paraphrase_eval.py.
    """

    runs: tuple[tuple[int, ...], ...]  # each evidence sentence's tokens, a space before it
    starts: tuple[frozenset[int], ...]  # per run, the positions where a word begins
    stop_ids: frozenset[int]

    def allowed(self, reply: Sequence[int]) -> frozenset[int]:
        """The ids that may follow the `reply` generated so far."""
        n, said = len(reply), tuple(reply)
        following: set[int] = set()
        ended = False
        for run, starts in zip(self.runs, self.starts, strict=True):
            for s in starts:
                if s + n <= len(run) and run[s:s + n] == said:
                    if s + n == len(run):
                        ended = True
                    else:
                        following.add(run[s + n])
        return frozenset(following | self.stop_ids) if ended or not following \
            else frozenset(following)


def copy_constraint(tokenizer: Any, evidence: Iterable[str], stop_ids: Iterable[int],
                    question: str = "") -> CopyConstraint:
    """The constraint of a reply that copies a sentence of `evidence` from a word to its end.

    The copy may not start where it would restate the `question` (two words of it in a row,
    or its last word): the answer of an inverse question lies before them ("Which country has
    the currency code MYR?": " Malaysia is MYR.", not " MYR."). A line that does not end a
    sentence and is followed by another (a file section's heading path) is not copied; a
    sentence that starts with an article is copied lowercased ("According to the context,
    the capital of ...").
    """
    sentences = []
    for text in evidence:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        for i, line in enumerate(lines):
            if i == len(lines) - 1 or line.endswith((".", "!", "?")):
                sentences.extend(line[a:b] for a, b in sentence_spans(line))
    runs: list[tuple[int, ...]] = []
    for sentence in sentences:
        first, _, rest = sentence.partition(" ")
        variants = [sentence]
        if first in ("The", "A", "An") and rest:
            variants = [first.lower() + " " + rest]
        runs.extend(tuple(_encode(tokenizer, " " + v)) for v in variants)
    asked = WORD.findall(question.lower())
    starts = tuple(_word_starts(tokenizer, run, asked) for run in runs)
    if not any(starts):  # the question holds every word: the copy starts at the beginning
        starts = tuple(frozenset([0]) for _ in runs)
    return CopyConstraint(tuple(runs), starts, frozenset(stop_ids))


def _word_starts(tokenizer: Any, run: Sequence[int], asked: Sequence[str]) -> frozenset[int]:
    """The positions of `run` where a word begins that does not restate the question (the
    question holds neither that word and the next one in a row, "currency code", nor, for the
    sentence's last word, that word, "MYR."; "Saudi Arabian" may start at "Saudi" though the
    question names Saudi Arabia), up to the first word that is new to the question."""
    begins = _begins(tokenizer, run)
    words = [WORD.findall(tokenizer.decode(list(run[i:j])).lower())
             for i, j in zip(begins, [*begins[1:], len(run)], strict=True)]
    pairs = set(itertools.pairwise(asked))
    # Nor after the first word the question neither holds nor could do without (" in 2033."
    # after "Vetrana" for "Where will it open a second factory?").
    new = next((k for k, piece in enumerate(words) if piece and piece[0] not in asked
                and piece[0] not in FUNCTION_WORDS), len(words))
    out = set()
    for k, at in enumerate(begins[:new + 1]):
        ahead = [w for piece in words[k:k + 2] for w in piece][:2]
        if not ahead or (tuple(ahead) not in pairs if len(ahead) == 2 else ahead[0] not in asked):
            out.add(at)
    return frozenset(out)


def _begins(tokenizer: Any, run: Sequence[int]) -> list[int]:
    """The positions of `run` whose token begins a word: a byte-level BPE piece ("Ġ"), a
    SentencePiece one ("▁": Llama-2, Mistral, Gemma, whose `decode` of one token drops the
    space) or one that decodes to leading whitespace; [0] when none does (the run is one word)."""
    tokens = tokenizer.convert_ids_to_tokens(list(run))
    begins = [i for i, (t, token) in enumerate(zip(run, tokens, strict=True))
              if (token or "").startswith(("Ġ", "▁")) or tokenizer.decode([t])[:1].isspace()]
    return begins or [0]


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


@functools.lru_cache(maxsize=4)
def _glue_ids(tokenizer: Any) -> frozenset[int]:
    """The glue words' ids (with and without a leading space, capitalized): once per tokenizer."""
    variants = (" ".join(GLUE), " " + " ".join(GLUE), " ".join(w.capitalize() for w in GLUE))
    return frozenset(i for v in variants for i in _encode(tokenizer, v))
