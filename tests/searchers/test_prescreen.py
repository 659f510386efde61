"""Zero-cost pre-screen: a pool from the base searcher, ranked at initialisation, top-k out."""

from __future__ import annotations

import math

import pytest
from optuna.trial import TrialState

from autodlgym.errors import AutoDLError
from autodlgym.searchers.base import make_searcher
from autodlgym.searchers.prescreen import ZeroCostPrescreen
from autodlgym.searchspace.space import SearchSpace
from autodlgym.testing.searchers import NARROWED_CONFIG, synthetic_result

SPACE = SearchSpace.from_config(NARROWED_CONFIG)
FAST = {"task": "digits", "batch": 16}


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
        {"task": "nonexistent"},
        {"colour": "red"},  # unknown options go to the base searcher, which refuses them
    ],
)
def test_bad_options_are_user_errors(options):
    with pytest.raises(AutoDLError):
        make_searcher("zero-cost", SPACE, **{**FAST, **options})


def test_an_unknown_score_names_the_known_ones():
    with pytest.raises(AutoDLError, match="naswot"):
        ZeroCostPrescreen(SPACE, seed=0, score="magic", **FAST)
