"""What priors do: one experiment per classic claim about architectures as priors.

Each experiment is a module of this package with ``NAME``, ``CLAIM``, ``SOURCE`` and
``run(quick: bool, seed: int) -> Outcome``; it uses autodlgym's public API (space files in
``spaces/``, :func:`~autodlgym.training.trainer.train_and_score`, diagnostics, ``run_search`` and
the results store). ``autodlgym experiment NAME`` runs one and writes ``NAME.png`` and
``NAME.csv``; ``autodlgym experiments`` lists them.
"""

from __future__ import annotations

from autodlgym.experiments.base import (
    EXPERIMENTS,
    Outcome,
    get_experiment,
    list_experiments,
    run_experiment,
)

__all__ = ["EXPERIMENTS", "Outcome", "get_experiment", "list_experiments", "run_experiment"]
