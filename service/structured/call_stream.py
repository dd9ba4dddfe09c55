"""A streamed reply read as tool calls while it is generated, so a call's name and the pieces
of its arguments can go out as OpenAI streams them (service/tool_calls.py, docs/structured.md).

The reply is read in the layout the tools grammar writes (service/structured/tools.py):
`<tool_call>[{"name": "...", "arguments": {...}}, ...]</tool_call>` (or one object instead of
the list), JSON whitespace allowed between tokens. A call's name is reported once its string is
complete and names a listed function; then each new piece of its arguments object's text, as
written (string- and escape-aware brace tracking), up to and with the object's closing brace:
never the call's own `}`, the list's `]` or `</tool_call>`. The first character that does not
fit that layout (arguments before the name, another key, an unknown function, whitespace after
the tag, anything that is not JSON) stops the reading: nothing more is reported, and the
caller decides from the whole reply (`parse_reply`) at its end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from service.structured.tools import JSON_SPACE, TOOL_CLOSE, TOOL_OPEN


@dataclass(frozen=True)
class CallDelta:
    """One piece of the calls: call `index`'s `name` (once, first) or a piece of its
    `arguments` text."""

    index: int
    name: str | None = None
    arguments: str = ""


# States that only expect one character, or one object key and its colon: (what, next state).
_PUNCTUATION = {"item": ("{", "key_name"), "comma": (",", "key_arguments")}
_KEYS = {"key_name": ("name", "name"), "key_arguments": ("arguments", "open")}


class _Wait(Exception):
    """The text so far ends inside a token: read on when more comes."""


class _Off(Exception):
    """The text is not in the expected layout: stop reading."""


class CallStream:
    """Reads one reply's text as it grows (`feed`), reporting `CallDelta`s."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self.text = ""
        self.at = 0  # what is read of `text`
        self.state = "tag"
        self.calls = 0  # calls named so far
        self.listed = True  # the calls are a JSON list (else one object)
        self.depth = 0  # inside the arguments object: its braces and brackets
        self.in_string = False
        self.escaped = False

    @property
    def stopped(self) -> bool:
        """The text left the expected layout: nothing more is reported."""
        return self.state == "off"

    @property
    def closed(self) -> bool:
        """`</tool_call>` ended the calls (text after it is not read)."""
        return self.state == "closed"

    def feed(self, piece: str) -> list[CallDelta]:
        """Read `piece` (the next text of the reply); the deltas it completes."""
        out: list[CallDelta] = []
        if self.stopped or self.closed:
            return out
        self.text += piece
        while not (self.stopped or self.closed):
            try:
                self._step(out)
            except _Wait:
                break
            except _Off:
                self.state = "off"
        if self.at:  # what is read is not needed again: a long reply costs linear time
            self.text, self.at = self.text[self.at:], 0
        return out

    # -- the layout, one state per expected token -------------------------------------------
    def _step(self, out: list[CallDelta]) -> None:
        if self.state in _PUNCTUATION:
            expected, after = _PUNCTUATION[self.state]
            self._char(expected)
        elif self.state in _KEYS:
            expected, after = _KEYS[self.state]
            self._key(expected)
        else:
            getattr(self, f"_{self.state}")(out)
            return
        self.state = after

    def _tag(self, out: list[CallDelta]) -> None:
        if not self.text.startswith(TOOL_OPEN):
            if TOOL_OPEN.startswith(self.text):
                raise _Wait
            raise _Off
        self.at = len(TOOL_OPEN)
        self.state = "start"

    def _start(self, out: list[CallDelta]) -> None:
        if self._char("[{", space=False) == "{":
            self.listed, self.state = False, "key_name"
        else:
            self.state = "item"

    def _name(self, out: list[CallDelta]) -> None:
        name = self._string()
        if name not in self.names:
            raise _Off
        out.append(CallDelta(self.calls, name=name))
        self.calls += 1
        self.state = "comma"

    def _open(self, out: list[CallDelta]) -> None:
        self._char("{")
        self.depth, self.in_string, self.escaped = 1, False, False
        self._report(out, "{")
        self.state = "arguments"

    def _arguments(self, out: list[CallDelta]) -> None:
        start = self.at
        while self.depth and self.at < len(self.text):
            c = self.text[self.at]
            self.at += 1
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif c == "\\":
                    self.escaped = True
                elif c == '"':
                    self.in_string = False
            elif c == '"':
                self.in_string = True
            elif c in "{[":
                self.depth += 1
            elif c in "}]":
                self.depth -= 1
        self._report(out, self.text[start:self.at])
        if self.depth:
            raise _Wait
        self.state = "call_end"

    def _call_end(self, out: list[CallDelta]) -> None:
        self._char("}")
        self.state = "next" if self.listed else "after"

    def _next(self, out: list[CallDelta]) -> None:
        self.state = "item" if self._char(",]") == "," else "after"

    def _after(self, out: list[CallDelta]) -> None:
        self._space()
        rest = self.text[self.at:self.at + len(TOOL_CLOSE)]
        if not TOOL_CLOSE.startswith(rest):
            raise _Off
        if len(rest) < len(TOOL_CLOSE):
            raise _Wait
        self.at += len(TOOL_CLOSE)
        self.state = "closed"

    # -- tokens -----------------------------------------------------------------------------
    def _report(self, out: list[CallDelta], text: str) -> None:
        """`text` of the current call's arguments, one delta per call and feed."""
        if out and out[-1].index == self.calls - 1 and out[-1].name is None:
            text = out.pop().arguments + text
        if text:
            out.append(CallDelta(self.calls - 1, arguments=text))

    def _space(self) -> None:
        while self.at < len(self.text) and self.text[self.at] in JSON_SPACE:
            self.at += 1

    def _char(self, allowed: str, space: bool = True) -> str:
        """The next character (after JSON whitespace, unless `space` is False), one of
        `allowed`."""
        if space:
            self._space()
        if self.at >= len(self.text):
            raise _Wait
        c = self.text[self.at]
        if c not in allowed:
            raise _Off
        self.at += 1
        return c

    def _string(self) -> str:
        """The next JSON string, decoded (only once its closing quote has come)."""
        self._char('"')
        end, escaped = self.at, False
        while end < len(self.text):
            c = self.text[end]
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                break
            end += 1
        else:
            self.at -= 1  # read the string again, whole, when more text has come
            raise _Wait
        try:
            value = json.loads(self.text[self.at - 1:end + 1])
        except json.JSONDecodeError:
            raise _Off from None
        self.at = end + 1
        return value

    def _key(self, key: str) -> None:
        """`"key":`, the next object key and its colon."""
        start = self.at
        try:
            if self._string() != key:
                raise _Off
            self._char(":")
        except _Wait:
            self.at = start
            raise
