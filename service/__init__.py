"""The OpenAI-compatible HTTP service over a continuously batched, streaming engine."""
