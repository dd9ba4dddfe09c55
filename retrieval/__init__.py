"""Retrieval layer: embedder, chunker, document store, dense and sparse indexes, hybrid search.

Knows nothing of HTTP or of the language model.
"""
