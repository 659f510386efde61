"""What a search found: leaderboard views over the results frame."""

from __future__ import annotations

from autodlgym.analysis.leaderboard import (
    best_so_far,
    choice_effects,
    export,
    failure_summary,
    leaderboard,
)

__all__ = ["best_so_far", "choice_effects", "export", "failure_summary", "leaderboard"]
