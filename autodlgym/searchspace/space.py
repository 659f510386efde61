"""SearchSpace: the single source of every decision an architecture search makes.

A space is an ordered list of :class:`Choice` objects. Each choice has a finite, ordered list of
options and at most one condition: it is *active* only when its parent is active and the parent's
value is one of the listed values (kernel size only for conv-like blocks, cell type only for
recurrent blocks, every ``stageI.*`` decision only when ``n_stages >= I``). Parents come before
their children, so walking the list in order always knows whether a choice is active.

From this list the space derives everything else: sampling, validation, the fixed-length integer
encoding and its Gymnasium ``MultiDiscrete`` space, Optuna define-by-run suggestions, mutation,
the exact number of distinct architectures, the one-decision-per-step order used by
:class:`~autodlgym.envs.sequential_env.SequentialAutoDLEnv`, and the flat leaderboard columns.

This module is the core (the class, sampling, validation, encoding, counting, tables). The other
concerns live beside it, and the class's methods call them: :mod:`~autodlgym.searchspace.choice`
(:class:`Choice`, :class:`Decision`), :mod:`~autodlgym.searchspace.config` (config files and
dicts, :func:`default_config`), :mod:`~autodlgym.searchspace.optuna_bridge` (``suggest``,
``optuna_params``) and :mod:`~autodlgym.searchspace.moves` (``mutate``, ``neighbours``).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autodlgym.errors import AutoDLError, SpecError
from autodlgym.searchspace import config as _config
from autodlgym.searchspace import constraints as _budget
from autodlgym.searchspace import moves as _moves
from autodlgym.searchspace import optuna_bridge as _optuna
from autodlgym.searchspace.choice import KINDS, Choice, Decision, same_type
from autodlgym.searchspace.config import default_config
from autodlgym.searchspace.constraints import Constraints
from autodlgym.searchspace.io import IOSpec
from autodlgym.searchspace.optuna_bridge import OPTUNA_ENCODINGS
from autodlgym.searchspace.spec import ArchSpec, Scalar
from autodlgym.utils import did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    import gymnasium
    import optuna

    from autodlgym.searchspace.cost import Cost

#: re-exported: the names this module has always offered
__all__ = ["KINDS", "OPTUNA_ENCODINGS", "Choice", "Decision", "SearchSpace", "default_config"]


def __getattr__(name: str) -> Any:
    if name == "DEFAULT_CONFIG":  # kept for callers of the old constant: a fresh copy
        return default_config()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SearchSpace:
    """An ordered, conditional set of choices. See the module docstring.

    Build one with :meth:`default`, :meth:`from_config` or :meth:`from_file`.
    """

    def __init__(self, choices: Sequence[Choice], config: Mapping[str, Any] | None = None) -> None:
        seen: dict[str, Choice] = {}
        for c in choices:
            if c.name in seen:
                raise AutoDLError(f"decision {c.name!r} is defined twice")
            if not c.options:
                raise AutoDLError(f"decision {c.name!r} has no options; give at least one")
            if c.kind not in KINDS:
                raise AutoDLError(
                    f"decision {c.name!r} has kind {c.kind!r}; use one of {', '.join(KINDS)}"
                )
            if c.kind != "categorical" and not all(
                isinstance(o, int | float) and not isinstance(o, bool) for o in c.options
            ):
                raise AutoDLError(
                    f"decision {c.name!r} is {c.kind} but has non-numeric options {list(c.options)}"
                )
            if len(set(map(repr, c.options))) != len(c.options):
                raise AutoDLError(f"decision {c.name!r} lists an option twice: {list(c.options)}")
            if c.parent is not None:
                if c.parent not in seen:
                    raise AutoDLError(
                        f"decision {c.name!r} depends on {c.parent!r}, which is not defined before it"
                    )
                parent = seen[c.parent]
                for v in c.parent_values:
                    try:
                        parent.index(v)
                    except SpecError:
                        raise AutoDLError(
                            f"decision {c.name!r} is conditioned on {c.parent}={v!r}, which is not "
                            f"an option of {c.parent} ({', '.join(map(repr, parent.options))})"
                        ) from None
            seen[c.name] = c
        self._choices: tuple[Choice, ...] = tuple(choices)
        self._by_name = seen
        self._position = {c.name: i for i, c in enumerate(self._choices)}
        self._children: dict[str | None, list[Choice]] = {}
        for c in self._choices:
            self._children.setdefault(c.parent, []).append(c)
        self._config = copy.deepcopy(dict(config)) if config is not None else None
        # budget (see constraints.py): the limits this space sets, the inputs candidates are
        # measured for, and how many candidates were found over budget
        self._given: dict[str, int | None] = {}
        self._constraints = Constraints()
        self.io: IOSpec | None = None
        self.rejected = 0
        self._cheapest: tuple[ArchSpec, float] | None = None

    # Construction -------------------------------------------------------------------------
    @classmethod
    def default(cls, modality: str | None = None) -> SearchSpace:
        """The default space: every block type, init law and training setting autodlgym ships;
        with a ``modality`` (``vector``, ``sequence``, ``image``), only the blocks whose
        priors fit it (a trained task's default space: its inputs' modality; see
        :func:`~autodlgym.searchspace.config.default_config`)."""
        return cls.from_config(default_config(modality))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SearchSpace:
        """A space from a config dict (the format :func:`default_config` returns).

        A config with ``base: default`` starts from the default space and overrides it: a
        decision given there replaces that decision's entries (narrow or widen ``options``,
        change ``log``); ``max_stages`` changes the stage count; ``remove: [names]`` drops
        decisions (their children go too). A stage decision that blocks use (``kernel``...)
        is active for the offered blocks whose registration ``uses`` it, unless the file
        gives its own ``when``.
        ``constraints: {max_params: ..., max_flops: ...}``
        sets a budget (see :mod:`autodlgym.searchspace.constraints`).
        """
        return _config.from_config(cls, config)

    @classmethod
    def from_file(cls, path: str | Path) -> SearchSpace:
        """A space from a YAML or JSON file (see :meth:`from_config` for the format)."""
        return cls.from_config(_config.read_file(path))

    def to_config(self) -> dict[str, Any]:
        """The config this space was made from (stored with a run so it can be rebuilt)."""
        return _config.to_config(self._config, self._choices, self._given)

    # Budget -------------------------------------------------------------------------------
    @property
    def constraints(self) -> Constraints:
        """The budget candidates must fit (no limits unless set; see
        :mod:`autodlgym.searchspace.constraints`)."""
        return self._constraints

    @property
    def given_constraints(self) -> dict[str, int | None]:
        """The limits this space sets itself (None: lifted), without task defaults."""
        return dict(self._given)

    def with_constraints(
        self, max_params: Any = "default", max_flops: Any = "default", io: Any = "default"
    ) -> SearchSpace:
        """A copy of this space with a budget.

        Args:
            max_params, max_flops: a limit (``250000``, ``"250k"``), None / ``"none"`` to lift
                it, or ``"default"`` to keep this space's.
            io: the :class:`~autodlgym.IOSpec` (or a Task) candidates are measured for;
                ``"default"`` keeps this space's. Sampling under a budget needs one.
        """
        out = copy.copy(self)
        out._given = dict(self._given)
        for name, value in (("max_params", max_params), ("max_flops", max_flops)):
            limit = _budget.parse_limit(name, value)
            if limit != "default":
                out._given[name] = limit
        out._constraints = Constraints(**out._given)
        if not (isinstance(io, str) and io == "default"):
            io = getattr(io, "io", io)  # a Task gives its IOSpec
            if io is not None and not isinstance(io, IOSpec):
                raise AutoDLError(f"io must be an IOSpec or a Task, got {type(io).__name__}")
            out.io = io
        out.rejected = 0
        out._cheapest = None
        return out

    def cost(self, spec: Mapping[str, Any]) -> Cost:
        """The spec's :class:`~autodlgym.searchspace.cost.Cost` for this space's ``io``."""
        if self.io is None:
            raise AutoDLError(
                "this space has no task inputs to measure candidates on; bind them with "
                "space.with_constraints(io=task)"
            )
        from autodlgym.searchspace.cost import estimate_cost

        return estimate_cost(spec, self.io)

    def over_budget(self, spec: Mapping[str, Any]) -> str | None:
        """One line saying which limit ``spec`` breaks, or None when it fits (always None
        without a budget)."""
        if not self._constraints.active:
            return None
        return self._constraints.violation(self.cost(spec))

    def fits(self, spec: Mapping[str, Any], count: bool = True) -> bool:
        """Whether ``spec`` fits the budget; a misfit adds one to :attr:`rejected` when
        ``count``."""
        if self.over_budget(spec) is None:
            return True
        if count:
            self.rejected += 1
        return False

    # Introspection ------------------------------------------------------------------------
    @property
    def choices(self) -> tuple[Choice, ...]:
        return self._choices

    @property
    def names(self) -> list[str]:
        return [c.name for c in self._choices]

    def __getitem__(self, name: str) -> Choice:
        try:
            return self._by_name[name]
        except KeyError:
            raise SpecError(self._unknown_decision(name)) from None

    def _unknown_decision(self, name: Any) -> str:
        return (
            f"unknown decision {name!r}{did_you_mean(name, self._by_name)}; "
            "`autodlgym space show` lists this space's decisions"
        )

    def __len__(self) -> int:
        return len(self._choices)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self._choices == other._choices

    def __hash__(self) -> int:
        return hash(self._choices)

    @property
    def max_options(self) -> int:
        return max(len(c.options) for c in self._choices)

    def always_active(self, choice: Choice | str) -> bool:
        """Whether a choice is active in every spec: it has no condition, or its condition
        lists every option of a parent that is itself always active."""
        c = self[choice] if isinstance(choice, str) else choice
        while c.parent is not None:
            parent = self._by_name[c.parent]
            if len(set(map(repr, c.parent_values))) < len(parent.options):
                return False
            c = parent
        return True

    def is_active(self, choice: Choice | str, values: Mapping[str, Any]) -> bool:
        """Whether a choice is active given (at least) the values of its ancestors."""
        c = self[choice] if isinstance(choice, str) else choice
        while c.parent is not None:
            if c.parent not in values:
                return False
            p = self._by_name[c.parent]
            v = values[c.parent]
            if not any(v == pv and same_type(v, pv) for pv in c.parent_values):
                return False
            c = p
        return True

    def cardinality(self) -> int:
        """The exact number of distinct architectures in the space."""

        def count(c: Choice) -> int:
            total = 0
            for o in c.options:
                prod = 1
                for child in self._children.get(c.name, []):
                    if any(o == pv and same_type(o, pv) for pv in child.parent_values):
                        prod *= count(child)
                total += prod
            return total

        result = 1
        for root in self._children.get(None, []):
            result *= count(root)
        return result

    # Sampling and completion --------------------------------------------------------------
    def _complete(self, values: Mapping[str, Any], pick) -> ArchSpec:
        out: dict[str, Scalar] = {}
        for c in self._choices:
            if not self.is_active(c, out):
                continue
            v = values.get(c.name, _MISSING)
            out[c.name] = pick(c) if v is _MISSING else v
        return ArchSpec(out)

    def sample(self, rng: np.random.Generator | int | None = None) -> ArchSpec:
        """A uniformly drawn option for every active decision.

        Args:
            rng: a numpy Generator (consumed) or an int seed.
        """
        gen = _as_generator(rng)

        def draw() -> ArchSpec:
            return self._complete({}, lambda c: c.options[int(gen.integers(len(c.options)))])

        if self._constraints.active:
            return _budget.sample_within(self, draw, gen)
        return draw()

    def contains(self, spec: Mapping[str, Any]) -> bool:
        try:
            self.validate(spec)
        except SpecError:
            return False
        return True

    def validate(self, spec: Mapping[str, Any]) -> ArchSpec:
        """Check a spec against the space; returns it as an ArchSpec.

        Raises:
            SpecError: naming the decision, the bad value and the allowed values.
        """
        if not isinstance(spec, Mapping):
            raise SpecError(
                f"a spec must be a mapping of decision -> value, got {type(spec).__name__}"
            )
        for key in spec:
            if key not in self._by_name:
                raise SpecError(f"spec has an {self._unknown_decision(key)}")
        for c in self._choices:
            active = self.is_active(c, spec)
            if active and c.name not in spec:
                raise SpecError(
                    f"spec lacks {c.name!r}, which is active here; give one of {', '.join(map(repr, c.options))}"
                )
            if not active and c.name in spec:
                raise SpecError(
                    f"spec sets {c.name}={spec[c.name]!r}, which is inactive unless "
                    f"{c.parent} is one of {', '.join(map(repr, c.parent_values))}; remove it"
                )
            if active:
                c.index(spec[c.name])
        return spec if isinstance(spec, ArchSpec) else ArchSpec(spec)

    # Encoding -----------------------------------------------------------------------------
    def encode(self, spec: Mapping[str, Any]) -> np.ndarray:
        """Fixed-length int64 vector of option indices; inactive decisions encode as 0."""
        self.validate(spec)
        return np.array(
            [c.index(spec[c.name]) if c.name in spec else 0 for c in self._choices], dtype=np.int64
        )

    def decode(self, vector: Sequence[int] | np.ndarray) -> ArchSpec:
        """The spec a vector stands for. Every vector inside the bounds of
        :meth:`gymnasium_space` decodes to a legal spec; entries of inactive decisions are ignored.
        """
        vec = np.asarray(vector).reshape(-1)
        if vec.shape[0] != len(self._choices):
            raise AutoDLError(
                f"action has {vec.shape[0]} entries, the space has {len(self._choices)} decisions"
            )
        values: dict[str, Scalar] = {}
        for c, raw in zip(self._choices, vec):
            if not self.is_active(c, values):
                continue
            i = int(raw)
            if not 0 <= i < len(c.options):
                raise AutoDLError(
                    f"action entry for {c.name} is {i}; it must lie in [0, {len(c.options) - 1}]"
                )
            values[c.name] = c.options[i]
        return ArchSpec(values)

    @property
    def nvec(self) -> np.ndarray:
        """Number of options of each decision, in order (as ``MultiDiscrete.nvec``); a copy.

        An ``np.ndarray`` (int64). Calling it, ``space.nvec()``, the form of 0.1.0, still
        returns the same numbers with a ``DeprecationWarning``; the call form is removed in
        0.3.0.
        """
        counts = np.array([len(c.options) for c in self._choices], dtype=np.int64)
        return counts.view(_Nvec)

    def gymnasium_space(self, seed: int | None = None) -> gymnasium.spaces.MultiDiscrete:
        from gymnasium.spaces import MultiDiscrete

        return MultiDiscrete(self.nvec, seed=seed)

    # One decision per step ----------------------------------------------------------------
    def next_decision(self, partial: Mapping[str, Any]) -> Decision | None:
        """The first active decision not yet made in ``partial`` (None when the spec is done),
        with the mask of its valid options over ``max_options`` slots."""
        start = max((self._position[k] + 1 for k in partial), default=0)
        for c in self._choices[start:]:
            if self.is_active(c, partial):
                mask = np.zeros(self.max_options, dtype=bool)
                mask[: len(c.options)] = True
                return Decision(c, self._position[c.name], mask)
        return None

    def decisions(self, spec: Mapping[str, Any]) -> list[Decision]:
        """The decisions a one-decision-per-step agent makes to build ``spec``, in order."""
        out, partial = [], {}
        while (d := self.next_decision(partial)) is not None:
            out.append(d)
            partial[d.choice.name] = spec[d.choice.name]
        return out

    # Optuna -------------------------------------------------------------------------------
    def suggest(self, trial: optuna.Trial, encoding: str = "categorical") -> ArchSpec:
        """Define-by-run suggestions for an Optuna trial; conditional decisions are suggested
        only when active.

        Args:
            trial: the trial to suggest on (a :class:`optuna.trial.FixedTrial` replays stored
                parameters).
            encoding: how decisions reach Optuna (see :data:`OPTUNA_ENCODINGS`):

                - ``"categorical"``: every decision is ``suggest_categorical`` over its options.
                  A sampler's prior over the options is uniform, as in :meth:`sample`.
                - ``"index"``: numeric decisions are ``suggest_int`` over the option indices
                  ``0 .. len(options) - 1`` (uniform over options, and ordered, so GP and
                  CMA-ES can use the order); categorical decisions stay categorical.
                - ``"snap"``: numeric decisions as a continuous range snapped to the nearest
                  option. Not uniform over the options (an end option or one on a long gap
                  gets more or less mass); kept only so that studies made before the other
                  encodings existed resume as they were.

        Returns:
            The spec (option values, never indices).
        """
        return _optuna.suggest(self, trial, encoding)

    def optuna_params(
        self, spec: Mapping[str, Any], encoding: str = "categorical"
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(params, distributions)`` of ``spec`` under ``encoding``, as
        :func:`optuna.trial.create_trial` takes them (to add a result Optuna did not ask for).

        Raises:
            SpecError: ``spec`` is not in this space.
        """
        return _optuna.optuna_params(self, spec, encoding)

    # Mutation -----------------------------------------------------------------------------
    def mutate(
        self, spec: Mapping[str, Any], rng: np.random.Generator | int | None = None
    ) -> ArchSpec:
        """Change one active decision to another option (a neighbouring option with probability
        1/2 for ordered decisions); decisions that become active are sampled, those that become
        inactive are dropped. Returns a spec different from ``spec`` whenever the space allows.
        Under a budget, mutations that do not fit are redrawn (then a fresh sample is returned;
        see :mod:`autodlgym.searchspace.constraints`)."""
        gen = _as_generator(rng)
        spec = self.validate(spec)
        if self._constraints.active:
            return _budget.mutate_within(
                self, lambda: _moves.mutate(self, spec, gen), lambda: self.sample(gen)
            )
        return _moves.mutate(self, spec, gen)

    def neighbours(
        self, spec: Mapping[str, Any], rng: np.random.Generator | int | None = None
    ) -> list[ArchSpec]:
        """Every spec that changes one active decision of ``spec`` to another of its options,
        in decision order. Decisions that the change makes active are drawn from ``rng`` (as
        :meth:`mutate` does), those it makes inactive are dropped; neighbours that coincide
        are listed once."""
        gen = _as_generator(rng)
        spec = self.validate(spec)
        return _moves.neighbours(self, spec, gen)

    # Tables -------------------------------------------------------------------------------
    def columns(self, spec: Mapping[str, Any]) -> dict[str, Scalar | None]:
        """One flat column per decision (None where inactive), for leaderboards."""
        return {c.name: spec.get(c.name) for c in self._choices}

    def describe(self) -> str:
        """A human-readable listing: choices, conditions, cardinality."""
        lines = [f"{len(self._choices)} decisions, {self.cardinality():,} distinct architectures"]
        if self._constraints.active:
            lines.append(f"budget: {self._constraints.describe()}")
        for c in self._choices:
            opts = ", ".join(map(_fmt, c.options))
            cond = (
                f"  [if {c.parent} in {{{', '.join(map(_fmt, c.parent_values))}}}]"
                if not self.always_active(c)
                else ""
            )
            kind = c.kind + (", log" if c.log else "")
            lines.append(f"  {c.name:<24} {kind:<12} {{{opts}}}{cond}")
            if c.doc:
                lines.append(f"  {'':<24} {c.doc}")
        return "\n".join(lines)


