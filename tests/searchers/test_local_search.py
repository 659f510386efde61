"""Local search: first improvement, restarts at local optima, never a repeated spec."""

from __future__ import annotations

import numpy as np

from autodlgym.searchers.local_search import LocalSearchSearcher
from autodlgym.searchspace.space import SearchSpace
from autodlgym.testing.searchers import NARROWED_CONFIG, synthetic_result, synthetic_score
from autodlgym.trial import OK, TrialResult

NARROWED = SearchSpace.from_config(NARROWED_CONFIG)
#: two decisions, 3 x 3 = 9 architectures: small enough to walk through
TINY = SearchSpace.from_config(
    {"choices": [{"name": "a", "options": [0, 1, 2]}, {"name": "b", "options": [0, 1, 2]}]}
)


def test_neighbours_change_exactly_one_active_decision():
    spec = NARROWED.sample(np.random.default_rng(0))
    neighbours = NARROWED.neighbours(spec, np.random.default_rng(1))
    expected = sum(len(NARROWED[k].options) - 1 for k in spec if len(NARROWED[k].options) > 1)
    assert len(neighbours) == expected
    for n in neighbours:
        NARROWED.validate(n)
        changed = [k for k in spec if k in n and n[k] != spec[k]]
        # one decision changed; decisions it switched on or off are its consequence
        assert len([k for k in changed if NARROWED[k].parent not in changed]) == 1


def test_local_search_never_repeats_a_spec():
    searcher = LocalSearchSearcher(NARROWED, seed=0)
    seen = set()
    for _ in range(150):
        (spec,) = searcher.ask(1)
        assert spec.arch_id not in seen
        seen.add(spec.arch_id)
        searcher.tell(spec, synthetic_result(NARROWED, spec))
    for spec in searcher.ask(8):  # a parallel batch too
        assert spec.arch_id not in seen
        seen.add(spec.arch_id)


def test_first_improvement_moves_and_a_local_optimum_restarts():
    # score = a + b: the optimum (2, 2) is reached by single-decision moves from anywhere
    searcher = LocalSearchSearcher(TINY, seed=0, n_init=1)
    best, asked = -1, []
    for _ in range(9):
        (spec,) = searcher.ask(1)
        asked.append(spec)
        score = spec["a"] + spec["b"]
        current = searcher.current[1] if searcher.current else None
        searcher.tell(spec, TrialResult(OK, val_score=float(score)))
        if current is not None:  # a better neighbour becomes current at once
            assert searcher.current[1] == max(current, score)
        best = max(best, score)
    assert best == 4
    assert len({s.arch_id for s in asked}) == 9  # the whole space, no repeats
    assert searcher.n_restarts >= 1  # (2, 2) has no better neighbour


def test_local_search_beats_its_own_random_start_on_a_smooth_score():
    scores = []
    for seed in range(5):
        searcher = LocalSearchSearcher(NARROWED, seed=seed)
        best = -np.inf
        for _ in range(40):
            (spec,) = searcher.ask(1)
            best = max(best, synthetic_score(NARROWED, spec))
            searcher.tell(spec, synthetic_result(NARROWED, spec))
        scores.append(best)
    rng = np.random.default_rng(0)
    random_best = [
        max(synthetic_score(NARROWED, NARROWED.sample(rng)) for _ in range(40)) for _ in range(5)
    ]
    assert np.mean(scores) > np.mean(random_best)
