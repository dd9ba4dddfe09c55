"""The one root of the project's domain exceptions.

Each package raises its own subclasses; the command line prints them as one line and the
service maps them to HTTP in one place, so no caller needs to know which package failed.
"""


class CogcoreError(Exception):
    """A failure the user can act on: its message is the whole explanation."""
