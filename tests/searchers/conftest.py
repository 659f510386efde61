"""Fixtures shared by the searcher tests."""

from __future__ import annotations

import importlib.util

import pytest

from autodlgym.searchers.base import SEARCHERS, SearchContext
from autodlgym.training.diagnostics import init_scorer

#: options that keep a built-in searcher fast in the conformance suite: zero-cost scores on
#: small digits batches (the context the runner would give a run on digits); gp stays in its
#: random start-up phase there, because each fit of its Gaussian process takes seconds on CPU
#: (test_tpe.py runs its model phase)
FAST_OPTIONS: dict[str, dict] = {
    "zero-cost": {
        "pool": 2,
        "batch": 16,
        "context": SearchContext(score_at_init=init_scorer("digits")),
    },
    "gp": {"n_startup_trials": 1000},
}


def skip_if_unavailable(name: str) -> None:
    """Skip a test of a searcher whose optional dependency is not installed."""
    for module in SEARCHERS.meta(name).get("requires", ()):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"searcher {name!r} needs the {module!r} package")


#: searchers whose conformance runs are marked slow: they share OptunaSearcher's code with
#: tpe, which runs in the fast set, and cost seconds per case on sqlite
SLOW = {"cmaes", "gp", "qmc", "nsga2"}


@pytest.fixture(
    params=[pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in SEARCHERS.names()]
)
def searcher_name(request: pytest.FixtureRequest) -> str:
    """Every searcher in the registry (built-ins, and anything registered on import)."""
    skip_if_unavailable(request.param)
    return request.param


@pytest.fixture
def searcher_options(searcher_name: str) -> dict:
    """Options of ``searcher_name`` for fast tests."""
    return dict(FAST_OPTIONS.get(searcher_name, {}))
