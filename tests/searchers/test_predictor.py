"""The predictor searcher's encodings and its use of what it is told."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from autodlgym.errors import AutoDLError
from autodlgym.searchers.base import make_searcher
from autodlgym.searchers.predictor import OneHot, one_hot
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.testing.searchers import NARROWED_CONFIG
from autodlgym.trial import ERROR, OK, PRUNED, TrialResult

#: a small unconditional space: the wiring decides which operation matters
WIRED = {
    "choices": [
        {"name": "wiring", "options": ["a", "b", "c"]},
        {"name": "op1", "options": ["x", "y", "z"]},
        {"name": "op2", "options": ["x", "y", "z"]},
    ]
}


def _interaction(spec) -> float:
    """Scores that no sum of per-decision effects reproduces."""
    op = spec["op1"] if spec["wiring"] == "a" else spec["op2"]
    return {"x": 0.9, "y": 0.5, "z": 0.1}[op] if spec["wiring"] != "c" else 0.5


def _all_specs(space: SearchSpace) -> list[ArchSpec]:
    names = [c.name for c in space.choices]
    return [
        space.validate(dict(zip(names, values)))
        for values in itertools.product(*[c.options for c in space.choices])
    ]


def test_one_hot_sets_one_slot_per_active_decision() -> None:
    space = SearchSpace.from_config(NARROWED_CONFIG)
    rng = np.random.default_rng(0)
    specs = [space.sample(rng) for _ in range(50)]
    x = one_hot(space, specs)
    assert x.shape == (50, sum(len(c.options) for c in space.choices))
    start = 0
    for c in space.choices:
        block = x[:, start : start + len(c.options)]
        for row, spec in enumerate(specs):
            expected = np.zeros(len(c.options))
            if c.name in spec:  # inactive decisions leave their slots at zero
                expected[c.index(spec[c.name])] = 1
            np.testing.assert_array_equal(block[row], expected)
        start += len(c.options)


def test_pair_slots_mark_both_options_of_every_two_active_decisions() -> None:
    space = SearchSpace.from_config(NARROWED_CONFIG)
    rng = np.random.default_rng(1)
    specs = [space.sample(rng) for _ in range(40)]
    enc = OneHot(space, pairs=True)
    x = enc(specs)
    sizes = [len(c.options) for c in space.choices]
    assert (
        x.shape[1]
        == enc.width
        == sum(sizes) + sum(a * b for a, b in itertools.combinations(sizes, 2))
    )
    np.testing.assert_array_equal(x[:, : sum(sizes)], one_hot(space, specs))
    offset = sum(sizes)
    for (i, a), (j, b) in itertools.combinations(enumerate(space.choices), 2):
        block = x[:, offset : offset + sizes[i] * sizes[j]]
        for row, spec in enumerate(specs):
            expected = np.zeros(sizes[i] * sizes[j])
            if a.name in spec and b.name in spec:
                expected[a.index(spec[a.name]) * sizes[j] + b.index(spec[b.name])] = 1
            np.testing.assert_array_equal(block[row], expected)
        offset += sizes[i] * sizes[j]
    assert offset == x.shape[1]


def test_encoding_option_picks_the_pair_slots() -> None:
    space = SearchSpace.from_config(WIRED)
    assert make_searcher("predictor", space).encoder.pairs == []
    paired = make_searcher("predictor", space, encoding="pairs").encoder
    n = len(space.choices)
    assert len(paired.pairs) == n * (n - 1) // 2
    assert paired.width > OneHot(space).width


def test_unknown_encoding_is_a_clear_error() -> None:
    with pytest.raises(AutoDLError, match="encoding='path' is unknown; use one of onehot, pairs"):
        make_searcher("predictor", SearchSpace.from_config(WIRED), encoding="path")


def _result(status: str, score: float | None) -> TrialResult:
    if status == ERROR:
        return TrialResult.failure(ERROR, "broke")
    return TrialResult(status=status, val_score=score)


def test_observations_keep_pruned_scores_and_failures_as_the_worst() -> None:
    space = SearchSpace.from_config(WIRED)
    searcher = make_searcher("predictor", space, seed=0, n_init=2)
    specs = _all_specs(space)[:3]
    for spec, (status, score) in zip(specs, [(OK, 0.8), (PRUNED, 0.3), (ERROR, None)]):
        searcher.tell(spec, _result(status, score))
    assert [v for _, v in searcher.observed] == [0.8, 0.3, None]
    searcher.ask(1)  # the first fit: the failure is trained on as the worst score seen
    assert searcher.n_fitted == 3


def test_asks_never_repeat_and_batches_are_distinct_until_the_space_runs_out() -> None:
    space = SearchSpace.from_config(WIRED)  # 27 specs
    searcher = make_searcher("predictor", space, seed=3, n_init=4)
    seen = []
    while len(seen) < 27:
        batch = searcher.ask(min(4, 27 - len(seen)))
        assert len({s.arch_id for s in batch}) == len(batch)
        for spec in batch:
            searcher.tell(spec, TrialResult(status=OK, val_score=_interaction(spec)))
        seen += [s.arch_id for s in batch]
    assert len(set(seen)) == 27


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["onehot", "pairs"])
def test_beats_random_search_on_the_mnist1d_table(encoding: str) -> None:
    from autodlgym.tasks import get_task

    table = get_task("mnist1d-table").lookup()
    budget, regrets = 40, []
    for seed in range(3):
        searcher = make_searcher("predictor", table.space, seed=seed, encoding=encoding)
        best = -np.inf
        for _ in range(budget):
            (spec,) = searcher.ask(1)
            result = table.objective_function(spec)
            searcher.tell(spec, result)
            if result.ok:
                best = max(best, result.val_score)
        regrets.append(table.outcomes().best_val - best)
    # random search's exact expected regret after as many draws, from the table
    assert np.mean(regrets) < 0.5 * table.outcomes().random_expected_regret(budget)


def test_a_state_saved_before_encodings_resumes_on_one_hot() -> None:
    space = SearchSpace.from_config(WIRED)
    old = make_searcher("predictor", space, seed=0, n_init=2, encoding="onehot")
    for spec in _all_specs(space)[:4]:
        old.tell(spec, TrialResult(status=OK, val_score=_interaction(spec)))
    old.ask(1)
    state = old.state_dict()
    del state["encoding"]
    resumed = make_searcher("predictor", space, seed=0)
    resumed.load_state_dict(state)
    assert resumed.encoding == "onehot"
    assert len(resumed.ask(2)) == 2
