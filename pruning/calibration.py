"""Calibration data as tokenized batches with a mask over the positions that predict answers.

Every example is a rendered prompt followed by a target continuation; the loss (and so every
attribution) is taken only where the model predicts a target token. A closed-book fact is the
chat prompt plus the start of the reply ("The capital of France is") with target " Paris"; a
general text has an empty prompt and is its own target.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# The retain sets that are prose (an empty prompt, every position scored): documentation
# paragraphs, and the base's everyday samples when the cut reads them.
GENERAL = "general"
EVERYDAY = "everyday"
PROSE_SETS = (GENERAL, EVERYDAY)


@dataclass(frozen=True)
class Example:
    """A rendered prompt and the continuation whose tokens are scored."""

    prompt: str
    target: str


@dataclass(frozen=True)
class Batch:
    """Right-padded token ids; `predicts[b, t]` is True where position t predicts a target."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    predicts: torch.Tensor

    @property
    def answer_tokens(self) -> int:
        """How many target tokens the batch scores."""
        return int(self.predicts.sum())

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on `device`."""
        return Batch(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.predicts)))


def chat_prompt(
    tokenizer: PreTrainedTokenizerBase,
    user: str,
    *,
    system: str | None = None,
    assistant_prefix: str = "",
) -> str:
    """The chat-template text of one user turn, with the assistant's reply already started."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user})
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return text + assistant_prefix


def encode_example(tokenizer: PreTrainedTokenizerBase, example: Example,
                   max_tokens: int) -> tuple[list[int], list[int]]:
    """The prompt's and the target's token ids, at most `max_tokens` together."""
    prompt = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
    target = tokenizer(example.target, add_special_tokens=False)["input_ids"]
    target = target[: max_tokens - 1]
    # Keep the end of the prompt (the question next to the answer) when it is too long.
    prompt = prompt[max(0, len(prompt) + len(target) - max_tokens) :]
    return prompt, target


