"""Regularised evolution: population ageing, tournaments, failures, resume, search quality."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autodlgym.errors import AutoDLError
from autodlgym.searchers.base import make_searcher
from autodlgym.searchers.evolution import EvolutionSearcher, fitness, sizes_for_budget
from autodlgym.searchspace.space import Choice, SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import TrialResult

DEFAULT = SearchSpace.default()
#: three independent decisions: a child of one mutation differs from its parent in exactly one
FLAT = SearchSpace([Choice(name, tuple(range(8)), kind="int") for name in ("a", "b", "c")])


def ok(score: float) -> TrialResult:
    return TrialResult("ok", val_score=score)


def matches(target: ArchSpec):
    """A deterministic objective: the fraction of ``target``'s decisions a spec shares."""

    def score(spec: ArchSpec) -> float:
        return sum(spec.get(k) == v for k, v in target.items()) / len(target)

    return score


@pytest.mark.parametrize(
    "budget, sizes",
    [(None, (20, 5)), (10, (5, 2)), (30, (6, 3)), (50, (10, 5)), (100, (20, 10)), (5000, (20, 10))],
)
def test_population_and_tournament_follow_the_budget(budget, sizes):
    """A fifth of the budget in [5, 20], tournaments of half of it; the searcher uses them
    unless given sizes of its own."""
    assert sizes_for_budget(budget) == sizes
    evo = make_searcher("evolution", DEFAULT, seed=0, budget=budget)
    assert (evo.population_size, evo.sample_size) == sizes
    # the first ``population`` asks seed it, the next is a tournament's child: a new spec
    told = []
    for i in range(sizes[0]):
        spec = evo.ask()[0]
        evo.tell(spec, ok(float(i)))
        told.append(spec)
    assert len(evo.population) == sizes[0]
    child = evo.ask()[0]
    assert child.arch_id not in {s.arch_id for s in told}
    own = make_searcher("evolution", DEFAULT, seed=0, budget=budget, population=7, sample_size=3)
    assert (own.population_size, own.sample_size) == (7, 3)


def test_first_population_asks_are_the_random_searchers_asks():
    evo = make_searcher("evolution", DEFAULT, seed=7, population=12)
    rnd = make_searcher("random", DEFAULT, seed=7)
    assert evo.ask(5) + evo.ask(7) == rnd.ask(12)


def test_population_keeps_its_size_and_the_oldest_dies():
    evo = EvolutionSearcher(DEFAULT, seed=0, population=5, sample_size=2)
    told = []
    for i in range(12):
        (spec,) = evo.ask(1)
        evo.tell(spec, ok(float(i)))
        told.append(spec)
        assert len(evo.population) == min(i + 1, 5)
    # the best score of all (the youngest) survives, the first seven aged out however good
    assert [s for s, _ in evo.population] == told[-5:]
    assert [f for _, f in evo.population] == [7.0, 8.0, 9.0, 10.0, 11.0]


def test_children_are_one_mutation_of_the_tournament_winner():
    evo = EvolutionSearcher(FLAT, seed=1, population=6, sample_size=6)
    specs = evo.ask(6)
    for i, spec in enumerate(specs):
        evo.tell(spec, ok(1.0 if i == 3 else 0.1 * i))
    best = specs[3]
    for child in evo.ask(30):
        assert sum(child[k] != best[k] for k in best) == 1


def test_failures_enter_with_minus_infinity_and_never_win():
    assert fitness(TrialResult.failure("nan", "loss became nan")) == -math.inf
    assert fitness(TrialResult("pruned", val_score=0.4)) == 0.4
    evo = EvolutionSearcher(FLAT, seed=2, population=4, sample_size=4)
    specs = evo.ask(4)
    for spec in specs[:3]:
        evo.tell(spec, TrialResult.failure("error", "RuntimeError: boom"))
    evo.tell(specs[3], ok(0.05))
    assert [f for _, f in evo.population][:3] == [-math.inf] * 3
    for child in evo.ask(20):
        assert sum(child[k] != specs[3][k] for k in child) == 1


