"""``SearchSpace.nvec``: the property of 0.2.0 and the call form of 0.1.0, deprecated.

Code written against 0.1.0 calls ``space.nvec()``; code written since reads ``space.nvec``
as an array. Both work: the call with a ``DeprecationWarning``, the property without one.
"""

from __future__ import annotations

import copy
import pickle
import warnings

import gymnasium
import numpy as np
import pytest

from autodlgym import RunConfig, Searcher, SearchSpace, load_results, run_search

DEPRECATED = r"SearchSpace\.nvec\(\) is deprecated; use the property SearchSpace\.nvec"


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace.default()


@pytest.fixture
def counts(space: SearchSpace) -> list[int]:
    return [len(c.options) for c in space.choices]


def test_the_call_form_warns_and_returns_a_plain_array(space, counts):
    with pytest.warns(DeprecationWarning, match=DEPRECATED) as record:
        nvec = space.nvec()
    assert "removed in 0.3.0" in str(record[0].message)
    assert record[0].filename == __file__  # the warning points at the caller
    assert type(nvec) is np.ndarray and nvec.dtype == np.int64
    assert nvec.tolist() == counts


def test_the_property_is_an_int64_array_and_does_not_warn(space, counts):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nvec = space.nvec
        assert isinstance(nvec, np.ndarray) and nvec.dtype == np.int64
        assert nvec.shape == (len(space),) and nvec.tolist() == counts
        assert [int(n) for n in nvec] == counts and int(nvec[1]) == counts[1]
        assert repr(nvec).startswith("array(")
        space.nvec[0] = 99  # each read is a fresh copy
        assert space.nvec[0] == counts[0]


@pytest.mark.parametrize(
    "derive",
    [
        lambda n: n - 1,
        lambda n: n * 2.0,
        lambda n: -n,
        lambda n: n == n,
        lambda n: np.maximum(n - 1, 1),
        lambda n: np.maximum(n, 1),
        lambda n: n[1:],
        lambda n: n[[0, 2]],
        lambda n: np.concatenate([n, n]),
        lambda n: np.ones_like(n),
        lambda n: np.where(n > 2, n, 0),
        lambda n: n.copy(),
        lambda n: n.astype(np.float32),
        lambda n: copy.copy(n),
        lambda n: copy.deepcopy(n),
        lambda n: pickle.loads(pickle.dumps(n)),
        lambda n: pickle.loads(pickle.dumps(n, protocol=5)),
    ],
)
def test_what_numpy_makes_from_the_property_is_a_plain_array(space, derive):
    derived = derive(space.nvec)
    assert type(derived) is np.ndarray
    assert not callable(derived)


def test_reductions_and_indexing_give_numpy_scalars(space, counts):
    nvec = space.nvec
    assert type(nvec[0]) is np.int64 and nvec[0] == counts[0]
    assert nvec.sum() == sum(counts) and nvec.max() == max(counts)
    assert type(nvec.prod()) is np.int64


def test_a_pickle_of_the_property_holds_no_trace_of_it(space):
    data = pickle.dumps({"nvec": space.nvec})
    assert b"_Nvec" not in data and b"autodlgym" not in data
    assert pickle.loads(data)["nvec"].tolist() == space.nvec.tolist()


def test_multidiscrete_takes_the_property(space, counts):
    action_space = gymnasium.spaces.MultiDiscrete(space.nvec, seed=0)
    assert type(action_space.nvec) is np.ndarray and action_space.nvec.tolist() == counts
    assert action_space.contains(action_space.sample())
    assert action_space == space.gymnasium_space()
    assert space.contains(space.decode(action_space.sample()))


class OldStyleSearcher(Searcher):
    """A searcher as written against 0.1.0: it calls ``self.space.nvec()``."""

    def ask(self, n=1):
        nvec = self.space.nvec()
        return [self.space.decode(self.rng.integers(0, nvec)) for _ in range(n)]


def test_a_searcher_written_for_0_1_0_still_searches(tmp_path):
    config = RunConfig(
        out=str(tmp_path / "run"),
        task="mnist1d-table",
        searcher=f"{__name__}:OldStyleSearcher",
        trials=3,
    )
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        summary = run_search(config)
    assert summary.finished == 3 and summary.statuses == {"ok": 3}
    assert len(load_results(tmp_path / "run")) == 3
