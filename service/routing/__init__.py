"""Routing: decide whether a request needs facts from the store or the core's reasoning alone."""
