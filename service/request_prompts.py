"""An OpenAI request's prompt ids and sampling, checked: the served model, the parameters taken
only at their default, the chat template, the context length.

The serving layer builds every prompt here (chat, completion, the reader prompt of a grounded
request, /tokenize), so a prompt is measured and refused in one way wherever it is built.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jinja2

from service.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    ModelNotFound,
    UnsupportedParameter,
)
from service.grounding import Grounded, fit_evidence
from service.penalties import scoring_fields
from service.sampling import SamplingParams
from service.structured.prompt import render_messages

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from cogcore.prompts import Prompt
    from service.protocol import (
        ChatCompletionRequest,
        ChatMessage,
        CompletionRequest,
        SamplingFields,
    )
    from service.structured import ToolPlan

# (parameter, value accepted) for OpenAI fields this service takes only at their default.
DEFAULT_ONLY: dict[str, Callable[[object], bool]] = {
    "suffix": lambda v: v is None,
    "best_of": lambda v: v in (None, 1),
}


@dataclass
class RequestPrompts:
    """Prompt ids and sampling parameters of requests to one served model."""

    tokenizer: PreTrainedTokenizerBase
    model_name: str
    max_context: int
    default_max_tokens: int
    max_n: int = 8

    def check_model(self, model: str | None) -> None:
        """404 unless `model` names the served model (None: the served model, as vLLM's
        /tokenize takes it)."""
        if model is not None and model != self.model_name:
            raise ModelNotFound(f"the model {model!r} does not exist here; use "
                                f"{self.model_name!r}", "model")

    def chat_ids(self, messages: list[ChatMessage], add_generation_prompt: bool = True,
                 continue_final_message: bool = False, add_special_tokens: bool = False,
                 plan: ToolPlan | None = None) -> list[int]:
        """The chat's token ids through the model's chat template (developer messages as
        system ones, tool calls and results and `plan`'s functions as
        `service.structured.render_messages` writes them); `add_special_tokens` adds the
        tokenizer's own (BOS) on top, as vLLM."""
        turns = render_messages([m.model_dump(exclude_none=True) for m in messages], plan)
        with template_errors():
            rendered = self.tokenizer.apply_chat_template(
                turns, add_generation_prompt=add_generation_prompt,
                continue_final_message=continue_final_message,
                tokenize=not add_special_tokens)
        if add_special_tokens:
            return list(self.tokenizer(rendered, add_special_tokens=True)["input_ids"])
        return rendered if isinstance(rendered, list) else list(rendered["input_ids"])

    def chat_prompt(self, req: ChatCompletionRequest, grounded: Grounded | None = None,
                    plan: ToolPlan | None = None) -> tuple[list[int], SamplingParams]:
        """Validate a chat request; its prompt ids (chat template, with `plan`'s functions,
        or the reader prompt of a grounded request) and sampling."""
        if grounded is not None and grounded.prompt is not None:
            ids = self.reader_ids(grounded)
        else:
            ids = self.chat_ids(req.messages, plan=plan)
        return ids, self.params(req, len(ids), req.max_completion_tokens or req.max_tokens)

    def reader_ids(self, grounded: Grounded) -> list[int]:
        """The token ids of a grounded request's reader prompt."""
        assert grounded.prompt is not None
        return self.prompt_ids(grounded.prompt)

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        """A shared prompt rendered with the model's chat template, as token ids."""
        with template_errors():
            text = prompt.render(self.tokenizer)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def fitted(self, grounded: Grounded, max_tokens: int | None) -> Grounded:
        """Keep the evidence passages that fit the context beside `max_tokens`."""
        if grounded.prompt is None:
            return grounded
        budget = self.max_context - (max_tokens or self.default_max_tokens)
        fitted = fit_evidence(grounded, lambda p: len(self.prompt_ids(p)), budget)
        if fitted is None:
            raise ContextLengthExceeded(
                f"this model's maximum context length is {self.max_context} tokens: the best "
                f"evidence passage and {max_tokens or self.default_max_tokens} new "
                "tokens do not fit; lower max_tokens", "max_tokens")
        return fitted

    def completion_prompt(self, req: CompletionRequest) -> tuple[list[int], SamplingParams]:
        """Validate a text completion request; its prompt ids and sampling."""
        prompt = req.prompt
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], int):
            ids = self.known_ids([int(i) for i in prompt], "prompt")
        else:
            if isinstance(prompt, list) and len(prompt) != 1:
                raise UnsupportedParameter("only one prompt per request is supported", "prompt")
            text = prompt if isinstance(prompt, str) else prompt[0]
            ids = list(self.tokenizer(text)["input_ids"])
        if not ids:
            raise InvalidRequest("prompt is empty", "prompt")
        return ids, self.params(req, len(ids), req.max_tokens)

    def known_ids(self, ids: list[int], param: str) -> list[int]:
        """`ids`, or a 400 naming `param` when one is outside the vocabulary."""
        if ids and (max(ids) >= len(self.tokenizer) or min(ids) < 0):
            raise InvalidRequest(f"{param} holds token ids outside the vocabulary", param)
        return ids

    def params(self, req: SamplingFields, prompt_tokens: int, max_tokens: int | None
               ) -> SamplingParams:
        """The request's sampling, once its model, parameters and length are checked."""
        self.check_model(req.model)
        for name, accepted in DEFAULT_ONLY.items():
            if name in req.model_fields_set and not accepted(getattr(req, name, None)):
                raise UnsupportedParameter(f"parameter {name!r} is not supported", name)
        room = self.max_context - prompt_tokens
        if max_tokens is None:
            max_tokens = min(self.default_max_tokens, room)
        if room < 1 or max_tokens > room:
            raise ContextLengthExceeded(
                f"this model's maximum context length is {self.max_context} tokens; the prompt "
                f"has {prompt_tokens} and max_tokens asks for {max_tokens}", "max_tokens")
        return SamplingParams(max_tokens=max_tokens, temperature=req.temperature,
                              top_p=req.top_p, seed=req.seed, stop=tuple(req.stop_list()),
                              **scoring_fields(req, len(self.tokenizer), self.max_n))


@contextlib.contextmanager
def template_errors() -> Iterator[None]:
    """A chat the model's chat template refuses (roles that do not alternate, a system message
    it does not take, a final message it cannot continue): the client's request, a 400, not a
    server error."""
    try:
        yield
    except (jinja2.TemplateError, ValueError) as exc:
        raise InvalidRequest(f"the model's chat template refuses these messages: {exc}",
                             "messages") from exc


def user_turns(req: ChatCompletionRequest) -> list[str]:
    """What the user said, turn by turn: a follow-up is read against the earlier turns."""
    return [m.text() for m in req.messages if m.role == "user"]


def chat_context(req: ChatCompletionRequest) -> tuple[str | None, list[dict[str, str]]]:
    """The client's system prompt (system and developer messages joined) and the user and
    assistant messages before the last user message: what the reader prompt keeps."""
    system = "\n\n".join(m.text() for m in req.messages
                          if m.role in ("system", "developer") and m.text().strip())
    last = max((i for i, m in enumerate(req.messages) if m.role == "user"), default=0)
    history = [{"role": m.role, "content": m.text()} for m in req.messages[:last]
               if m.role in ("user", "assistant") and m.text().strip()]
    return system or None, history
