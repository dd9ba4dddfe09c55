"""Cognitive Core: the command line and the few pieces shared by every package."""