def test_batched_asks_and_out_of_order_tells():
    """Parallel workers: a first batch larger than the population is all random, tells come
    back in any order, later batches are children of whatever has been told."""
    evo = EvolutionSearcher(DEFAULT, seed=3, population=4, sample_size=2)
    first = evo.ask(10)
    assert evo.population == type(evo.population)(maxlen=4)
    for spec in reversed(first[:6]):
        evo.tell(spec, ok(0.5))
    second = evo.ask(8)
    assert all(DEFAULT.contains(s) for s in second)
    assert set(s for s, _ in evo.population) == set(first[:4])
    for spec in first[6:] + second:
        evo.tell(spec, ok(0.2))
    assert len(evo.population) == 4


def test_duplicates_are_avoided_where_the_space_allows():
    space = SearchSpace([Choice("a", tuple(range(30)), kind="int")])
    evo = EvolutionSearcher(space, seed=4, population=3, sample_size=3)
    seen = []
    for _ in range(25):
        (spec,) = evo.ask(1)
        seen.append(spec["a"])
        evo.tell(spec, ok(float(spec["a"])))
    children = seen[3:]
    assert len(set(children)) == len(children)


@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 6))
def test_same_seed_same_asks_and_every_ask_is_in_the_space(seed: int, batch: int):
    score = matches(DEFAULT.sample(0))
    runs = []
    for _ in range(2):
        evo = EvolutionSearcher(DEFAULT, seed=seed, population=5, sample_size=3)
        asked = []
        for _ in range(6):
            specs = evo.ask(batch)
            asked += specs
            for spec in specs:
                evo.tell(spec, ok(score(spec)))
        runs.append(asked)
    assert runs[0] == runs[1]
    assert all(DEFAULT.contains(s) for s in runs[0])


def test_state_round_trip_continues_identically():
    score = matches(DEFAULT.sample(1))
    evo = EvolutionSearcher(DEFAULT, seed=5, population=6, sample_size=3)
    for _ in range(10):
        for spec in evo.ask(2):
            evo.tell(spec, ok(score(spec)))
    pending = evo.ask(2)  # asked before the save, told after the resume
    saved = pickle.loads(pickle.dumps(evo.state_dict()))
    resumed = EvolutionSearcher(DEFAULT, seed=999, population=6, sample_size=3)
    resumed.load_state_dict(saved)
    for s in (evo, resumed):
        for spec in pending:
            s.tell(spec, ok(score(spec)))
    for _ in range(5):
        a, b = evo.ask(3), resumed.ask(3)
        assert a == b
        for x, y in zip(a, b):
            evo.tell(x, ok(score(x)))
            resumed.tell(y, ok(score(y)))
    assert list(evo.population) == list(resumed.population)


@pytest.mark.parametrize(
    "options", [{"population": 0}, {"sample_size": 0}, {"population": 3, "sample_size": 4}]
)
def test_bad_options_are_user_errors(options):
    with pytest.raises(AutoDLError):
        make_searcher("evolution", DEFAULT, **options)


def test_options_given_as_text():
    evo = make_searcher(
        "evolution", DEFAULT, population="8", sample_size="3", avoid_duplicates="false"
    )
    assert (evo.population_size, evo.sample_size, evo.avoid_duplicates) == (8, 3, False)


def best_found(name: str, seed: int, score, budget: int = 300) -> float:
    searcher = make_searcher(name, DEFAULT, seed=seed)
    best = -math.inf
    for _ in range(budget // 4):
        specs = searcher.ask(4)
        for spec in reversed(specs):  # out of order, as parallel workers return them
            value = score(spec)
            best = max(best, value)
            searcher.tell(spec, ok(value))
    return best


def test_evolution_beats_random_on_a_synthetic_objective():
    score = matches(DEFAULT.sample(2024))
    seeds = range(6)
    evo = np.mean([best_found("evolution", s, score) for s in seeds])
    rnd = np.mean([best_found("random", s, score) for s in seeds])
    assert evo > rnd + 0.05, (evo, rnd)
