"""The served model's likelihood of a question given each candidate evidence sentence.

The evidence sentence is chosen by embedding and word overlap (`service.evidence_sentences`).
When the question's relation is worded unlike the store's sentences ("Which city is the
political centre of Kenya?"), the embedding can prefer a look-alike fact of the same page. The
reader model itself knows better which sentence the question asks about: log P(question |
sentence), summed over the question's tokens, ranks the best few candidates (issue 16,
docs/facts.md). As the question's tokens are the same for every candidate, this orders them as
the pointwise mutual information of question and sentence does.

`continuation_logprobs` is the torch engine's implementation (`Engine.likelihoods`, run on its
model thread between decode steps); `scoring_prompts` builds what is scored, and
`QuestionScorer` is what grounding calls.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedModel

# (token ids, index of the first scored token) -> the sum of those tokens' log-probabilities.
Rows = list[tuple[list[int], int]]
Likelihoods = Callable[[Rows], list[float]]


class LikelihoodQueue:
    """The likelihoods asked of an engine, computed on its model thread between two steps."""

    def __init__(self) -> None:
        self._jobs: collections.deque[tuple[Rows, Future[list[float]]]] = collections.deque()

    def __bool__(self) -> bool:
        return bool(self._jobs)

    def ask(self, rows: Rows, refused: Exception | None = None) -> Future[list[float]]:
        """Queue `rows` (any thread); their future, failed at once with `refused` if given."""
        future: Future[list[float]] = Future()
        if refused is not None:
            future.set_exception(refused)
        else:
            self._jobs.append((rows, future))
        return future

    def serve(self, compute: Likelihoods) -> None:
        """Compute every queued job (model thread), one pass each."""
        while self._jobs:
            rows, future = self._jobs.popleft()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(compute(rows))
                except Exception as exc:  # noqa: BLE001 - the asker falls back on its own
                    future.set_exception(exc)

    def cancel_all(self) -> None:
        """Cancel what is still queued (the engine stopped)."""
        while self._jobs:
            self._jobs.popleft()[1].cancel()


def continuation_logprobs(model: PreTrainedModel, pad_id: int,
                          rows: Sequence[tuple[Sequence[int], int]]) -> list[float]:
    """For each (ids, start): the sum of log P(ids[i] | ids[:i]) over i >= start, in one
    batched forward pass (rows right-padded, masked)."""
    if not rows:
        return []
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (seq, _) in enumerate(rows):
        ids[r, :len(seq)] = torch.tensor(list(seq), dtype=torch.long)
        mask[r, :len(seq)] = 1
    hidden = model.base_model(input_ids=ids.to(model.device),
                              attention_mask=mask.to(model.device)).last_hidden_state
    # Only the positions that predict a scored token go through the output layer.
    where = [(r, i) for r, (seq, start) in enumerate(rows) for i in range(max(start, 1), len(seq))]
    picked = hidden[[r for r, _ in where], [i - 1 for _, i in where]]
    logprobs = model.get_output_embeddings()(picked).float().log_softmax(-1)
    targets = torch.tensor([rows[r][0][i] for r, i in where], device=logprobs.device)
    chosen = logprobs.gather(1, targets[:, None])[:, 0].tolist()
    out = [0.0] * len(rows)
    for (r, _), value in zip(where, chosen, strict=True):
        out[r] += value
    return out


def scoring_prompts(tokenizer: Any, question: str, sentences: Sequence[str]
                    ) -> list[tuple[list[int], int]]:
    """Each sentence followed by the question, as token ids with the question's start."""
    asked = tokenizer(f" {question.strip()}", add_special_tokens=False)["input_ids"]
    rows = []
    for sentence in sentences:
        context = tokenizer(f"{sentence.strip()}\nQuestion:", add_special_tokens=False)
        ids = list(context["input_ids"])
        rows.append((ids + list(asked), len(ids)))
    return rows


# Chosen on benchmarks/paraphrase_eval.py's tune half and the author's own phrasings over its
# entities (`own`), offline (docs/facts.md): the best two sentences by the embedding scores,
# re-ranked when they are within RERANK_MARGIN of each other, by their score plus
# RERANK_WEIGHT times the question's mean log-probability per token given the sentence. Right
# sentences: tune 81 -> 87 of 87, own 71 -> 71 of 72 (71 of them have one in the best two);
# weights 0.1-0.3 all do as well (0.5: 86 and 70 without the margin).
RERANK_CANDIDATES = 2
RERANK_WEIGHT = 0.25
RERANK_MARGIN = 0.3
# How long grounding waits for the engine's pass before it keeps the embedding's choice.
TIMEOUT_S = 30.0


class QuestionScorer:
    """log P(question | sentence) per question token, from the engine that serves."""

    def __init__(self, likelihoods: Callable[[Rows], Future[list[float]]], tokenizer: Any,
                 timeout_s: float = TIMEOUT_S) -> None:
        self.likelihoods = likelihoods
        self.tokenizer = tokenizer
        self.timeout_s = timeout_s

    def __call__(self, asks: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]] | None:
        """For each (question, sentences): the question's mean log-probability per token
        after each sentence, all in one engine pass; None when the engine fails or is late
        (the caller keeps its own choice)."""
        rows: Rows = []
        for question, sentences in asks:
            rows += scoring_prompts(self.tokenizer, question, sentences)
        if not rows:
            return [[] for _ in asks]
        try:
            sums = self.likelihoods(rows).result(timeout=self.timeout_s)
        except Exception:  # noqa: BLE001 - late, refused or failed: no re-rank, not an error
            return None
        means = [total / max(1, len(ids) - start) for total, (ids, start) in zip(sums, rows,
                                                                                  strict=True)]
        out, at = [], 0
        for _, sentences in asks:
            out.append(means[at:at + len(sentences)])
            at += len(sentences)
        return out


def question_scorer(engine: Any, tokenizer: Any) -> QuestionScorer | None:
    """The scorer over `engine`'s model, or None when the engine cannot score (the upstream
    engine; the llama.cpp engine until it implements `_likelihoods`)."""
    if not getattr(engine, "scores_likelihoods", False) or tokenizer is None:
        return None
    return QuestionScorer(engine.likelihoods, tokenizer)


def contenders(scores: Sequence[float], texts: Sequence[str]) -> list[int]:
    """The sentences to re-rank: the best RERANK_CANDIDATES of distinct text, when the next
    is within RERANK_MARGIN of the best; else none (the best stands)."""
    order: list[int] = []
    for j in sorted(range(len(scores)), key=lambda j: -scores[j]):
        if scores[j] != float("-inf") and texts[j] not in {texts[i] for i in order}:
            order.append(j)
        if len(order) == RERANK_CANDIDATES:
            break
    if len(order) < 2 or scores[order[0]] - scores[order[1]] > RERANK_MARGIN:
        return []
    return order


def reranked(scores: Sequence[float], picked: Sequence[int], means: Sequence[float]
             ) -> list[float]:
    """`scores` with only the `picked` sentences left, each plus RERANK_WEIGHT x its mean."""
    out = [float("-inf")] * len(scores)
    for j, mean in zip(picked, means, strict=True):
        out[j] = scores[j] + RERANK_WEIGHT * mean
    return out
