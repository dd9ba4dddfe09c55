"""A reply's tokens to text, one token at a time, in linear time, honouring stop strings.

Decoding the whole reply again at every token (as `tokenizer.decode(ids)` would) costs O(n^2)
over a reply on the model thread; `tokenizers`' `DecodeStream` decodes each new token against
the few before it, and holds back a token that ends inside a UTF-8 character until the
character is whole. The text sent is the text a full decode of the reply gives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tokenizers.decoders import DecodeStream

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def incremental_decoder(tokenizer: PreTrainedTokenizerBase) -> Callable[[int], str | None]:
    """A function that takes the next token id and returns the text it completes (None while
    a character is incomplete); special tokens are skipped, as in the reply's full decode."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        stream = DecodeStream(skip_special_tokens=True)
        return lambda token: stream.step(backend, token)
    return _FullDecode(tokenizer)


class _FullDecode:
    """The fallback of a tokenizer without a `tokenizers` backend: decode the whole reply and
    return what is new (quadratic, as decoding was before `DecodeStream`)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.said = 0

    def __call__(self, token: int) -> str | None:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return None
        new, self.said = text[self.said:], len(text)
        return new


class TextStream:
    """Turns a growing list of token ids into safe-to-send text deltas, honouring stop strings.

    Text that could still become a stop string is held back until it is decided; so is a
    character whose bytes have not all arrived (the decoder holds it).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stop: tuple[str, ...] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop = stop
        self.ids: list[int] = []  # the reply's tokens so far: constraints read them
        self.stopped = False
        self._decode = incremental_decoder(tokenizer)
        self._longest = max((len(s) for s in stop), default=0)
        self._pending = ""  # decoded, not sent yet
        self._sent_tail = ""  # the last characters sent: a stop string may start in them
        self._decoded = 0  # characters decoded so far, sent or not
        self._incomplete = False  # the last token ended inside a character

    def push(self, token_id: int) -> str:
        """Add one token; return the text that can be sent now (maybe empty)."""
        self.ids.append(token_id)
        piece = self._decode(token_id)
        self._incomplete = piece is None
        if piece:
            self._pending += piece
            self._decoded += len(piece)
        window = self._sent_tail + self._pending
        cut = self._stop_at(window)
        if cut is not None:
            self.stopped = True
            return self._send(max(0, cut - len(self._sent_tail)))
        return self._send(len(self._pending) - min(self._held(window), len(self._pending)))

    def flush(self) -> str:
        """The text held back, released when generation ends without a stop string."""
        if self.stopped:
            return ""
        if self._incomplete:  # the reply ends inside a character: as a full decode shows it
            text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
            self._pending += text[self._decoded:]
            self._decoded = len(text)
        return self._send(len(self._pending))

    def _send(self, n: int) -> str:
        delta, self._pending = self._pending[:n], self._pending[n:]
        if self._longest:
            self._sent_tail = (self._sent_tail + delta)[-self._longest:]
        return delta

    def _stop_at(self, text: str) -> int | None:
        hits = [i for i in (text.find(s) for s in self.stop) if i >= 0]
        return min(hits) if hits else None

    def _held(self, text: str) -> int:
        # The longest tail of `text` that is a proper prefix of some stop string.
        best = 0
        for s in self.stop:
            for n in range(min(len(s) - 1, len(text)), best, -1):
                if text.endswith(s[:n]):
                    best = n
                    break
        return best
