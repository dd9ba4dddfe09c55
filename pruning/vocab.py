"""Vocabulary trimming by use: keep the tokens that text the core reads actually uses.

The keep-set of a byte-level BPE vocabulary is, in this order of priority:
1. the special tokens and the byte alphabet (so every text still tokenizes);
2. every token of one to `short_letters` ASCII letters, with or without a leading space (the
   short codes a reader copies out of its context: currency codes, domains, element symbols,
   postal abbreviations, the syllables of unfamiliar names);
3. every token of the default knowledge base's documents and of the reader prompt's scaffolding
   (the text the served core reads; measured: without them "Question", "Answer" and "According"
   were re-split in every reader prompt);
4. the most frequent tokens of general English: half the weight from a prose corpus
   (`pruning.corpus.general_corpus`, docstrings: punctuation, layout, technical words), half
   from the word frequencies of everyday English (`pruning.corpus.english_words`, wordfreq),
until `size` tokens, always closed under BPE ancestry: a merged token is kept only with the two
parts its merge joins, recursively. The merges whose result is kept are kept in their order, so
a text made of kept tokens tokenizes exactly as before and any other text falls back to smaller
kept pieces. Ids are re-indexed to 0..N-1 in the base's id order (special tokens keep their
relative order), the model's embedding rows (and an untied output head's) are gathered, and the
config's bos/eos/pad/unk ids follow. Stock `AutoTokenizer`/`AutoModelForCausalLM` load the result.

Two rules fill it (`USE_RULES`): "use" as above; "prose" (the default core's) requires only the
reader prompt's tokens in step 3, so names rare in prose are re-split and the trim forgets as the
merge rank did, and takes 0.3 of the fill's weight from the base's everyday samples
(`pruning.everyday`), 0.2 from the prose corpus, 0.5 from word frequencies.

The keep-sets of the default base's tokenizer are committed under `pruning/data/` (a JSON list
of token strings) so every machine builds the same core:
    python -m pruning.keep_set_build --size 16384 [--rule prose]
Another tokenizer gets its keep-set from the corpus at trim time. `selection="rank"` keeps the
old rule (ids below `size`, i.e. the merge list truncated by rank) for comparison.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cogcore.errors import CogcoreError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DATA_DIR = Path(__file__).resolve().parent / "data"
# Measured trim-only at 16384 (per-word perplexity vs the base, pydoc text / everyday text;
# open-book / fictional reading vs the base), docs/core-report.md "Vocabulary by everyday use":
# corpus only, short=3: 1.19x / 10.1x; corpus and word frequencies half and half, short=2:
# 1.34x / 2.43x, reading 1.01x / 0.99x; merge rank: 1.87x / 2.01x, reading 0.79x / 0.84x;
# the prose rule: 1.54x / 1.72x, reading 0.84x / 0.96x, closed-book 0.48x (rank 0.53x).
SHORT_LETTERS = 2
CORPUS_CHARS = 8_000_000  # all of the general corpus (about 7.6M characters)
WORDS = 200_000  # the most frequent English words whose splits count
WORD_SHARE = 0.5  # of the fill's weight, against the prose corpus
# The keep-set rules by use: the fill's share from the base's everyday samples, and whether the
# knowledge base's tokens are required. "use" keeps every KB name whole, so the trim forgets
# nothing; "prose" leaves names rare in prose to be re-split, as the merge rank does.
USE_RULES = {"use": {"everyday_share": 0.0, "knowledge_base": True},
             "prose": {"everyday_share": 0.3, "knowledge_base": False}}
SELECTIONS = (*USE_RULES, "rank")
_BYTE_SPACE = "Ġ"  # how byte-level BPE writes a leading space


class VocabTrimError(CogcoreError, ValueError):
    """A tokenizer that cannot be trimmed, or a size or keep-set that does not fit it."""


def _merge_pair(merge: Any) -> tuple[str, str]:
    return tuple(merge) if isinstance(merge, list) else tuple(merge.split(" ", 1))


def _bpe(spec: dict[str, Any]) -> dict[str, Any]:
    model = spec.get("model", {})
    if model.get("type") != "BPE" or not model.get("merges"):
        raise VocabTrimError("vocabulary trimming needs a BPE tokenizer with a merge list")
    return model


def tokenizer_spec(tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    """The tokenizer.json spec of a fast tokenizer."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise VocabTrimError("vocabulary trimming needs a fast (tokenizers) tokenizer")
    return json.loads(backend.to_str())


