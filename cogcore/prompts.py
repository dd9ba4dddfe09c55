"""The reader and closed-book prompts: one module shared by the evaluation and the service.

The reader prompt is a measured design decision (see DESIGN.md): the evidence goes in a numbered
context block in the user turn, a system message tells the model to answer using only the given
context, and the assistant turn is started with "According to the context,". On the default
model this reads evidence correctly 94% of the time (68% with a bare user prompt) and follows a
counterfactual context 91% of the time (46% without it).

A `Prompt` is chat messages plus the start of the assistant's reply; `render` turns it into the
exact text to feed a model, through the model's own chat template.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

READER_SYSTEM = "Answer the question using only the given context."
READER_PREFIX = "According to the context,"


class ChatTokenizer(Protocol):
    """The part of a Hugging Face tokenizer that rendering needs."""

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any:
        """Render messages with the model's chat template."""
        ...


@dataclass(frozen=True)
class Prompt:
    """Chat messages and the text the assistant's reply starts with."""

    messages: tuple[dict[str, str], ...]
    assistant_prefix: str = ""

    def render(self, tokenizer: ChatTokenizer) -> str:
        """The prompt as text: chat template with a generation prompt, then the reply's start."""
        text = tokenizer.apply_chat_template(
            list(self.messages), add_generation_prompt=True, tokenize=False
        )
        return str(text) + self.assistant_prefix


def context_block(passages: Sequence[str]) -> str:
    """Evidence passages numbered [1], [2], ... so that a reply can cite them."""
    return "\n".join(f"[{i}] {passage.strip()}" for i, passage in enumerate(passages, start=1))


def reader_prompt(question: str, passages: Sequence[str], system: str | None = None,
                  history: Sequence[dict[str, str]] = ()) -> Prompt:
    """The reader prompt: answer `question` from the numbered `passages` only.

    In a chat, the client's `system` prompt comes first in the system message (the reader's
    instruction after it, so it is the last word), and the earlier turns (`history`: user and
    assistant messages, oldest first) come between it and the question with its evidence.
    """
    user = f"Context:\n{context_block(passages)}\n\nQuestion: {question.strip()}"
    instruction = f"{system.strip()}\n\n{READER_SYSTEM}" if system and system.strip() \
        else READER_SYSTEM
    return Prompt(
        messages=(
            {"role": "system", "content": instruction},
            *({"role": m["role"], "content": m["content"]} for m in history),
            {"role": "user", "content": user},
        ),
        assistant_prefix=READER_PREFIX,
    )


def closed_book_prompt(question: str, answer_prefix: str) -> Prompt:
    """A question with no evidence; the reply starts with the statement up to its answer."""
    # No system message: the model's own default applies, as when the figures were measured.
    return Prompt(
        messages=({"role": "user", "content": question.strip()},),
        assistant_prefix=answer_prefix,
    )
