"""Budgets: every registered searcher asks only candidates inside the space's budget, on its
own (no training: asks checked against the cost model); the base class filters any other
searcher's asks; a run counts what it rejected and never trains an over-budget candidate."""

from __future__ import annotations

import numpy as np
import pytest

from autodlgym.errors import AutoDLError
from autodlgym.runner import RunConfig, run_search
from autodlgym.searchers.base import Searcher, make_searcher
from autodlgym.searchspace.io import IOSpec
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.testing.searchers import synthetic_result
from autodlgym.trial import OVER_BUDGET

IO = IOSpec("sequence", (1, 40), 10)
#: about 1 candidate in 10 of the default space fits
TIGHT = 5_000
#: evolution mutates from its 4th ask on
OPTIONS = {"evolution": {"population": 3, "sample_size": 2}}


def tight_space() -> SearchSpace:
    return SearchSpace.default().with_constraints(max_params=TIGHT, io=IO)


def test_asks_of_every_registered_searcher_fit_a_tight_budget(searcher_name, searcher_options):
    space = tight_space()
    options = {**searcher_options, **OPTIONS.get(searcher_name, {})}
    searcher = make_searcher(searcher_name, space, seed=0, **options)
    asked = []
    for _ in range(4):
        specs = searcher.ask(2)
        for spec in specs:
            space.validate(spec)
            assert space.cost(spec).params <= TIGHT, spec.summary()
            searcher.tell(spec, synthetic_result(space, spec))
        asked += specs
    assert space.rejected > 0  # the budget did bind: candidates were rejected on the way
    assert len({s.arch_id for s in asked}) > 1
    searcher.close()


class _Greedy(Searcher):
    """A plugin that knows nothing of budgets: it proposes the widest spec every other ask."""

    def __init__(self, space, seed=0, run_dir=None, **options):
        super().__init__(space, seed=seed, run_dir=run_dir, **options)
        self.n = 0
        self.told: list[str] = []

    def ask(self, n: int = 1) -> list[ArchSpec]:
        out = []
        for _ in range(n):
            self.n += 1
            spec = SearchSpace.default("image").sample(self.rng)  # digits; no budget
            if self.n % 2:
                spec = spec.replace(**{"stage1.width": 512})
            out.append(spec)
        return out

    def tell(self, spec, result) -> None:
        self.told.append(result.status)


def test_propose_filters_a_plugin_and_tells_it_why():
    space = SearchSpace.default().with_constraints(max_params=50_000, io=IO)
    plugin = _Greedy(space, seed=1)
    specs = plugin.propose(5)
    assert len(specs) == 5 and all(space.fits(s, count=False) for s in specs)
    assert OVER_BUDGET in plugin.told
    assert space.rejected == plugin.told.count(OVER_BUDGET) >= 3


def test_propose_gives_up_after_many_misses_in_a_row():
    space = SearchSpace.default().with_constraints(max_params=200, io=IO)
    plugin = _Greedy(space)
    with pytest.raises(AutoDLError, match="in a row over the budget"):
        plugin.propose(1)


def test_evolution_children_fit_and_fall_back_to_samples():
    space = tight_space()
    searcher = make_searcher("evolution", space, seed=2, population=2, sample_size=1)
    for _ in range(12):
        (spec,) = searcher.ask(1)
        assert space.fits(spec, count=False)
        searcher.tell(spec, synthetic_result(space, spec))


def test_optuna_rejections_fail_in_the_study_and_do_not_count_as_asks():
    from optuna.trial import TrialState

    space = tight_space()
    searcher = make_searcher("tpe", space, seed=0)
    specs = searcher.ask(3)
    trials = searcher.study.get_trials(deepcopy=False)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == space.rejected > 0
    assert all("params > max_params" in t.user_attrs["over_budget"] for t in failed)
    assert len([t for t in trials if t.state == TrialState.RUNNING]) == len(specs) == 3


def test_optuna_enqueues_a_sample_when_suggestions_keep_missing():
    space = SearchSpace.default().with_constraints(max_params=400, io=IO)  # ~1 in 10^3 fits
    searcher = make_searcher("qmc", space, seed=0)
    (spec,) = searcher.ask(1)
    assert space.fits(spec, count=False)


def test_a_run_never_trains_over_budget_and_reports_rejections(tmp_path):
    import sqlite3

    config = RunConfig(
        out=str(tmp_path / "run"),
        task="digits",
        searcher="tests.searchers.test_budget:_Greedy",
        trials=2,
        epochs=1,
        max_train_samples=64,
        max_params="50k",
    )
    summary = run_search(config)
    assert summary.finished == 2 and summary.rejected >= 1
    df = summary.results()
    assert (df["params"] <= 50_000).all() and set(df["status"]) <= {"ok"}
    # the count survives a resume
    more = run_search(RunConfig(out=config.out, trials=3), resume=True)
    assert more.rejected >= summary.rejected
    with sqlite3.connect(tmp_path / "run" / "results.sqlite") as con:
        assert con.execute("select count(*) from trials").fetchone()[0] == 3


def test_a_run_with_an_empty_budget_stops_before_writing(tmp_path):
    config = RunConfig(out=str(tmp_path / "run"), trials=2, max_params=50)
    with pytest.raises(AutoDLError) as err:
        run_search(config)
    assert "nothing in this search space fits the budget" in str(err.value)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


def test_task_default_budget_applies_and_none_lifts_it(tmp_path):
    from autodlgym.searchspace.constraints import resolve_budget
    from autodlgym.tasks import get_task

    task = get_task("mnist1d")
    assert task.budget.active
    space = resolve_budget(SearchSpace.default(), task)
    assert space.constraints == task.budget and space.io == task.io
    rng = np.random.default_rng(0)
    for _ in range(10):
        assert space.fits(space.sample(rng), count=False)
    lifted = resolve_budget(SearchSpace.default(), task, max_params="none", max_flops=None)
    assert not lifted.constraints.active
