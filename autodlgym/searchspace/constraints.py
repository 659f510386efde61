"""Budget constraints: the most parameters and FLOPs a candidate may have.

A space carries :class:`Constraints` (``space.constraints``) and the task inputs its candidates
are measured for (``space.io``); :mod:`autodlgym.searchspace.cost` measures a spec without
training it. Where the limits come from, first match wins, per limit:

1. an explicit value: ``--max-params`` / ``--max-flops``, ``RunConfig(max_params=...)``,
   the envs' ``max_params=`` / ``max_flops=``, or ``space.with_constraints(...)``;
2. the space file's ``constraints: {max_params: ..., max_flops: ...}``;
3. the task's default budget (:attr:`autodlgym.tasks.Task.budget`).

``none`` (or None) lifts a limit; ``default`` (the default) defers to the next source. Numbers
may be written ``250000``, ``250k``, ``2.5e5``, ``20M`` or ``1G``.

How each path keeps over-budget candidates from training (none is ever trained):

* :meth:`SearchSpace.sample` draws up to :data:`SAMPLE_TRIES` uniform candidates and returns the
  first that fits: uniform over the candidates inside the budget. When none fits (a budget
  that admits well under one candidate in 200), it finds the cheapest candidate it can
  (coordinate descent over the decisions, see :func:`cheapest`) and moves the last draw towards
  it, one decision at a time in random order, until it fits (a draw biased towards small
  candidates). When even the cheapest does not fit, it raises a one-line AutoDLError.
* :meth:`SearchSpace.mutate` tries up to :data:`MUTATE_TRIES` mutations, then returns a fresh
  :meth:`~SearchSpace.sample` (so evolution always gets a candidate inside the budget).
* Optuna searchers tell an over-budget suggestion ``FAIL`` (user attribute ``over_budget``) and
  ask again: it never reaches the runner, so it does not count against ``--trials``; after
  :data:`MUTATE_TRIES` in a row they enqueue a :meth:`~SearchSpace.sample`.
* REINFORCE: the sequential env flags the episode; the agent takes a policy-gradient step with
  its failure reward and rolls out again (then falls back to a sample).
* Gym envs: a step whose candidate is over budget trains nothing; it returns
  ``failure_reward`` with ``info["over_budget"] = True`` and ``info["status"] == "over_budget"``
  and counts as one evaluation of the episode.
* Any other searcher (plugins): :meth:`Searcher.propose`, which the runner calls, tells it
  ``over_budget`` results for candidates it filters out and asks again, up to
  :data:`MUTATE_TRIES` times in a row, then stops with an AutoDLError.

Every rejection is counted in ``space.rejected``; a run reports the total in
:class:`~autodlgym.runner.SearchSummary` (``rejected``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autodlgym.errors import AutoDLError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from autodlgym.searchspace.cost import Cost
    from autodlgym.searchspace.space import SearchSpace
    from autodlgym.searchspace.spec import ArchSpec

#: uniform draws :meth:`SearchSpace.sample` tries before it moves a draw towards the cheapest
SAMPLE_TRIES = 200
#: mutations (and Optuna suggestions, and plugin asks) tried before falling back
MUTATE_TRIES = 50
#: passes of the coordinate descent in :func:`cheapest`
DESCENT_PASSES = 3

LIMITS = ("max_params", "max_flops")
DEFAULT = "default"
_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_limit(name: str, value: Any) -> int | str | None:
    """A limit as given by a user: a positive number (``250k``, ``2.5e5``, ``20M``), ``none``
    (no limit: None) or ``default`` (defer to the space file or the task).

    Raises:
        AutoDLError: anything else, with the accepted forms.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("none", "null", "inf", "unlimited"):
            return None
        if text == DEFAULT:
            return DEFAULT
        m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgt]?)", text)
        if m is None:
            raise AutoDLError(
                f"{name}={value!r} is not a limit; give a number such as 250000, 250k, 2.5e5 "
                "or 20M, or 'none' to lift it"
            )
        number = float(m.group(1)) * _SUFFIX[m.group(2)]
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise AutoDLError(f"{name}={value!r} must be a number, 'none' or 'default'")
    if not math.isfinite(number) or number < 1:
        raise AutoDLError(f"{name}={value!r} must be at least 1 (or 'none' to lift it)")
    return int(number)


