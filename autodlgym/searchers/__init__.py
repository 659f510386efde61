"""Searchers. Importing this package registers the built-ins."""

from autodlgym.searchers import random  # noqa: F401
