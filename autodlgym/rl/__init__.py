"""RL agents that learn to search: task suites with held-out tasks, training a learned
searcher, and the evaluation protocol that puts agents and searchers on one leaderboard.

- :mod:`autodlgym.rl.suites`: named suites of folds (train tasks, test tasks);
  ``suites.names()``, ``suites.get(name)``, ``suites.train_env(...)``.
- :func:`train_searcher` (:mod:`autodlgym.rl.learn`): the reference learned searcher, a GRU
  policy trained with REINFORCE on a fold's training tasks; run it with
  ``--searcher rl:PATH``.
- :func:`evaluate` (:mod:`autodlgym.rl.protocol`): an agent (a policy file, a callable, an SB3
  model) on the held-out tasks, with the regret / top-1 % / Mann-Whitney figures of
  ``autodlgym bench``.

See docs/rl.md. Importing this package imports neither torch nor the environments.
"""

from __future__ import annotations

from typing import Any

from autodlgym.rl import suites

__all__ = ["evaluate", "suites", "train_searcher"]


def __getattr__(name: str) -> Any:
    if name == "train_searcher":
        from autodlgym.rl.learn import train_searcher

        return train_searcher
    if name == "evaluate":
        from autodlgym.rl.protocol import evaluate

        return evaluate
    raise AttributeError(f"module 'autodlgym.rl' has no attribute {name!r}")
