"""POST /tokenize and /detokenize, in vLLM's shapes: a prompt or a chat in, token ids out, and
back."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from service.protocol.base import StrictModel
from service.protocol.generation import ChatMessage


class TokenizeCompletionRequest(StrictModel):
    """A text prompt to tokenize, as /v1/completions would."""

    model: str | None = None
    prompt: str
    add_special_tokens: bool = True
    return_token_strs: bool = False


class TokenizeChatRequest(StrictModel):
    """A chat to tokenize through the model's chat template, as /v1/chat/completions would."""

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    add_generation_prompt: bool = True
    continue_final_message: bool = False
    add_special_tokens: bool = False
    return_token_strs: bool = False

    @model_validator(mode="after")
    def _one_ending(self) -> TokenizeChatRequest:
        if self.add_generation_prompt and self.continue_final_message:
            raise ValueError("continue_final_message and add_generation_prompt exclude "
                             "each other")
        return self


class TokenizeResponse(BaseModel):
    """The prompt's token ids, their count and the model's context length."""

    count: int
    max_model_len: int
    tokens: list[int]
    token_strs: list[str] | None = None


class DetokenizeRequest(StrictModel):
    """Token ids to turn back into text."""

    model: str | None = None
    tokens: list[int]


class DetokenizeResponse(BaseModel):
    """The text of the token ids."""

    prompt: str
