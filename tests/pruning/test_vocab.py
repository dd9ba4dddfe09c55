"""Vocabulary trimming by use: closed keep-sets, contiguous ids, round trips, gathered logits."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from cogcore.checkpoint import save_checkpoint
from pruning.vocab import (
    SHORT_LETTERS,
    VocabTrimError,
    base_tokens,
    check_size,
    closure,
    keep_set_file,
    parents,
    reindexed_spec,
    select_keep_set,
    short_tokens,
    spec_digest,
    token_counts,
    tokenizer_spec,
    trim_vocabulary,
)
from tests.pruning.tiny import load_fp32, one_thread  # noqa: F401 (autouse fixture)

# Text the keep-set is chosen from: the tiny tokenizer's own words, so kept tokens are in use.
USE = ["The capital of France is Paris. According to the context, the answer is B.",
       "All blickets are daxes. True and not False is True."]
KEPT_ONLY = "The capital of France is Paris."
VARIED = [
    "The capital of the Zorblax Republic is Quenton, on the river Wemble.",
    "naïve café — Ångström, 東京, Ελληνικά, emoji 🚀 and tabs\tand\nnew lines  ",
    "Pneumonoultramicroscopicsilicovolcanoconiosis, ZWL .xq Xe 1,234.5e-7 +355",
    "",
]


def _trim(directory: Path, size_below: int = 30):
    model, tokenizer = load_fp32(directory), AutoTokenizer.from_pretrained(directory)
    spec = tokenizer_spec(tokenizer)
    size = len(spec["model"]["vocab"]) - size_below
    keep = select_keep_set(spec, size, token_counts(tokenizer, USE), short_letters=0,
                           required=token_counts(tokenizer, [KEPT_ONLY]))
    trimmed = trim_vocabulary(model, tokenizer, keep=keep)
    return model, tokenizer, trimmed, keep


def test_keep_set_is_closed_complete_and_ranked_by_use(tiny_llama_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    spec = tokenizer_spec(tokenizer)
    counts = token_counts(tokenizer, USE)
    size = len(base_tokens(spec)) + 12
    keep = select_keep_set(spec, size, counts, short_letters=0)
    made = parents(spec)
    assert len(keep) == size == len(set(keep))
    assert base_tokens(spec) <= set(keep) and closure(keep, made) == set(keep)
    assert all(left in keep and right in keep for token in keep
               for left, right in [made.get(token, (token, token))])
    most = max((t for t in counts if t in made), key=counts.__getitem__)
    assert most in keep, "the most used merged token is kept"
    vocab = spec["model"]["vocab"]
    assert [vocab[t] for t in keep] == sorted(vocab[t] for t in keep), "base id order"


def test_short_tokens_are_kept_before_prose(tiny_llama_dir: Path) -> None:
    spec = tokenizer_spec(AutoTokenizer.from_pretrained(tiny_llama_dir))
    short = short_tokens(spec, 3)
    assert short and all(len(t.lstrip("Ġ.")) <= 3 and t.lstrip("Ġ.").isalpha() for t in short)
    floor = closure(base_tokens(spec) | short, parents(spec))
    prose = Counter({max(parents(spec), key=len): 100})
    keep = select_keep_set(spec, len(floor) + 1, prose, short_letters=3)
    assert short <= set(keep)
    smaller = select_keep_set(spec, len(floor) - 1, prose, short_letters=3)
    assert len(smaller) == len(floor) - 1 and set(smaller) < floor, "short ones fill first"
    with pytest.raises(VocabTrimError, match="must be above"):
        select_keep_set(spec, len(base_tokens(spec)), prose)


def test_reindexed_ids_are_contiguous_and_merges_keep_their_order(tiny_llama_dir: Path) -> None:
    spec = tokenizer_spec(AutoTokenizer.from_pretrained(tiny_llama_dir))
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    keep = select_keep_set(spec, len(spec["model"]["vocab"]) - 40, token_counts(tokenizer, USE),
                           short_letters=0)
    new, old_ids = reindexed_spec(spec, keep)
    assert sorted(new["model"]["vocab"].values()) == list(range(len(keep)))
    assert old_ids == sorted(old_ids) and old_ids[-1] > len(keep) - 1, "ids really moved"
    joined = ["".join(m) for m in new["model"]["merges"]]
    old_joined = ["".join(m) for m in spec["model"]["merges"]]
    assert joined == [m for m in old_joined if m in set(keep)]
    assert {t["content"]: t["id"] for t in new["added_tokens"]} == {
        t["content"]: t["id"] for t in spec["added_tokens"]}, "specials lead: ids unchanged"


def test_keep_sets_that_are_not_closed_or_lack_the_alphabet_are_refused(
    tiny_llama_dir: Path,
) -> None:
    spec = tokenizer_spec(AutoTokenizer.from_pretrained(tiny_llama_dir))
    made = parents(spec)
    merged = max(made, key=len)
    with pytest.raises(VocabTrimError, match="ancestry"):
        reindexed_spec(spec, base_tokens(spec) | {merged})
    with pytest.raises(VocabTrimError, match="base tokens"):
        reindexed_spec(spec, set(list(base_tokens(spec))[1:]))
    with pytest.raises(VocabTrimError):
        check_size(AutoTokenizer.from_pretrained(tiny_llama_dir), 10)


def test_trimmed_model_round_trips_gathers_logits_and_reloads(tiny_checkpoint: Path,
                                                              tmp_path: Path) -> None:
    model, tokenizer, trimmed, keep = _trim(tiny_checkpoint)
    base = load_fp32(tiny_checkpoint)
    for text in VARIED + USE:
        assert trimmed.decode(trimmed(text)["input_ids"]) == text
    assert len(trimmed(VARIED[0])["input_ids"]) > len(tokenizer(VARIED[0])["input_ids"])

    base_ids = tokenizer(KEPT_ONLY)["input_ids"]
    assert all(t in set(keep) for t in tokenizer.convert_ids_to_tokens(base_ids))
    ids = trimmed(KEPT_ONLY)["input_ids"]
    old_ids = [tokenizer.convert_tokens_to_ids(t) for t in keep]
    assert [old_ids[i] for i in ids] == base_ids, "a text of kept tokens splits as before"
    with torch.no_grad():
        before = base(torch.tensor([base_ids])).logits[..., old_ids]
        after = model(torch.tensor([ids])).logits
    torch.testing.assert_close(after, before)

    save_checkpoint(model, trimmed, tmp_path / "core")
    reloaded, reloaded_tok = load_fp32(tmp_path / "core"), AutoTokenizer.from_pretrained(
        tmp_path / "core")
    assert reloaded.config.vocab_size == len(keep) == len(reloaded_tok)
    assert reloaded.get_input_embeddings().weight.shape[0] == len(keep)
    assert reloaded_tok(KEPT_ONLY)["input_ids"] == ids
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        for config in (reloaded.config, reloaded.generation_config):
            new = getattr(config, name)
            old = getattr(base.config, name)
            assert reloaded_tok.convert_ids_to_tokens(new) == tokenizer.convert_ids_to_tokens(old)
    assert reloaded_tok.eos_token_id == reloaded.config.eos_token_id
    chat = reloaded_tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    first = reloaded_tok(chat, add_special_tokens=False)["input_ids"][0]
    assert reloaded_tok.convert_ids_to_tokens(first) == "<|im_start|>"


def test_rank_selection_keeps_the_ids_below_size(tiny_llama_dir: Path) -> None:
    model, tokenizer = load_fp32(tiny_llama_dir), AutoTokenizer.from_pretrained(tiny_llama_dir)
    size = len(tokenizer) - 30
    trimmed = trim_vocabulary(model, tokenizer, size, selection="rank")
    assert len(trimmed) == size and trimmed.decode(trimmed(VARIED[0])["input_ids"]) == VARIED[0]
    with pytest.raises(VocabTrimError):
        trim_vocabulary(model, tokenizer, len(tokenizer) + 1, selection="rank")


@pytest.mark.parametrize(("size", "rule"),
                         [(16384, "use"), (12288, "use"), (16384, "prose"), (20480, "prose"),
                          (24576, "prose"), (28672, "prose"), (32768, "prose")])
def test_committed_keep_set_fits_the_default_base(size: int, rule: str,
                                                  default_base_dir: Path) -> None:
    record = json.loads(keep_set_file(size, rule).read_text(encoding="utf-8"))
    tokenizer = AutoTokenizer.from_pretrained(default_base_dir)
    spec = tokenizer_spec(tokenizer)
    keep = record["tokens"]
    assert record["tokenizer"] == spec_digest(spec) and len(keep) == size == len(set(keep))
    assert closure(keep, parents(spec)) == set(keep)
    assert short_tokens(spec, record["rule"]["short_letters"]) <= set(keep)
    assert record["rule"]["short_letters"] <= SHORT_LETTERS
    new, _ = reindexed_spec(spec, keep)
    assert sorted(new["model"]["vocab"].values()) == list(range(size))
    assert record["rule"].get("name", "use") == rule


def test_use_counts_weigh_each_source_and_require_names_by_rule(
        monkeypatch: pytest.MonkeyPatch, tiny_llama_dir: Path) -> None:
    from pruning import corpus, everyday, vocab

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    monkeypatch.setattr(corpus, "general_corpus", lambda chars: ["the answer is"])
    monkeypatch.setattr(everyday, "everyday_samples", lambda: ["capital"])
    monkeypatch.setattr(corpus, "knowledge_base_texts", lambda: ["Zorblax"])
    monkeypatch.setattr(corpus, "prompt_texts", lambda tok: ["Question"])
    monkeypatch.setattr(vocab, "word_counts", lambda tok: Counter({"Ġcafe": 3.0}))
    counts, required = vocab.use_counts(tokenizer, word_share=0.5, everyday_share=0.3)
    assert sum(counts.values()) == pytest.approx(1.0)
    assert counts["Ġcafe"] == pytest.approx(0.5)
    everyday_tokens = token_counts(tokenizer, ["capital"])
    assert sum(counts[t] for t in everyday_tokens) == pytest.approx(0.3)
    names = set(token_counts(tokenizer, ["Zorblax"]))
    assert names <= required
    _, prose_required = vocab.use_counts(tokenizer, **vocab.USE_RULES["prose"])
    assert prose_required == set(token_counts(tokenizer, ["Question"]))
    with pytest.raises(VocabTrimError):
        vocab.use_counts(tokenizer, word_share=0.8, everyday_share=0.3)


def test_word_counts_spread_each_word_over_its_tokens(default_base_dir: Path) -> None:
    from pruning import corpus
    from pruning.vocab import word_counts

    tokenizer = AutoTokenizer.from_pretrained(default_base_dir)
    counts = word_counts(tokenizer, 20)
    total = sum(weight for _, weight in corpus.english_words(20))
    assert counts["Ġthe"] > counts["ĠThe"] > 0
    assert sum(counts.values()) >= total  # a word split in k tokens counts k times