@dataclass(frozen=True)
class Constraints:
    """Upper limits on a candidate's cost; None means no limit.

    Args:
        max_params: most parameters (all of them, trainable or not).
        max_flops: most forward FLOPs per example (see :mod:`autodlgym.searchspace.cost`).
    """

    max_params: int | None = None
    max_flops: int | None = None

    def __post_init__(self) -> None:
        for name in LIMITS:
            value = parse_limit(name, getattr(self, name))
            if value == DEFAULT:
                raise AutoDLError(f"{name}='default' is only meaningful where a limit is given")
            object.__setattr__(self, name, value)

    @property
    def active(self) -> bool:
        """Whether any limit is set."""
        return self.max_params is not None or self.max_flops is not None

    def excess(self, cost: Cost) -> float:
        """The largest ratio of a cost to its limit (<= 1 inside the budget; 0 without one)."""
        ratios = [0.0]
        if self.max_params is not None:
            ratios.append(cost.params / self.max_params)
        if self.max_flops is not None:
            ratios.append(cost.flops / self.max_flops)
        return max(ratios)

    def violation(self, cost: Cost) -> str | None:
        """One line saying which limit a cost breaks, or None inside the budget."""
        out = []
        if self.max_params is not None and cost.params > self.max_params:
            out.append(f"{_fmt(cost.params)} params > max_params {_fmt(self.max_params)}")
        if self.max_flops is not None and cost.flops > self.max_flops:
            out.append(f"{_fmt(cost.flops)} FLOPs > max_flops {_fmt(self.max_flops)}")
        return "; ".join(out) or None

    def to_config(self) -> dict[str, int | None]:
        return {"max_params": self.max_params, "max_flops": self.max_flops}

    def describe(self) -> str:
        if not self.active:
            return "no budget"
        return ", ".join(
            f"{name} {_fmt(getattr(self, name))}"
            for name in LIMITS
            if getattr(self, name) is not None
        )


def _fmt(n: float) -> str:
    for div, suffix in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if n >= div:
            return f"{n / div:.3g}{suffix}"
    return str(int(n))