def spec_digest(spec: dict[str, Any]) -> str:
    """A short hash of a spec's vocabulary and merges: which tokenizer a keep-set belongs to."""
    model = _bpe(spec)
    merges = [list(_merge_pair(m)) for m in model["merges"]]
    blob = json.dumps([sorted(model["vocab"].items()), merges], ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def parents(spec: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Each merged token -> the two tokens its (first) merge joins."""
    out: dict[str, tuple[str, str]] = {}
    for merge in _bpe(spec)["merges"]:
        left, right = _merge_pair(merge)
        out.setdefault(left + right, (left, right))
    return out


def base_tokens(spec: dict[str, Any]) -> set[str]:
    """Tokens no merge creates (the byte alphabet, special tokens) plus the added tokens."""
    made = parents(spec)
    vocab = _bpe(spec)["vocab"]
    return {t for t in vocab if t not in made} | {
        t["content"] for t in spec.get("added_tokens", []) if t["content"] in vocab}


def closure(tokens: Iterable[str], made: dict[str, tuple[str, str]]) -> set[str]:
    """`tokens` with all their BPE ancestors."""
    out: set[str] = set()
    stack = list(tokens)
    while stack:
        token = stack.pop()
        if token not in out:
            out.add(token)
            stack.extend(made.get(token, ()))
    return out


def short_tokens(spec: dict[str, Any], letters: int) -> set[str]:
    """Tokens of 1..`letters` ASCII letters, with or without a leading space or dot."""
    if letters <= 0:
        return set()
    pattern = re.compile(rf"^(?:{_BYTE_SPACE}|\.)?[A-Za-z]{{1,{letters}}}$")
    return {t for t in _bpe(spec)["vocab"] if pattern.match(t)}


def token_counts(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> Counter[str]:
    """How often each token (as a vocabulary string) occurs when `tokenizer` splits `texts`."""
    backend = tokenizer.backend_tokenizer
    counts: Counter[str] = Counter()
    for start in range(0, len(texts), 1024):
        for encoding in backend.encode_batch(list(texts[start : start + 1024]),
                                             add_special_tokens=False):
            counts.update(encoding.tokens)
    return counts


def select_keep_set(spec: dict[str, Any], size: int, counts: Counter[str], *,
                    short_letters: int = SHORT_LETTERS,
                    required: Iterable[str] = ()) -> list[str]:
    """The keep-set of `size` tokens in the base's id order.

    The base tokens always; then, each with its ancestry and while it fits, the short tokens
    and the `required` ones (in id order), then the tokens of `counts`, most frequent first.
    """
    model = _bpe(spec)
    vocab, made = model["vocab"], parents(spec)
    keep = closure(base_tokens(spec), made)
    if not len(keep) < size <= len(vocab):
        raise VocabTrimError(f"vocabulary size {size} must be above {len(keep)} (alphabet and "
                             f"special tokens) and at most {len(vocab)}")
    by_id = sorted(short_tokens(spec, short_letters), key=vocab.__getitem__) + sorted(
        set(required) & vocab.keys(), key=vocab.__getitem__)
    by_count = [t for t, _ in sorted(counts.items(), key=lambda i: (-i[1], vocab.get(i[0], 0)))]
    for token in by_id + by_count:
        if len(keep) >= size:
            break
        if token in keep or token not in vocab:
            continue
        extra = closure([token], made) - keep
        if len(keep) + len(extra) <= size:
            keep |= extra
    return sorted(keep, key=vocab.__getitem__)


def reindexed_spec(spec: dict[str, Any], keep: Iterable[str]) -> tuple[dict[str, Any], list[int]]:
    """A spec holding only `keep`, ids 0..N-1 in the old order; and the old id of each new id.

    Raises unless `keep` holds every base token and is closed under BPE ancestry.
    """
    model = _bpe(spec)
    vocab, made = model["vocab"], parents(spec)
    kept = set(keep)
    missing = (base_tokens(spec) - kept) | {t for t in kept if t not in vocab}
    if missing:
        raise VocabTrimError(f"the keep-set lacks base tokens or holds unknown ones: "
                             f"{sorted(missing)[:5]}")
    orphans = [t for t in kept if any(p not in kept for p in made.get(t, ()))]
    if orphans:
        raise VocabTrimError(f"the keep-set is not closed under BPE ancestry: {orphans[:5]}")
    old_ids = sorted(vocab[t] for t in kept)
    new_id = {old: new for new, old in enumerate(old_ids)}
    out = copy.deepcopy(spec)
    out["model"]["vocab"] = {t: new_id[vocab[t]] for t in sorted(kept, key=vocab.__getitem__)}
    out["model"]["merges"] = [m for m in model["merges"] if "".join(_merge_pair(m)) in kept]
    for added in out.get("added_tokens", []):
        if added["id"] not in new_id:
            raise VocabTrimError(f"added token {added['content']!r} is not kept")
        added["id"] = new_id[added["id"]]
    _remap_processor(out.get("post_processor"), new_id)
    return out, old_ids


def _remap_processor(processor: dict[str, Any] | None, new_id: dict[int, int]) -> None:
    if not processor:
        return
    for inner in processor.get("processors", []) or []:
        _remap_processor(inner, new_id)
    for special in (processor.get("special_tokens") or {}).values():
        special["ids"] = [new_id[i] for i in special.get("ids", [])]
    for key in ("sep", "cls"):  # BertProcessing / RobertaProcessing: [token, id]
        if isinstance(processor.get(key), list):
            processor[key][1] = new_id[processor[key][1]]


def keep_set_file(size: int, rule: str = "use") -> Path:
    """Where the committed keep-set of `size` tokens by `rule` for the default base lives."""
    return DATA_DIR / (f"keep-set-{size}.json" if rule == "use" else f"keep-set-{rule}-{size}.json")


def read_keep_set(path: Path, spec: dict[str, Any], size: int) -> list[str] | None:
    """The keep-set in `path` (as `pruning.keep_set_build` writes it) when it holds `size`
    tokens built for this tokenizer, else None."""
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    fits = record.get("tokenizer") == spec_digest(spec) and record.get("size") == size
    return record["tokens"] if fits else None


def committed_keep_set(spec: dict[str, Any], size: int, rule: str = "use") -> list[str] | None:
    """The committed keep-set of `size` tokens by `rule` when it was built for this tokenizer,
    else None."""
    return read_keep_set(keep_set_file(size, rule), spec, size)


def _shares(counts: Counter[str]) -> dict[str, float]:
    total = sum(counts.values()) or 1
    return {token: count / total for token, count in counts.items()}


def word_counts(tokenizer: PreTrainedTokenizerBase, words: int = WORDS) -> Counter[str]:
    """Token frequencies of everyday English: each word's frequency spread over its tokens."""
    from pruning.corpus import english_words

    forms, weights = zip(*english_words(words), strict=True)
    counts: Counter[str] = Counter()
    backend = tokenizer.backend_tokenizer
    for start in range(0, len(forms), 4096):
        encodings = backend.encode_batch(list(forms[start : start + 4096]),
                                         add_special_tokens=False)
        for encoding, weight in zip(encodings, weights[start : start + 4096], strict=True):
            for token in encoding.tokens:
                counts[token] += weight
    return counts


def use_counts(tokenizer: PreTrainedTokenizerBase, corpus_chars: int = CORPUS_CHARS,
               word_share: float = WORD_SHARE, everyday_share: float = 0.0,
               knowledge_base: bool = True) -> tuple[Counter[str], set[str]]:
    """The fill's weights (`word_share` from word frequencies, `everyday_share` from the base's
    everyday prose samples, `pruning.everyday`, the rest from the prose corpus); the required
    tokens: the reader prompt's, and with `knowledge_base` the KB documents' too."""
    from pruning.corpus import general_corpus, knowledge_base_texts, prompt_texts
    from pruning.everyday import everyday_samples

    if not 0.0 <= word_share + everyday_share <= 1.0 or min(word_share, everyday_share) < 0:
        raise VocabTrimError(f"shares {word_share} + {everyday_share} must lie in [0, 1]")
    sources = ((1.0 - word_share - everyday_share,
                lambda: token_counts(tokenizer, general_corpus(corpus_chars))),
               (word_share, lambda: word_counts(tokenizer)),
               (everyday_share, lambda: token_counts(tokenizer, everyday_samples())))
    counts: Counter[str] = Counter()
    for share, source_counts in sources:
        if share:  # a source without weight is never read
            for token, weight in _shares(source_counts()).items():
                counts[token] += share * weight
    read = prompt_texts(tokenizer) + (knowledge_base_texts() if knowledge_base else [])
    return counts, set(token_counts(tokenizer, read))


def keep_set(tokenizer: PreTrainedTokenizerBase, size: int, rule: str = "use") -> list[str]:
    """The committed keep-set by `rule` (`USE_RULES`) for this tokenizer and size, else one
    built from the corpus."""
    spec = tokenizer_spec(tokenizer)
    committed = committed_keep_set(spec, size, rule)
    if committed is not None:
        return committed
    floor = closure(base_tokens(spec) | short_tokens(spec, SHORT_LETTERS), parents(spec))
    if len(floor) >= size:  # no room for use counts: spare the corpus
        return select_keep_set(spec, size, Counter())
    counts, required = use_counts(tokenizer, **USE_RULES[rule])
    return select_keep_set(spec, size, counts, required=required)


def rank_keep(spec: dict[str, Any], size: int) -> list[str]:
    """The old rule: the ids below `size` (the merge list truncated by rank)."""
    vocab = _bpe(spec)["vocab"]
    if not len(base_tokens(spec)) < size <= len(vocab):
        raise VocabTrimError(f"vocabulary size {size} must be above {len(base_tokens(spec))} "
                             f"(alphabet and special tokens) and at most {len(vocab)}")
    keep = [t for t, i in vocab.items() if i < size]
    if len(keep) != size or len(closure(keep, parents(spec))) != size:
        raise VocabTrimError("the vocabulary is not in merge order, so it cannot be trimmed "
                             "by rank")
    return keep


def check_size(tokenizer: PreTrainedTokenizerBase, size: int, selection: str = "use") -> None:
    """Raise `VocabTrimError` when `tokenizer` cannot be trimmed to `size` (cheap, no corpus)."""
    spec = tokenizer_spec(tokenizer)
    if selection not in SELECTIONS:
        raise VocabTrimError(f"vocabulary selection must be one of {SELECTIONS}")
    if selection == "rank":
        rank_keep(spec, size)
        return
    floor, full = len(closure(base_tokens(spec), parents(spec))), len(_bpe(spec)["vocab"])
    if not floor < size <= full:
        raise VocabTrimError(f"vocabulary size {size} must be above {floor} (alphabet and "
                             f"special tokens) and at most {full}")


def reindexed_tokenizer(tokenizer: PreTrainedTokenizerBase,
                        spec: dict[str, Any]) -> PreTrainedTokenizerBase:
    """`tokenizer` with `spec` (re-indexed) as its tokenizer.json, through a save and a reload."""
    from transformers import AutoTokenizer

    old = {t["content"]: t["id"] for t in tokenizer_spec(tokenizer).get("added_tokens", [])}
    new = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        (Path(tmp) / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False),
                                                  encoding="utf-8")
        config_file = Path(tmp) / "tokenizer_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8"))
        decoder = config.get("added_tokens_decoder")
        if isinstance(decoder, dict):
            config["added_tokens_decoder"] = {
                str(new.get(v.get("content"), old.get(v.get("content"), int(k)))): v
                for k, v in decoder.items()}
        config_file.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
        return AutoTokenizer.from_pretrained(tmp, local_files_only=True)


