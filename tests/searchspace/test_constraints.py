"""Budget constraints on a space: limits, space files, sampling and mutation inside the budget,
the one-line error of a budget nothing fits, and where limits come from."""

from __future__ import annotations

import numpy as np
import pytest

from autodlgym.errors import AutoDLError
from autodlgym.searchspace.constraints import (
    Constraints,
    cheapest,
    parse_limit,
    resolve_budget,
)
from autodlgym.searchspace.cost import estimate_cost
from autodlgym.searchspace.io import IOSpec
from autodlgym.searchspace.space import SearchSpace
from autodlgym.tasks import get_task

IO = IOSpec("sequence", (1, 40), 10)


@pytest.mark.parametrize(
    "text, value",
    [("250000", 250_000), ("250k", 250_000), ("2.5e5", 250_000), ("20M", 20_000_000),
     ("1g", 10**9), (3000, 3000), ("none", None), (None, None), ("default", "default")],
)  # fmt: skip
def test_parse_limit(text, value):
    assert parse_limit("max_params", text) == value


@pytest.mark.parametrize("bad", ["lots", "-5", "0", True, "1e400", [1]])
def test_bad_limits_are_one_line_errors(bad):
    with pytest.raises(AutoDLError) as err:
        parse_limit("max_params", bad)
    assert "max_params" in str(err.value) and "\n" not in str(err.value)


def test_space_file_constraints_round_trip(tmp_path):
    p = tmp_path / "space.yaml"
    p.write_text("base: default\nconstraints: {max_params: 20k, max_flops: none}\n")
    space = SearchSpace.from_file(p)
    assert space.constraints == Constraints(max_params=20_000)
    assert space.given_constraints == {"max_params": 20_000, "max_flops": None}
    again = SearchSpace.from_config(space.to_config())
    assert again.given_constraints == space.given_constraints and again == space
    assert "budget: max_params 20k" in space.describe()
    with pytest.raises(AutoDLError, match="unknown key"):
        SearchSpace.from_config({"base": "default", "constraints": {"max_parms": 5}})


def test_sampling_under_a_budget_needs_the_task_inputs():
    space = SearchSpace.default().with_constraints(max_params=10_000)
    with pytest.raises(AutoDLError, match="with_constraints"):
        space.sample(0)
    assert space.with_constraints(io=get_task("digits")).io == get_task("digits").io


@pytest.mark.parametrize("limits", [{"max_params": 20_000}, {"max_flops": 200_000},
                                    {"max_params": 50_000, "max_flops": 1_000_000}])  # fmt: skip
def test_samples_and_mutations_fit(limits):
    space = SearchSpace.default().with_constraints(io=IO, **limits)
    rng = np.random.default_rng(0)
    specs = [space.sample(rng) for _ in range(15)]
    children = [space.mutate(s, rng) for s in specs]
    for spec in specs + children:
        cost = estimate_cost(spec, IO)
        assert cost.params <= limits.get("max_params", np.inf)
        assert cost.flops <= limits.get("max_flops", np.inf)
    assert len({s.arch_id for s in specs}) == 15
    assert sum(c != s for c, s in zip(children, specs)) >= 12
    assert space.rejected > 0


def test_unconstrained_sampling_is_unchanged():
    a, b = SearchSpace.default(), SearchSpace.default().with_constraints(io=IO)
    assert [a.sample(i) for i in range(5)] == [b.sample(i) for i in range(5)]
    assert b.rejected == 0


def test_a_budget_few_candidates_fit_still_samples_inside_it(monkeypatch):
    from autodlgym.searchspace import constraints

    monkeypatch.setattr(constraints, "SAMPLE_TRIES", 5)
    space = SearchSpace.default().with_constraints(max_params=200, io=IO)
    rng = np.random.default_rng(1)
    specs = [space.sample(rng) for _ in range(4)]
    assert space.rejected == 4 * 5  # every uniform draw missed; walks to the cheapest did it
    assert all(estimate_cost(s, IO).params <= 200 for s in specs)
    assert len({s.arch_id for s in specs}) > 1  # the walks keep some of the draws' variety


def test_a_budget_nothing_fits_is_one_line():
    space = SearchSpace.default().with_constraints(max_params=50, io=IO)
    with pytest.raises(AutoDLError) as err:
        space.sample(0)
    msg = str(err.value)
    assert "\n" not in msg and "nothing in this search space fits" in msg and "max_params" in msg
    # the cheapest candidate found is genuinely small: one narrow stage, no more
    spec, _ = space._cheapest
    assert spec["n_stages"] == 1 and spec["stage1.width"] == 8
    with pytest.raises(AutoDLError):
        cheapest(space)


def test_limits_come_from_flags_then_the_space_then_the_task():
    task = get_task("mnist1d")
    file_space = SearchSpace.from_config({"base": "default", "constraints": {"max_flops": "1M"}})
    space = resolve_budget(file_space, task)
    assert space.constraints == Constraints(task.budget.max_params, 1_000_000)
    space = resolve_budget(file_space, task, max_params="7k", max_flops="none")
    assert space.constraints == Constraints(7_000, None)
    lifted = SearchSpace.from_config({"base": "default", "constraints": {"max_params": None}})
    assert resolve_budget(lifted, task).constraints.max_params is None
    # resolving twice changes nothing (and keeps the same object, with its count)
    assert resolve_budget(space, task) is space


def test_every_built_in_task_with_a_budget_fits_some_of_its_default_space():
    for name in ("mnist1d", "mnist1d_shuffled", "digits", "adding"):
        task = get_task(name)
        assert task.budget.active
        space = resolve_budget(SearchSpace.default(), task)
        spec = space.sample(np.random.default_rng(0))
        cost = estimate_cost(spec, task.io)
        assert cost.params <= task.budget.max_params and cost.flops <= task.budget.max_flops
