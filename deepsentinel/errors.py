"""The failures the CLI reports as one `error: ...` line (exit 1) instead of a traceback."""

from __future__ import annotations


class OperationFailed(RuntimeError):
    """An expected failure of an operation; the message says what failed and what to do about it."""
