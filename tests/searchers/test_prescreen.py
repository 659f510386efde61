"""Zero-cost pre-screen: a pool from the base searcher, ranked at initialisation, top-k out."""

from __future__ import annotations

import math

import pytest
from optuna.trial import TrialState

import autodlgym.training.diagnostics as diagnostics
from autodlgym.errors import AutoDLError
from autodlgym.runner import RunConfig, run_search
from autodlgym.searchers.base import SearchContext, make_searcher
from autodlgym.searchers.prescreen import ZeroCostPrescreen
from autodlgym.searchspace.space import SearchSpace
from autodlgym.testing.searchers import NARROWED_CONFIG, synthetic_result

SPACE = SearchSpace.from_config(NARROWED_CONFIG)
#: what the runner gives a zero-cost search on digits: candidates measured on its data
DIGITS = SearchContext(score_at_init=diagnostics.init_scorer("digits"))
FAST = {"context": DIGITS, "batch": 16}


def test_returns_the_top_k_of_the_pool_by_naswot():
    screen = ZeroCostPrescreen(SPACE, seed=4, pool=8, **FAST)
    chosen = screen.ask(3)
    pool = make_searcher("random", SPACE, seed=4).ask(8)  # what the base searcher proposed
    ranked = sorted(pool, key=screen.score, reverse=True)
    assert chosen == ranked[:3]
    scores = [screen.score(s) for s in pool]
    assert len(set(scores)) > 1 and all(math.isfinite(s) for s in scores)


@pytest.mark.parametrize("n", [1, 2, 4, 6])
def test_never_returns_more_than_asked(n):
    screen = ZeroCostPrescreen(SPACE, seed=0, pool=4, **FAST)
    assert len(screen.ask(n)) == n  # more than the pool: the pool grows to n


def test_a_minus_sign_ranks_the_lowest_first():
    high = ZeroCostPrescreen(SPACE, seed=2, pool=6, score="jacobian", **FAST)
    low = ZeroCostPrescreen(SPACE, seed=2, pool=6, score="-jacobian", **FAST)
    pool = make_searcher("random", SPACE, seed=2).ask(6)
    by_jacobian = sorted(pool, key=high.score)
    assert low.ask(1) == by_jacobian[:1]
    assert high.ask(1) == by_jacobian[-1:]


def test_scores_are_deterministic_for_a_seed():
    spec = SPACE.sample(0)
    a = ZeroCostPrescreen(SPACE, seed=1, **FAST).score(spec)
    b = ZeroCostPrescreen(SPACE, seed=1, **FAST).score(spec)
    assert a == b


def test_rejected_candidates_never_reach_an_optuna_base_as_results():
    screen = ZeroCostPrescreen(SPACE, seed=0, base="tpe", pool=5, n_startup_trials=2, **FAST)
    chosen = screen.ask(2)
    trials = screen.base.study.trials
    # closed as FAIL (ignored by the samplers), marked as discarded, never PRUNED
    assert [t.state for t in trials].count(TrialState.FAIL) == 3
    assert sum(bool(t.user_attrs.get("discarded")) for t in trials) == 3
    assert [t.state for t in trials].count(TrialState.RUNNING) == 2
    for spec in chosen:
        screen.tell(spec, synthetic_result(SPACE, spec))
    assert [t.state for t in screen.base.study.trials].count(TrialState.COMPLETE) == 2


def test_prescreen_with_evolution_keeps_only_trained_members():
    screen = ZeroCostPrescreen(
        SPACE, seed=1, base="evolution", pool=4, population=3, sample_size=2, **FAST
    )
    trained = []
    for _ in range(5):
        (spec,) = screen.ask(1)
        result = synthetic_result(SPACE, spec)
        screen.tell(spec, result)
        trained.append((spec, result.val_score))
    members = list(screen.base.population)
    assert len(members) == 3
    assert members == trained[-3:]  # the last three trained candidates, with their scores
    assert all(math.isfinite(f) for _, f in members)


def test_prescreen_with_reinforce_updates_once_per_trained_candidate():
    screen = ZeroCostPrescreen(SPACE, seed=2, base="reinforce", pool=4, **FAST)
    for _ in range(3):
        (spec,) = screen.ask(1)
        screen.tell(spec, synthetic_result(SPACE, spec))
    assert screen.base.n_updates == 3 and not screen.base.pending


@pytest.mark.parametrize(
    "options",
    [
        {"base": "zero-cost"},
        {"base": "nonexistent"},
        {"pool": 0},
        {"score": ""},
        {"task": "digits"},  # the runner reads task=, not the searcher
        {"context": None},
        {"context": SearchContext()},  # nothing that scores at initialisation
        {"colour": "red"},  # unknown options go to the base searcher, which refuses them
    ],
)
def test_bad_options_are_user_errors(options):
    with pytest.raises(AutoDLError):
        make_searcher("zero-cost", SPACE, **{**FAST, **options})


def test_an_unknown_score_names_the_known_ones():
    with pytest.raises(AutoDLError, match="naswot"):
        ZeroCostPrescreen(SPACE, seed=0, score="magic", **FAST)


def test_a_searcher_built_without_a_run_context_says_it_needs_one():
    with pytest.raises(AutoDLError, match="run context"):
        ZeroCostPrescreen(SPACE, seed=0)


def test_the_context_scores_in_one_call_per_ask_and_each_spec_once():
    calls = []

    class Counting:
        names = ("naswot",)

        def __call__(self, specs, name, *, seed, batch):
            calls.append((len(specs), name, seed, batch))
            return [float(len(s.arch_id) + i) for i, s in enumerate(specs)]

    screen = ZeroCostPrescreen(
        SPACE, seed=5, pool=4, batch=8, context=SearchContext(score_at_init=Counting())
    )
    first = screen.ask(1)
    screen.score(first[0])  # kept from the ask: not measured again
    assert calls == [(4, "naswot", 5, 8)]


@pytest.mark.parametrize("option, measured", [({}, "digits"), ({"task": "mnist1d"}, "mnist1d")])
def test_the_runner_measures_on_the_run_task_or_the_task_option(
    tmp_path, monkeypatch, option, measured
):
    made, real = [], diagnostics.init_scorer

    def recording(task):
        made.append(task.name)
        return real(task)

    monkeypatch.setattr(diagnostics, "init_scorer", recording)
    config = RunConfig(
        task="digits",
        space=NARROWED_CONFIG,
        searcher="zero-cost",
        searcher_options={"pool": 2, "batch": 16, **option},
        trials=1,
        epochs=1,
        max_train_samples=64,
        out=str(tmp_path / "run"),
    )
    assert run_search(config).finished == 1
    assert made == [measured]


def test_an_unknown_task_option_is_a_user_error(tmp_path):
    config = RunConfig(
        task="digits",
        space=NARROWED_CONFIG,
        searcher="zero-cost",
        searcher_options={"task": "nonexistent"},
        trials=1,
        out=str(tmp_path / "run"),
    )
    with pytest.raises(AutoDLError, match="nonexistent"):
        run_search(config)