def _plain(value: Any) -> Any:
    """``value`` with every :class:`_Nvec` in it (one level of tuples, lists, dicts) seen as a
    plain ``np.ndarray``."""
    if isinstance(value, _Nvec):
        return value.view(np.ndarray)
    if isinstance(value, tuple | list):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _Nvec(np.ndarray):
    """What :attr:`SearchSpace.nvec` returns: an int64 array that can also be called.

    ``nvec`` was a method in 0.1.0 and is a property since; calling the array
    (``space.nvec()``) is the old form, kept for one minor release with a
    ``DeprecationWarning``. What numpy computes from it (arithmetic, comparisons, reductions,
    ``np.*`` functions, indexing, ``copy``, ``astype``) and its pickles are plain
    ``np.ndarray``; only views (``reshape``, ``.T``) keep the class, harmlessly.
    """

    def __call__(self) -> np.ndarray:
        warnings.warn(
            "SearchSpace.nvec() is deprecated; use the property SearchSpace.nvec (no call), "
            "an np.ndarray; the call form will be removed in 0.3.0",
            DeprecationWarning,
            stacklevel=2,
        )
        return np.array(self.view(np.ndarray))

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if "out" in kwargs:
            kwargs["out"] = _plain(kwargs["out"])
        return getattr(ufunc, method)(*_plain(inputs), **kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return super().__array_function__(func, types, _plain(args), _plain(kwargs))

    def __getitem__(self, key: Any) -> Any:
        return self.view(np.ndarray)[key]

    def copy(self, *args: Any, **kwargs: Any) -> np.ndarray:  # type: ignore[override]
        return self.view(np.ndarray).copy(*args, **kwargs)

    def astype(self, *args: Any, **kwargs: Any) -> np.ndarray:  # type: ignore[override]
        return self.view(np.ndarray).astype(*args, **kwargs)

    def __reduce__(self) -> Any:  # pickled as a plain array
        return self.view(np.ndarray).__reduce__()

    def __reduce_ex__(self, protocol: Any) -> Any:
        return self.view(np.ndarray).__reduce_ex__(protocol)

    def __copy__(self) -> np.ndarray:
        return self.copy()

    def __deepcopy__(self, memo: Any) -> np.ndarray:
        return self.copy()

    def __repr__(self) -> str:
        return repr(self.view(np.ndarray))


_MISSING = object()


def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def _as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)
