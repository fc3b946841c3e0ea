"""User-facing errors.

A :class:`PosetokError` is a mistake in the user's input (a file, a field, a config key), not a bug. The CLI
prints its message on one line and exits non-zero without a traceback, so the message must name the file and
the field at fault.
"""

from __future__ import annotations


class PosetokError(Exception):
    """Bad user input. ``str(err)`` is a complete one-line message naming the file and the field."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def field_error(path: object, field: str, problem: str) -> PosetokError:
    """Build the standard message ``"{path}: field '{field}': {problem}"``."""
    return PosetokError(f"{path}: field '{field}': {problem}")
