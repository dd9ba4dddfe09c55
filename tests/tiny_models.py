"""Tiny random causal LMs built from a config in code: no hub, no large weights.

A Llama (multi-head attention) and a Qwen2 (grouped-query attention, attention bias) keep
pruning and serving honest about more than one architecture.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [
    "The capital of France is Paris. The capital of Peru is Lima.",
    "All blickets are daxes. No dax is a wug. Is every blicket a wug? No.",
    "True and not False is True. 7 is greater than 3. The list 4 2 9 sorted is 2 4 9.",
    "According to the context, the answer is B. Answer using only the given context.",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z 0 1 2 3 4 5 6 7 8 9",
]
VOCAB_SIZE = 320
CONTEXT = 4096  # room for a few real evidence passages in a reader prompt


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE trained in code on a fixed corpus, with a ChatML chat template."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
        model_max_length=CONTEXT,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _common(tokenizer: PreTrainedTokenizerFast) -> dict[str, int]:
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "max_position_embeddings": CONTEXT,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def build_model(arch: str, tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> PreTrainedModel:
    """A tiny random model of `arch` ("llama" or "qwen2"), identical for the same seed."""
    torch.manual_seed(seed)
    if arch == "llama":
        config = LlamaConfig(**_common(tokenizer), num_attention_heads=4, num_key_value_heads=4,
                             tie_word_embeddings=True)
        model: PreTrainedModel = LlamaForCausalLM(config)
    elif arch == "qwen2":
        config = Qwen2Config(**_common(tokenizer), num_attention_heads=4, num_key_value_heads=2,
                             tie_word_embeddings=False)
        model = Qwen2ForCausalLM(config)
    else:
        raise ValueError(f"unknown tiny architecture {arch!r}")
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    return model.eval()


def save_tiny_checkpoint(arch: str, directory: Path, seed: int = 0) -> Path:
    """Write a complete tiny checkpoint (safetensors, config, tokenizer) to `directory`."""
    tokenizer = build_tokenizer()
    build_model(arch, tokenizer, seed).save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory
