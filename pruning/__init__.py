"""Offline half of Cognitive Core: base import, evaluation and pruning of checkpoints."""
