"""The exported GGUF in llama.cpp itself (the optional extra): same token ids, same greedy output.

Run by `make llamacpp-test` (which installs the extra and builds the default core); skipped
where llama_cpp is not importable. Base and the real default core, exported at f32: llama.cpp
must tokenize a fixed multilingual text exactly as transformers does, and its first 32 greedy
tokens on a chat prompt must be the ones transformers generates.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cogcore.gguf_export import export_gguf
from cogcore.paths import default_core_dir
from tests.conftest import REPO

llama_cpp = pytest.importorskip(
    "llama_cpp", reason="llama.cpp extra not installed: `make llamacpp` (or make llamacpp-test)")

pytestmark = [pytest.mark.llamacpp, pytest.mark.real_model]

TEXT = (
    "The capital of Austria is Vienna; die Hauptstadt Österreichs ist Wien. "
    "La capitale de l'Italie est Rome, ¿verdad? Москва — столица России. 東京は日本の首都です。 "
    "In 2024, 1,234,567 people paid $89.50 each (≈ 110 M€) — naïve café, Ångström. 🚀\n"
    "def f(x):\n\treturn x ** 2  # tabs, new lines and   spaces   \n"
)
CHAT = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]
GREEDY_TOKENS = 32


@pytest.fixture(scope="module", params=["base", "core"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, Path]:
    """(checkpoint, its f32 GGUF) for the real base and the real default core."""
    if request.param == "base":
        checkpoint = request.getfixturevalue("default_base_dir")
    else:
        checkpoint = REPO / default_core_dir()
        if not (checkpoint / "config.json").is_file():
            pytest.skip("no default core: `make llamacpp-test` builds it (make core)")
    out = tmp_path_factory.mktemp("gguf") / f"{request.param}-f32.gguf"
    return checkpoint, export_gguf(checkpoint, out, "f32").path


def _load(path: Path, logits_all: bool = False):
    return llama_cpp.Llama(model_path=str(path), n_ctx=256, n_threads=2, verbose=False,
                           logits_all=logits_all)


def test_llama_cpp_tokenizes_as_transformers(exported: tuple[Path, Path]) -> None:
    checkpoint, path = exported
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    llm = _load(path)
    assert llm.n_vocab() == len(tokenizer)
    assert llm.tokenize(TEXT.encode(), add_bos=True, special=False) == tokenizer(TEXT).input_ids
    chat = tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(chat, add_special_tokens=False).input_ids
    assert llm.tokenize(chat.encode(), add_bos=False, special=True) == ids
    assert llm.detokenize(ids, special=True).decode() == tokenizer.decode(ids)


def test_greedy_output_is_equal_at_f32(exported: tuple[Path, Path]) -> None:
    checkpoint, path = exported
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    prompt = tokenizer(tokenizer.apply_chat_template(CHAT, tokenize=False,
                                                     add_generation_prompt=True),
                       add_special_tokens=False).input_ids
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=GREEDY_TOKENS,
                             do_sample=False, eos_token_id=None, pad_token_id=0)
    want = out[0, len(prompt):].tolist()
    assert len(want) == GREEDY_TOKENS  # no early stop: all 32 positions are compared
    llm = _load(path, logits_all=True)  # keeps every position's logits in llm.scores
    llm.eval(prompt)
    got = []
    for _ in range(GREEDY_TOKENS):
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        got.append(token)
        llm.eval([token])
    assert got == want, (tokenizer.decode(got), tokenizer.decode(want))


def test_quantized_exports_load_in_llama_cpp(tmp_path: Path) -> None:
    core = REPO / default_core_dir()
    if not (core / "config.json").is_file():
        pytest.skip("no default core: `make llamacpp-test` builds it (make core)")
    tokenizer = AutoTokenizer.from_pretrained(core)
    for out_type in ("q8_0", "q4_k_m"):
        result = export_gguf(core, tmp_path / f"core-{out_type}.gguf", out_type)
        assert result.n_ff_written % 32 == 0
        kinds = {t.name: t.tensor_type for t in gguf.GGUFReader(result.path).tensors}
        # every feed-forward matrix quantized: none left at f16/f32 for an unaligned width
        assert not [name for name, kind in kinds.items() if "ffn_" in name and "norm" not in name
                    and kind in (gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.F32)]
        llm = _load(result.path)
        assert llm.tokenize(TEXT.encode()) == tokenizer(TEXT).input_ids, out_type
        reply = llm.create_chat_completion(CHAT, max_tokens=16, temperature=0.0)
        assert reply["choices"][0]["message"]["content"].strip(), out_type
