"""Follow-up questions: the last user turn of a chat rewritten to stand alone for retrieval.

A chat asks "What is the capital of Egypt?", then "Which currency code does it use?". Searched
alone, the follow-up names nothing, and the store answers about whatever entity its words are
closest to, with a citation. The rules here resolve it against the names the earlier user turns
gave and that the store knows (rules rather than the core: a 135M model rewrites unreliably and
costs a generation per turn; measured in docs/facts.md):
- a pronoun ("it", "its", "there", "this country") stands for the main name of the latest
  earlier turn that gave one, and the question is worded as the store states facts, which the
  reader copies best: "What is the currency code of Egypt?";
- a short turn that names something new and asks nothing else ("And Peru?", "What about
  Peru?") asks the previous question about it: "What is the capital of Peru?".
A turn that names something the store knows, or follows no named turn, is left as it is; so
is one whose form asks for no fact ("Make it rhyme." after a poem about Egypt), which the
caller judges with the router's classifier.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

# A name: capitalized words, joined by the small words names hold ("Bosnia and Herzegovina").
SPAN = re.compile(r"[A-Z][\w'.-]*(?:\s+(?:(?:of|and|the|de|da|du|del)\s+)*[A-Z][\w'.-]*)*")
# Words that open a sentence capitalized without naming anything.
OPENERS = frozenset(
    "what which who whom whose when where why how is are was were do does did can could would "
    "tell give name list show find in on at of for the a an i and also so then ok okay thanks "
    "according please it its they their there this that these those he she we you my your "
    "if but or yes no great nice let identify provide".split()
)
# Phrases that stand for the entity of an earlier turn, longest first.
REFERENCES = (
    r"this (?:country|element|state|place|one)", r"that (?:country|element|state|place|one)",
    r"the same (?:country|element|state)", r"it", r"they", r"them",
    r"(?<!is )(?<!are )(?<!was )(?<!were )there",  # not "Is there a king?"
)
REFERENCE = re.compile(r"\b(" + "|".join(REFERENCES) + r")\b", re.IGNORECASE)
POSSESSIVE = re.compile(r"\b(its|their)\b", re.IGNORECASE)
# "... its currency code?" at the end of a turn: the possessive and the noun phrase after it.
# Each part has one way to match (turns arrive with runs of spaces collapsed), so a crafted
# turn cannot make it backtrack for long.
POSSESSIVE_PHRASE = re.compile(r"\b(?:[Ii]ts|[Tt]heir) ([a-z]+(?:[ -][a-z]+)*?)"
                               r"(?: (?:too|also|please|then|again|now))? ?([?.!]*)$")
# "Which currency code does it have?"
ASKS_HAVE = re.compile(
    r"^\s*(?:which|what) ([a-z][\w -]*?) (?:does|do) (?:it|they|this \w+|that \w+) "
    r"(?:have|use)\s*\??\s*$", re.IGNORECASE)
# "And the currency code of Egypt?": a noun phrase left after a filler word, not a question.
FRAGMENT = re.compile(r"^\s*(?:(?:and|so|also|ok|okay|then|well)\b[\s,]*)+(the .*)$",
                      re.IGNORECASE)
# What may surround a new name in an elliptical turn: "and", "what about", "how about for".
ELLIPSIS_WORDS = frozenset("and what how about for with then so also or".split())
# Other words a question asks for an entity of a kind with ("Kingstown is the capital of what
# nation?"), by the last word of the kind.
KIND_SYNONYMS = {"country": ("nation",)}
# A follow-up is read against this many turns before it, each cut to this many characters: a
# long chat costs a bounded number of name look-ups.
HISTORY_TURNS = 4
TURN_CHARS = 2000


def name_spans(text: str) -> list[str]:
    """Capitalized spans of `text`, without a sentence-opening question word."""
    spans = []
    for match in SPAN.finditer(text):
        words = [word.removesuffix("'s") for word in match.group().split()]
        while words and words[0].lower() in OPENERS:
            words.pop(0)  # "What", "And", "According" open sentences; they name nothing
        if words:
            spans.append(" ".join(words).rstrip(".'"))
    return spans


def _main_name(text: str, known: Callable[[str], bool]) -> str | None:
    """The longest name in `text` that the store knows (the last of equals), if any.

    The longest, because a question also names kinds the store knows ("the US state of New
    Hampshire"): the entity is the fuller name.
    """
    names = [span for span in name_spans(text) if known(span)]
    return max(reversed(names), key=len) if names else None


def _elliptical(text: str, name: str) -> bool:
    """Whether `text` is only `name` with ellipsis words around it ("What about Peru?")."""
    rest = re.sub(r"\W+", " ", text.replace(name, " ")).lower().split()
    return all(word in ELLIPSIS_WORDS for word in rest)


def _substitute(text: str, name: str) -> str:
    """`text` with its references to an earlier entity replaced by `name`.

    The result is worded as the store states facts ("the currency code of Egypt"), the form
    the reader copies best: "its X" becomes "the X of Egypt", "Which X does it have?" becomes
    "What is the X of Egypt?", and a bare "And its X?" a question.
    """
    asks = ASKS_HAVE.match(text)
    if asks:
        return f"What is the {asks.group(1)} of {name}?"
    text = POSSESSIVE_PHRASE.sub(lambda m: f"the {m.group(1)} of {name}{m.group(2)}", text)
    text = POSSESSIVE.sub(f"{name}'s", text)

    def place(match: re.Match[str]) -> str:
        return f"in {name}" if match.group(1).lower() == "there" else name

    text = REFERENCE.sub(place, text)
    fragment = FRAGMENT.match(text)
    return f"What is {fragment.group(1)}" if fragment else text


def standalone_question(user_turns: Sequence[str], known: Callable[[str], bool]) -> str:
    """The last of `user_turns` rewritten to stand alone (unchanged when it already does).

    `known(name)` says whether the store knows a name; earlier turns are searched from the
    most recent back, each resolved in turn, so a chain of follow-ups keeps its entity.
    """
    if not user_turns:
        return ""
    # Runs of spaces collapsed (the patterns rely on it); earlier turns, read for names only,
    # also cut. The last turn is whole: the caller bounds its length.
    last = " ".join(user_turns[-1].split())
    resolved: list[str] = []
    for turn in user_turns[-HISTORY_TURNS - 1 : -1]:
        resolved.append(_resolve(" ".join(turn[:TURN_CHARS].split()), resolved, known))
    rewritten = _resolve(last, resolved, known)
    return user_turns[-1] if rewritten == last else rewritten


def _resolve(turn: str, earlier: Sequence[str], known: Callable[[str], bool]) -> str:
    previous = next(((q, n) for q in reversed(earlier) if (n := _main_name(q, known))), None)
    if previous is None:
        return turn
    question, entity = previous
    own = _main_name(turn, known)
    if own is not None:
        if own != entity and _elliptical(turn, own):
            return re.sub(rf"\b{re.escape(entity)}\b", own, question)
        return turn
    if REFERENCE.search(turn) or POSSESSIVE.search(turn):
        return _substitute(turn, entity)
    return turn


def canonical_names(question: str, metadata: dict) -> str:
    """`question` with another name of the document's entity replaced by its own name.

    A document may give its entity's `name` and other names (`aliases`, a list) in its
    metadata, as the default knowledge base does from countryinfo: "What is the capital of
    Czechia?" is read as "What is the capital of Czech Republic?", the name its sentences use,
    so the evidence sentence is chosen and copied as for the name itself.
    """
    name, aliases = metadata.get("name"), metadata.get("aliases")
    if not isinstance(name, str) or not isinstance(aliases, list):
        return question
    # The own name may hold another name ("The Gambia", "Gambia"): a match inside it stays.
    own = [m.span() for m in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", question)]
    for alias in sorted((a for a in aliases if isinstance(a, str) and a), key=len, reverse=True):
        found = [m for m in re.finditer(rf"(?<!\w){re.escape(alias)}(?!\w)", question)
                 if not any(a <= m.start() and m.end() <= b for a, b in own)]
        for match in reversed(found):
            question = question[:match.start()] + name + question[match.end():]
        if found:
            return question
    return question


def value_names(question: str, text: str, metadata: dict) -> list[str]:
    """The names `question` gives that a document's `text` holds as values, when the question
    asks which entity of the document's kind holds them: an inverse question ("Which country
    is governed from Suva?", "Berlin is the capital city of which country?", "Which country
    are Grenadian people from?"); else none.

    The embedding scores such questions far from the page (the name is a value, not the
    entity), yet the page answers them. The kind (`metadata["kind"]`, its last word:
    "country", "element", "state" of "us_state") must be asked for: "What is the population
    of Tokyo?" also names a value of Japan's page, which does not answer it. The entity's own
    names (`name`, `aliases`) are not values.
    """
    kind = metadata.get("kind")
    if not isinstance(kind, str) or not kind:
        return []
    noun = kind.rsplit("_", 1)[-1]
    nouns = "|".join(re.escape(n) for n in (noun, *KIND_SYNONYMS.get(noun, ())))
    if not re.search(rf"\b(?:{nouns})\b", question, re.IGNORECASE):
        return []
    aliases = metadata.get("aliases")
    own = {metadata.get("name"), *(aliases if isinstance(aliases, list) else [])}
    return [span for span in name_spans(question)
            if span not in own and span.lower() != noun and holds(text, span)]


def holds(text: str, name: str) -> bool:
    """Whether `text` holds `name` as whole words."""
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) is not None
