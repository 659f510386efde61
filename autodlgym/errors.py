"""Errors that reach users.

`AutoDLError` carries a one-line message that says what is wrong and how to fix it; the CLI
prints it without a traceback and exits with code 2.
"""

from __future__ import annotations


class AutoDLError(ValueError):
    """Bad input from a user: a spec, a space file, a task name, a budget, an action."""


class SpecError(AutoDLError):
    """An ArchSpec that is not in the search space or that cannot be built for a task."""