def make_batches(
    tokenizer: PreTrainedTokenizerBase,
    examples: Iterable[Example],
    *,
    batch_size: int = 8,
    max_tokens: int = 256,
) -> list[Batch]:
    """Tokenize `examples` into batches of similar length (sorted, so little padding)."""
    encoded = [encode_example(tokenizer, e, max_tokens) for e in examples]
    encoded = [(p, t) for p, t in encoded if t]
    encoded.sort(key=lambda pt: len(pt[0]) + len(pt[1]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batches = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        length = max(len(p) + len(t) for p, t in chunk)
        ids = torch.full((len(chunk), length), pad, dtype=torch.long)
        attention = torch.zeros((len(chunk), length), dtype=torch.long)
        predicts = torch.zeros((len(chunk), length), dtype=torch.bool)
        for row, (prompt, target) in enumerate(chunk):
            n = len(prompt) + len(target)
            ids[row, :n] = torch.tensor(prompt + target)
            attention[row, :n] = 1
            # Position t predicts token t + 1: the last prompt token predicts the first target.
            predicts[row, max(0, len(prompt) - 1) : n - 1] = True
        batches.append(Batch(ids, attention, predicts))
    return batches


def answer_loss(model: PreTrainedModel, batch: Batch) -> torch.Tensor:
    """Summed next-token cross-entropy over the answer positions (so gradients are per token)."""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    targets = batch.input_ids[:, 1:]
    mask = batch.predicts[:, :-1]
    return torch.nn.functional.cross_entropy(
        logits[:, :-1][mask].float(), targets[mask], reduction="sum"
    )


def token_count(batches: Sequence[Batch]) -> int:
    """Non-padding tokens over all batches."""
    return int(sum(int(b.attention_mask.sum()) for b in batches))


def iterate(batches: Sequence[Batch], device: torch.device | str) -> Iterator[Batch]:
    """The batches moved to `device`, one at a time."""
    for batch in batches:
        yield batch.to(device)


@dataclass(frozen=True)
class CalibrationSets:
    """The fact set a method may score on, and the retain sets that scoring and healing use."""

    facts: list[Batch]
    retain: dict[str, list[Batch]]
    # The retain examples as text, to tokenize again for a core whose vocabulary was trimmed.
    retain_examples: dict[str, list[Example]] = field(default_factory=dict)
    batch_size: int = 8
    max_tokens: int = 384
    # General prose beyond the retain sets, for the least-squares refit only: the refit fits
    # what each MLP writes on ordinary text, which a few dozen paragraphs under-determine.
    prose: list[Example] = field(default_factory=list)

    def retain_batches(self) -> list[Batch]:
        """Every retain batch: what healing and the curvature factors see (never facts)."""
        return [batch for batches in self.retain.values() for batch in batches]

    def refit_batches(self, tokenizer: PreTrainedTokenizerBase, prose_chars: int) -> list[Batch]:
        """What the least-squares refit reproduces the base on: the retain sets, and the first
        `prose_chars` characters of `prose` tokenized by `tokenizer`."""
        loaded = sum(len(e.target) for e in self.prose)
        if prose_chars > loaded:
            raise ValueError(f"{prose_chars} characters of prose asked, {loaded} loaded")
        return self.retain_batches() + make_batches(
            tokenizer, _first_chars(self.prose, prose_chars), batch_size=self.batch_size,
            max_tokens=self.max_tokens)

    def retain_batches_for(self, tokenizer: PreTrainedTokenizerBase) -> list[Batch]:
        """The retain examples tokenized by `tokenizer` (a trimmed vocabulary splits words
        differently from the base's, so the base's batches would feed it ids it lacks)."""
        if not self.retain_examples:
            raise ValueError("these calibration sets keep no retain text to tokenize again")
        return [batch for items in self.retain_examples.values()
                for batch in make_batches(tokenizer, items, batch_size=self.batch_size,
                                          max_tokens=self.max_tokens)]


def _first_chars(examples: Sequence[Example], chars: int) -> list[Example]:
    """The shortest prefix of `examples` whose targets hold at least `chars` characters."""
    chosen: list[Example] = []
    total = 0
    for example in examples:
        if total >= chars:
            break
        chosen.append(example)
        total += len(example.target)
    return chosen


def general_paragraphs(count: int) -> list[str]:
    """`count` paragraphs of general prose (`pruning.corpus`: never the perplexity texts)."""
    from pruning.corpus import general_corpus

    return general_corpus()[:count]


def calibration_examples(tokenizer: PreTrainedTokenizerBase, count: int) -> dict[str, list]:
    """Up to `count` examples per set, all from the calibration split of the evaluation data.

    Each headline reasoning task (the ones the base does well above chance: arithmetic) is a
    retain set of its own, so that `count` examples protect it rather than a few shared with
    every task; the other tasks share one set.
    """
    from evaluation import data
    from evaluation.suites import HEADLINE_TASKS

    def qa(items: Sequence) -> list[Example]:
        return [Example(i.prompt.render(tokenizer), i.target) for i in items[:count]]

    def choices(tasks: Sequence[str]) -> list[Example]:
        per_task = -(-count // len(tasks))
        return [Example(item.context, item.answer) for task in tasks
                for item in data.reasoning_items(task, "calibration", per_task)][:count]

    others = [task for task in data.REASONING_TASKS if task not in HEADLINE_TASKS]
    return {
        "facts": qa(data.closed_book_items("calibration")),
        **{kind: qa(data.reading_items(kind, "calibration")) for kind in data.READING_KINDS},
        **{f"reasoning.{task}": choices([task]) for task in HEADLINE_TASKS},
        "reasoning": choices(others),
        GENERAL: [Example("", text) for text in general_paragraphs(count)],
    }


def _alternated(first: Sequence[Example], second: Sequence[Example]) -> list[Example]:
    """Both lists in order, each next example from whichever has given fewer characters."""
    out: list[Example] = []
    i = j = given_first = given_second = 0
    while i < len(first) or j < len(second):
        if j >= len(second) or (i < len(first) and given_first <= given_second):
            out.append(first[i])
            given_first, i = given_first + len(first[i].target), i + 1
        else:
            out.append(second[j])
            given_second, j = given_second + len(second[j].target), j + 1
    return out


def calibration_sets(
    tokenizer: PreTrainedTokenizerBase, count: int, *, batch_size: int = 8, max_tokens: int = 384,
    prose_chars: int = 0, everyday: bool = False,
) -> CalibrationSets:
    """Tokenized calibration sets: closed-book facts, reading/reasoning/general retain, and
    at least `prose_chars` characters of general prose (after the retain set's paragraphs)
    for the refit. With `everyday`, the base's everyday samples (`pruning.everyday`) join as a
    retain set of their own and as half the refit's prose, by characters."""
    from pruning.corpus import general_corpus
    from pruning.everyday import everyday_samples

    examples = calibration_examples(tokenizer, count)
    samples = [Example("", text) for text in everyday_samples()] if everyday else []
    if everyday and len(samples) <= count:
        raise ValueError(f"{len(samples)} everyday samples; the retain set takes {count}")
    if everyday:
        examples[EVERYDAY] = samples[:count]
    batched = {
        name: make_batches(tokenizer, items, batch_size=batch_size, max_tokens=max_tokens)
        for name, items in examples.items()
    }
    facts = batched.pop("facts")
    examples.pop("facts")
    prose = _first_chars(_alternated([Example("", p) for p in general_corpus()[count:]],
                                     samples[count:]), prose_chars)
    return CalibrationSets(facts=facts, retain=batched, retain_examples=examples,
                           batch_size=batch_size, max_tokens=max_tokens, prose=prose)
