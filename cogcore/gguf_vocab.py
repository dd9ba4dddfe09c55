"""The tokenizer half of a GGUF export: a byte-level BPE written from the checkpoint itself.

llama.cpp's converter recognises a BPE pre-tokenizer by hashing the token ids of a test string,
so a trimmed, re-indexed vocabulary (the core's) is "not recognized". Here the pre-tokenizer is
read from tokenizer.json's structure instead and mapped to the llama.cpp name whose splitting
rule is the same regular expression; the tokens, their types (as llama.cpp's converter assigns
them), the merges, the special ids, transformers' own BOS/EOS behaviour and the chat template
come from the checkpoint. Anything without an exact llama.cpp equivalent is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from cogcore.errors import CogcoreError

if TYPE_CHECKING:
    import gguf

# A probe for whether the tokenizer adds BOS/EOS by itself (any non-empty text would do).
_PROBE = "Hello world"


class VocabExportError(CogcoreError):
    """The checkpoint's tokenizer has no exact llama.cpp equivalent."""


def _is_gpt2_byte_level(step: dict) -> bool:
    return (
        step.get("type") == "ByteLevel"
        and step.get("use_regex", True)
        and not step.get("add_prefix_space", False)
    )


def pre_tokenizer_name(spec: dict) -> str:
    """The llama.cpp pre-tokenizer that splits text as tokenizer.json `spec` does."""
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or model.get("ignore_merges"):
        raise VocabExportError("GGUF export needs a byte-level BPE tokenizer (as SmolLM2's)")
    if spec.get("normalizer") is not None:
        raise VocabExportError("a tokenizer with a normalizer has no llama.cpp BPE equivalent")
    pre = spec.get("pre_tokenizer") or {}
    if _is_gpt2_byte_level(pre):
        return "gpt-2"  # the GPT-2 regex alone (what the imported base and the core carry)
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else []
    if (
        len(steps) == 2
        and steps[0] == {"type": "Digits", "individual_digits": True}
        and _is_gpt2_byte_level(steps[1])
    ):
        return "smollm"  # single digits, then the GPT-2 regex (the original SmolLM tokenizer)
    raise VocabExportError(f"pre-tokenizer {json.dumps(pre)[:200]} has no llama.cpp equivalent")


def token_table(tokenizer, vocab_size: int) -> tuple[list[str], list[int]]:
    """Token strings and llama.cpp token types by id, padded to `vocab_size` with unused slots."""
    import gguf

    reverse = {index: token for token, index in tokenizer.get_vocab().items()}
    if max(reverse) >= vocab_size:
        raise VocabExportError(f"token id {max(reverse)} is outside vocab_size {vocab_size}")
    added = tokenizer.get_added_vocab()
    decoder = tokenizer.added_tokens_decoder
    tokens: list[str] = []
    types: list[int] = []
    for index in range(vocab_size):
        token = reverse.get(index)
        if token is None:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        if token not in added:
            types.append(gguf.TokenType.NORMAL)
        elif decoder[index].special:
            types.append(gguf.TokenType.CONTROL)
        else:
            # llama.cpp matches user-defined tokens on raw text: write the text they stand for.
            if not decoder[index].normalized:
                token = tokenizer.decode(tokenizer.encode(token, add_special_tokens=False))
            types.append(gguf.TokenType.USER_DEFINED)
        tokens.append(token)
    return tokens, types


def adds_special(tokenizer) -> tuple[bool, bool]:
    """Whether transformers puts BOS in front / EOS at the end of a plain encode."""
    with_special = tokenizer(_PROBE).input_ids
    plain = tokenizer(_PROBE, add_special_tokens=False).input_ids
    extra = len(with_special) > len(plain)
    bos = extra and with_special[0] == tokenizer.bos_token_id != plain[0]
    eos = extra and with_special[-1] == tokenizer.eos_token_id != plain[-1]
    return bos, eos


def add_tokenizer(writer: gguf.GGUFWriter, model_dir: Path, vocab_size: int) -> None:
    """Write the checkpoint's tokenizer into `writer` as llama.cpp's `gpt2` BPE model."""
    import gguf
    from transformers import AutoTokenizer

    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise VocabExportError(f"{model_dir} has no tokenizer.json (a fast tokenizer is needed)")
    pre = pre_tokenizer_name(json.loads(path.read_text()))
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    tokens, types = token_table(tokenizer, vocab_size)
    merges = gguf.SpecialVocab(model_dir, load_merges=True, special_token_types=()).merges
    if not merges:
        raise VocabExportError(f"{path} has no BPE merges")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    setters = {
        "bos": writer.add_bos_token_id, "eos": writer.add_eos_token_id,
        "pad": writer.add_pad_token_id, "unk": writer.add_unk_token_id,
    }
    for kind, setter in setters.items():
        index = getattr(tokenizer, f"{kind}_token_id")
        if index is not None:
            setter(index)
    add_bos, add_eos = adds_special(tokenizer)
    writer.add_add_bos_token(add_bos)
    writer.add_add_eos_token(add_eos)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)
