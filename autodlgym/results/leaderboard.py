"""Kept for old imports: the leaderboard views live in :mod:`autodlgym.analysis.leaderboard`."""

from autodlgym.analysis.leaderboard import (  # noqa: F401
    MAIN_COLUMNS,
    best_so_far,
    choice_columns,
    choice_effects,
    export,
    failure_summary,
    leaderboard,
)