def _gather_rows(model: PreTrainedModel, old_ids: list[int]) -> None:
    import torch

    index = torch.tensor(old_ids, dtype=torch.long)
    embed, head = model.get_input_embeddings(), model.get_output_embeddings()
    tied = head is None or head.weight.data_ptr() == embed.weight.data_ptr()
    with torch.no_grad():
        rows = embed.weight.index_select(0, index.to(embed.weight.device)).clone()
        head_rows = None if tied else head.weight.index_select(0, index.to(head.weight.device))
        head_bias = None if tied or getattr(head, "bias", None) is None else \
            head.bias.index_select(0, index.to(head.bias.device))
        model.resize_token_embeddings(len(old_ids), mean_resizing=False)
        model.get_input_embeddings().weight.copy_(rows)
        if head_rows is not None:
            new_head = model.get_output_embeddings()
            new_head.weight.copy_(head_rows)
            if head_bias is not None:
                new_head.bias.copy_(head_bias)


def _remap_config_ids(model: PreTrainedModel, old_ids: list[int]) -> None:
    new_id = {old: new for new, old in enumerate(old_ids)}
    configs = [model.config, getattr(model, "generation_config", None)]
    for config in filter(None, configs):
        for name in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id",
                     "decoder_start_token_id"):
            value = getattr(config, name, None)
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, int) and v not in new_id for v in values):
                raise VocabTrimError(f"{name} {value} would be trimmed away")
            mapped = [new_id[v] if isinstance(v, int) else v for v in values]
            if value is not None:
                setattr(config, name, mapped if isinstance(value, list) else mapped[0])


def trim_vocabulary(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, size: int | None = None, *,
    keep: Iterable[str] | None = None, selection: str = "use",
) -> PreTrainedTokenizerBase:
    """Cut `model` (in place) and a copy of `tokenizer` to a keep-set; the new tokenizer.

    `keep` (token strings) overrides the choice; otherwise `selection` "use" or "prose" takes
    `keep_set` (the committed list for the default base) and "rank" the ids below `size`.
    """
    spec = tokenizer_spec(tokenizer)
    if keep is None:
        if size is None:
            raise VocabTrimError("give a size or a keep-set")
        check_size(tokenizer, size, selection)
        keep = (rank_keep(spec, size) if selection == "rank"
                else keep_set(tokenizer, size, selection))
    new_spec, old_ids = reindexed_spec(spec, keep)
    _remap_config_ids(model, old_ids)
    _gather_rows(model, old_ids)
    return reindexed_tokenizer(tokenizer, new_spec)
