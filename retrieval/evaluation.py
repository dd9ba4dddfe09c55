"""`cogcore kb eval`: recall@1, recall@5 and MRR@10 per search mode on each question split."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from retrieval.knowledge_base import MODES, Hit, KnowledgeBase
from retrieval.questions import Question

DEPTH = 10
BATCH = 256


def document_rank(hits: list[Hit], document_id: str) -> int | None:
    """1-based rank of a document among the distinct documents of `hits`, or None."""
    seen: list[str] = []
    for hit in hits:
        if hit.document_id not in seen:
            seen.append(hit.document_id)
        if hit.document_id == document_id:
            return len(seen)
    return None


def metrics(ranks: list[int | None]) -> dict[str, float]:
    """recall@1, recall@5 and MRR@10 from per-question ranks."""
    n = max(1, len(ranks))
    return {
        "recall@1": sum(r is not None and r <= 1 for r in ranks) / n,
        "recall@5": sum(r is not None and r <= 5 for r in ranks) / n,
        "mrr@10": sum(1.0 / r for r in ranks if r is not None and r <= DEPTH) / n,
        "questions": len(ranks),
    }


def evaluate(kb: KnowledgeBase, questions: list[Question], modes: Sequence[str] = MODES,
             progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Search every question in every mode; metrics per split and mode, and per phrasing."""
    report: dict[str, Any] = {"splits": {}, "by_phrasing": {}}
    for mode in modes:
        ranks: list[int | None] = []
        for start in range(0, len(questions), BATCH):
            batch = questions[start : start + BATCH]
            results = kb.search_batch([q.text for q in batch], k=DEPTH, mode=mode)
            ranks += [document_rank(h, q.entity_id) for h, q in zip(results, batch, strict=True)]
            if progress:
                progress(len(batch))
        for group, key in (("splits", "split"), ("by_phrasing", "phrasing")):
            for value in sorted({getattr(q, key) for q in questions}):
                picked = [r for r, q in zip(ranks, questions, strict=True)
                          if getattr(q, key) == value]
                report[group].setdefault(value, {})[mode] = metrics(picked)
    return report


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write the report as JSON and Markdown under `out_dir`; both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "kb_eval.json", out_dir / "kb_eval.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# Knowledge base retrieval evaluation", "",
             f"Knowledge base: `{report.get('kb', '?')}`; a hit is the answering entity's "
             "document among the distinct documents returned.", ""]
    for group, title in (("splits", "split"), ("by_phrasing", "phrasing (all splits)")):
        lines += [f"## By {title}", "", f"| {title.split()[0]} | mode | questions | recall@1 "
                  "| recall@5 | MRR@10 |", "|---|---|---|---|---|---|"]
        for name, modes in report[group].items():
            for mode, m in modes.items():
                lines.append(f"| {name} | {mode} | {m['questions']} | {m['recall@1']:.3f} "
                             f"| {m['recall@5']:.3f} | {m['mrr@10']:.3f} |")
        lines.append("")
    md_path.write_text("\n".join(lines))
    return json_path, md_path
