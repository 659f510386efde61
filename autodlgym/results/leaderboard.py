"""Deprecated: the leaderboard views live in :mod:`autodlgym.analysis.leaderboard`.

This old import path is kept for one release; reading a name from it warns with a
``DeprecationWarning`` and hands back the object of :mod:`autodlgym.analysis.leaderboard`.
``results`` is persistence only and does not import the views at import time.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

#: the names the old path re-exported
NAMES = (
    "MAIN_COLUMNS",
    "best_so_far",
    "choice_columns",
    "choice_effects",
    "export",
    "failure_summary",
    "leaderboard",
)

__all__ = list(NAMES)


def __getattr__(name: str) -> Any:
    if name not in NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"autodlgym.results.leaderboard is deprecated; import {name} from "
        "autodlgym.analysis.leaderboard",
        DeprecationWarning,
        stacklevel=2,
    )
    # the module, not the function of the same name that autodlgym.analysis re-exports
    views = importlib.import_module("autodlgym.analysis.leaderboard")
    return getattr(views, name)


def __dir__() -> list[str]:
    return sorted(NAMES)
