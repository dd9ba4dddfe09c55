"""Default locations of artifacts; every one of them can be overridden."""

import os
from pathlib import Path


def artifacts_dir() -> Path:
    """The root for generated artifacts: `$COGCORE_ARTIFACTS`, else `./artifacts`."""
    return Path(os.environ.get("COGCORE_ARTIFACTS", "artifacts"))


def default_base_dir() -> Path:
    """Where `cogcore base import` writes the embedded default base model."""
    return artifacts_dir() / "base" / "smollm2-135m-instruct"


def default_core_dir() -> Path:
    """Where pruning writes the default cognitive core checkpoint."""
    return artifacts_dir() / "core" / "default"


def default_kb_dir() -> Path:
    """Where retrieval writes the default knowledge base."""
    return artifacts_dir() / "kb" / "default"