def constraints_from_config(value: Any) -> dict[str, int | None]:
    """The limits a space file's ``constraints`` section gives (only those it names)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AutoDLError(
            f"space constraints must be a mapping such as {{max_params: 250k}}, got {value!r}"
        )
    unknown = set(value) - set(LIMITS)
    if unknown:
        raise AutoDLError(
            f"space constraints have unknown key(s) {sorted(unknown)}; use {', '.join(LIMITS)}"
        )
    out = {}
    for name, v in value.items():
        limit = parse_limit(f"constraints.{name}", v)
        if limit != DEFAULT:
            out[name] = limit
    return out


def resolve_budget(
    space: SearchSpace, task: Any, max_params: Any = DEFAULT, max_flops: Any = DEFAULT
) -> SearchSpace:
    """``space`` with its limits resolved (explicit value, else the space's own, else the
    task's default budget) and bound to the task's inputs (a space already bound keeps its
    own). Returns ``space`` itself when nothing changes.

    Args:
        space: the search space.
        task: a :class:`~autodlgym.tasks.Task` (its ``io`` and ``budget`` are used).
        max_params, max_flops: explicit limits (see :func:`parse_limit`).
    """
    given = {"max_params": parse_limit("max_params", max_params)}
    given["max_flops"] = parse_limit("max_flops", max_flops)
    task_budget = getattr(task, "budget", None) or Constraints()
    limits = {}
    for name in LIMITS:
        if given[name] != DEFAULT:
            limits[name] = given[name]
        elif name in space.given_constraints:
            limits[name] = space.given_constraints[name]
        else:
            limits[name] = getattr(task_budget, name)
    io = space.io if space.io is not None else task.io
    if (
        io == space.io
        and Constraints(**limits) == space.constraints
        and set(space.given_constraints) == set(LIMITS)
    ):
        return space
    return space.with_constraints(io=io, **limits)


# A budget for a user's data ---------------------------------------------------------------
#: seconds one epoch of the largest candidate may take at the machine's measured speed
EPOCH_SECONDS = 10.0
#: parameters a candidate may have per training example, and per input value
PARAMS_PER_EXAMPLE = 50
PARAMS_PER_INPUT = 256
#: the data budget's limits stay within these
PARAMS_RANGE = (20_000, 2_000_000)
FLOPS_RANGE = (100_000, 1_000_000_000)


def data_budget(n_train: int, input_size: int, flops_per_second: float) -> Constraints:
    """The default budget of a search on a user's data (a file, or arrays), which has no
    budget of its own: sized from the data and the machine.

    * ``max_flops``: one epoch of the largest candidate takes about :data:`EPOCH_SECONDS` at
      ``flops_per_second`` (training FLOPs, a forward and a backward pass counted as three
      forward passes): ``flops_per_second * EPOCH_SECONDS / (3 * n_train)``.
    * ``max_params``: :data:`PARAMS_PER_EXAMPLE` per training example, and at least
      :data:`PARAMS_PER_INPUT` per input value (a first layer of that width).

    Each is rounded down to 1, 2 or 5 times a power of ten (the same budget for small
    changes of the measured speed) and kept within :data:`FLOPS_RANGE` / :data:`PARAMS_RANGE`.
    """
    flops = flops_per_second * EPOCH_SECONDS / (3 * max(1, int(n_train)))
    params = max(PARAMS_PER_EXAMPLE * int(n_train), PARAMS_PER_INPUT * int(input_size))
    return Constraints(
        max_params=_clamp(_round_125(params), PARAMS_RANGE),
        max_flops=_clamp(_round_125(flops), FLOPS_RANGE),
    )


def _round_125(x: float) -> int:
    """``x`` rounded down to 1, 2 or 5 times a power of ten."""
    if x < 1:
        return 1
    power = 10 ** math.floor(math.log10(x))
    return int(max(m for m in (1, 2, 5) if m * power <= x) * power)


def _clamp(x: int, bounds: tuple[int, int]) -> int:
    return max(bounds[0], min(bounds[1], x))


# Search inside the budget --------------------------------------------------------------------
def sample_within(
    space: SearchSpace, draw: Callable[[], ArchSpec], gen: np.random.Generator
) -> ArchSpec:
    """A candidate inside the budget (see the module docstring)."""
    last = None
    for _ in range(SAMPLE_TRIES):
        last = draw()
        if space.fits(last):
            return last
    target = cheapest(space)
    return _move_towards(space, last, target, gen)


def mutate_within(space: SearchSpace, mutate: Callable[[], ArchSpec], fallback) -> ArchSpec:
    for _ in range(MUTATE_TRIES):
        child = mutate()
        if space.fits(child):
            return child
    return fallback()


def cheapest(space: SearchSpace) -> ArchSpec:
    """The cheapest candidate a coordinate descent finds (kept on the space), measured by
    :meth:`Constraints.excess`; raises a one-line AutoDLError when it is over the budget.

    Starting from the first option of every decision, each pass tries every option of every
    active decision in turn (decisions that become active take their first option) and keeps
    the cheapest.
    """
    found = getattr(space, "_cheapest", None)
    if found is None:
        cons = space.constraints
        cur = space._complete({}, lambda c: c.options[0])
        best = cons.excess(space.cost(cur))
        for _ in range(DESCENT_PASSES):
            improved = False
            for c in space.choices:
                if c.name not in cur:
                    continue
                for option in c.options:
                    if option == cur[c.name]:
                        continue
                    cand = space._complete({**cur, c.name: option}, lambda ch: ch.options[0])
                    e = cons.excess(space.cost(cand))
                    if e < best:
                        cur, best, improved = cand, e, True
            if not improved:
                break
        found = (cur, best)
        space._cheapest = found
    spec, excess = found
    if excess > 1.0:
        raise AutoDLError(
            f"nothing in this search space fits the budget ({space.constraints.describe()}): "
            f"the cheapest candidate found has {space.constraints.violation(space.cost(spec))}; "
            "raise the limit (e.g. --max-params none) or offer smaller options"
        )
    return spec


def option_fits(space: SearchSpace, partial: Mapping[str, Any], choice: Any, option: Any) -> bool:
    """Whether some candidate inside the budget extends ``partial`` with ``choice = option``,
    judged by completing it with the cheapest candidate's values (see :func:`cheapest`) where
    they apply and first options elsewhere: True is certain, False a heuristic's verdict.
    Always True without a budget, and when nothing in the space fits."""
    if not space.constraints.active:
        return True
    try:
        target = cheapest(space)
    except AutoDLError:
        return True
    values = {**partial, choice.name: option}
    spec = space._complete(values, lambda c: target[c.name] if c.name in target else c.options[0])
    return space.fits(spec, count=False)


def budget_mask(space: SearchSpace, partial: Mapping[str, Any], decision: Any) -> np.ndarray:
    """``decision.mask`` (the options that exist) narrowed to the options
    :func:`option_fits` allows after ``partial``; when it allows none, the option of the
    cheapest completion stays, so a mask is never empty."""
    import numpy as np

    mask = decision.mask.copy()
    if not space.constraints.active:
        return mask
    c = decision.choice
    allowed = [option_fits(space, partial, c, o) for o in c.options]
    if not any(allowed):
        cons = space.constraints
        excess = []
        for o in c.options:
            spec = space._complete({**partial, c.name: o}, lambda ch: ch.options[0])
            excess.append(cons.excess(space.cost(spec)))
        allowed[int(np.argmin(excess))] = True
    mask[: len(c.options)] = allowed
    return mask


def _move_towards(
    space: SearchSpace, spec: ArchSpec, target: ArchSpec, gen: np.random.Generator
) -> ArchSpec:
    cur = dict(spec)
    while True:
        # decisions active in both that differ; once they agree, so does everything else
        differ = [n for n, v in cur.items() if n in target and target[n] != v]
        if not differ:
            return target
        name = differ[int(gen.integers(len(differ)))]
        cur[name] = target[name]
        spec = space._complete(cur, lambda c: target[c.name] if c.name in target else c.options[0])
        cur = dict(spec)
        if space.fits(spec, count=False):
            return spec
