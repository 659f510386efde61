"""Searchers. Importing this package registers the built-ins."""

from autodlgym.searchers import (
    evolution,  # noqa: F401
    prescreen,  # noqa: F401
    random,  # noqa: F401
    reinforce,  # noqa: F401
    tpe,  # noqa: F401
)
