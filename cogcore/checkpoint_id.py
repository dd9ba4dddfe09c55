"""A checkpoint's id: what it is, read from the checkpoint itself (the served model's name, the
GGUF export cache's file names)."""

from __future__ import annotations

import json
from pathlib import Path

CORE_REPORT = "core_report.json"  # written by `cogcore prune` beside the pruned checkpoint


def checkpoint_id(model_dir: Path) -> str:
    """`<base>-core` for a pruned core (its report names the base checkpoint it was pruned
    from: `smollm2-135m-instruct-core`), else the checkpoint directory's name."""
    model_dir = model_dir.resolve()
    try:
        base = json.loads((model_dir / CORE_REPORT).read_text()).get("base")
    except (OSError, ValueError, AttributeError):
        base = None
    if isinstance(base, str) and Path(base).name:
        return f"{Path(base).name.lower()}-core"
    return model_dir.name
