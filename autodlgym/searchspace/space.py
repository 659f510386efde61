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
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autodlgym.errors import AutoDLError, SpecError
from autodlgym.searchspace import constraints as _budget
from autodlgym.searchspace.constraints import Constraints
from autodlgym.searchspace.io import IOSpec
from autodlgym.searchspace.registry import BLOCKS, INIT_LAWS
from autodlgym.searchspace.spec import ArchSpec, Scalar
from autodlgym.utils import did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    import gymnasium
    import optuna

    from autodlgym.searchspace.cost import Cost

KINDS = ("categorical", "int", "float")

#: how :meth:`SearchSpace.suggest` hands decisions to Optuna (see there)
OPTUNA_ENCODINGS = ("categorical", "index", "snap")

# The default space, in the same format a user's YAML/JSON space file uses. The block options
# and the conditions of the decisions blocks use (kernel, dilation, growth, heads, cell,
# bidirectional) are filled in from the block registry by default_config().
_DEFAULT_TEMPLATE: dict[str, Any] = {
    "max_stages": 4,
    "globals": {
        "n_stages": {"options": [1, 2, 3, 4], "doc": "number of stages"},
        "connections": {
            "options": ["chain", "skip2", "skip3", "dense"],
            "doc": "links between blocks inside a stage: plain chain, a skip every k blocks, or "
            "every block fed the sum of all earlier outputs of its stage",
        },
        "activation": {"options": ["relu", "gelu", "silu", "tanh", "leaky_relu", "elu"]},
        "norm": {"options": ["none", "batch", "layer", "instance"]},
        "dropout": {"options": [0.0, 0.1, 0.25, 0.5]},
        "init": {
            "options": [
                "glorot_uniform",
                "glorot_normal",
                "he_uniform",
                "he_normal",
                "lecun_normal",
                "orthogonal",
                "torch_default",
            ],
            "doc": "weight-init law; gains corrected for the activation, biases zero",
        },
        "zero_init_residual": {
            "options": [False, True],
            "doc": "zero the last layer of every residual branch so each block starts as identity",
        },
        "trainable": {
            "options": ["all", "fraction_0.1", "head"],
            "doc": "which weights train: all; 10 % of the units of each layer (the rest keep their "
            "random init); or the head only (random features, trained linear readout)",
        },
        "head_pool": {"options": ["avg", "max", "flatten", "last"]},
        "optimizer": {"options": ["adam", "adamw", "sgd", "rmsprop"]},
        "momentum": {"options": [0.0, 0.9, 0.99], "when": {"optimizer": ["sgd", "rmsprop"]}},
        "lr": {
            "kind": "float",
            "log": True,
            "options": [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1],
        },
        "weight_decay": {"options": [0.0, 1e-5, 1e-4, 1e-3, 1e-2], "kind": "float"},
        "batch_size": {"options": [32, 64, 128, 256], "kind": "int", "log": True},
        "grad_clip": {
            "options": [0.0, 0.5, 1.0, 5.0],
            "kind": "float",
            "doc": "0 means no clipping",
        },
    },
    "stage": {
        "downsample": {
            "options": ["none", "max", "avg", "lp", "lse", "strided"],
            "doc": "pooling (or a strided conv) before this stage; stage 1 has none",
            "from_stage": 2,
        },
        "lp_p": {
            "options": [1.0, 2.0, 3.0, 4.0],
            "kind": "float",
            "when": {"downsample": ["lp"]},
            "from_stage": 2,
            "doc": "the power p of Lp pooling, (sum |x|^p)^(1/p) over each window",
        },
        "lse_r": {
            "options": [0.5, 1.0, 2.0, 5.0],
            "kind": "float",
            "log": True,
            "when": {"downsample": ["lse"]},
            "from_stage": 2,
            "doc": "sharpness r of log-sum-exp pooling, log(mean exp(r x)) / r: mean as r -> 0, "
            "max as r -> inf",
        },
        "block": {},
        "depth": {"options": [1, 2, 3, 4], "kind": "int", "doc": "blocks in this stage"},
        "width": {"options": [8, 16, 32, 64, 128, 256, 512], "kind": "int", "log": True},
        "kernel": {"options": [3, 5, 7, 9], "kind": "int"},
        "dilation": {"options": [1, 2, 4], "kind": "int"},
        "growth": {"options": [8, 16, 32], "kind": "int"},
        "heads": {"options": [1, 2, 4], "kind": "int"},
        "cell": {"options": ["rnn", "gru", "lstm", "minimal"]},
        "bidirectional": {"options": [False, True]},
        "chrono_init": {
            "options": [False, True],
            "when": {"cell": ["gru", "lstm", "minimal"]},
            "doc": "chrono init of gate biases: log U[1, T_max - 1]",
        },
    },
}


def default_config() -> dict[str, Any]:
    """The default space as a config: every built-in block, each stage decision a block
    uses (``register_block(..., uses=...)``) active exactly for the blocks that use it."""
    from autodlgym.searchspace.registry import BLOCKS

    config = copy.deepcopy(_DEFAULT_TEMPLATE)
    config["stage"]["block"]["options"] = BLOCKS.builtins()
    _condition_on_blocks(config["stage"], set(config["stage"]))
    return config


def __getattr__(name: str) -> Any:
    if name == "DEFAULT_CONFIG":  # kept for callers of the old constant: a fresh copy
        return default_config()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _condition_on_blocks(stage: dict[str, Any], free: set[str]) -> None:
    """Condition the stage decisions in ``free`` on the blocks that use them.

    A decision that some offered block (``stage["block"]["options"]``) lists in its
    registered ``uses`` is made active exactly for those blocks. One that only blocks not
    offered use keeps them as its condition, so the space drops it (and its children) as
    never active. Unknown blocks are errors.
    """
    from autodlgym.searchspace.registry import blocks_using, loaded_blocks

    blocks = list((stage.get("block") or {}).get("options") or [])
    _check_names(BLOCKS, blocks, "autodlgym.register_block")
    registered = loaded_blocks()
    for name in list(stage):
        if name == "block" or name not in free:
            continue
        users = blocks_using(name, blocks) or blocks_using(name, registered)
        if users:
            stage[name] = {**stage[name], "when": {"block": users}}


def _check_names(registry: Any, names: Iterable[Any], how: str) -> None:
    """Every option of a ``block`` / ``init`` decision must be registered (built in, from
    Python or a plugin)."""
    for n in names:
        if n not in registry:
            raise registry.unknown(n, hint=f"; register your own with {how} (and --import it)")


def _same_type(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return True
    return type(a) is type(b)


@dataclass(frozen=True)
class Choice:
    """One decision.

    Args:
        name: unique name, e.g. ``"stage2.kernel"``.
        options: allowed values, in order (numeric options ascending).
        kind: ``"categorical"``, ``"int"`` or ``"float"``; decides how Optuna suggests it.
        log: whether numeric options are spread on a log scale.
        parent: name of the choice this one depends on, or None.
        parent_values: values of ``parent`` for which this choice is active.
        doc: one line for ``autodlgym space show``.
    """

    name: str
    options: tuple[Scalar, ...]
    kind: str = "categorical"
    log: bool = False
    parent: str | None = None
    parent_values: tuple[Scalar, ...] = ()
    doc: str = ""

    def index(self, value: Any) -> int:
        for i, o in enumerate(self.options):
            if o == value and _same_type(o, value):
                return i
        raise SpecError(
            f"{self.name}={value!r} is not allowed; choose one of {', '.join(map(repr, self.options))}"
        )

    def snap(self, value: float) -> Scalar:
        """The option nearest to a number (on a log scale for log choices)."""
        nums = np.asarray(self.options, dtype=float)
        if self.log and value > 0 and (nums > 0).all():
            i = int(np.argmin(np.abs(np.log(nums) - math.log(value))))
        else:
            i = int(np.argmin(np.abs(nums - value)))
        return self.options[i]


@dataclass(frozen=True)
class Decision:
    """A choice as seen by a one-decision-per-step agent: its position and valid option mask."""

    choice: Choice
    position: int
    mask: np.ndarray = field(compare=False)


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
    def default(cls) -> SearchSpace:
        """The default space: every block type, init law and training setting autodlgym ships."""
        return cls.from_config(default_config())

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
        if not isinstance(config, Mapping):
            raise AutoDLError(f"a space config must be a mapping, got {type(config).__name__}")
        config = dict(config)
        limits = _budget.constraints_from_config(config.pop("constraints", None))
        base = config.pop("base", None)
        if base not in (None, "default", "none"):
            raise AutoDLError(f"space base {base!r} is unknown; use 'default' or leave it out")
        if base == "default":
            merged = default_config()
            unknown = set(config) - {"max_stages", "globals", "stage", "remove"}
            if unknown:
                raise AutoDLError(
                    f"space file has unknown section(s) {sorted(unknown)}; use max_stages, globals, stage, remove"
                )
            for section in ("globals", "stage"):
                over = config.get(section) or {}
                if not isinstance(over, Mapping):
                    raise AutoDLError(
                        f"space section {section!r} must be a mapping of decision -> settings"
                    )
                for name, settings in over.items():
                    if not isinstance(settings, Mapping):
                        raise AutoDLError(
                            f"space decision {section}.{name} must be a mapping such as {{options: [...]}}, got {settings!r}"
                        )
                    if name in merged[section]:
                        merged[section][name] = {**merged[section][name], **settings}
                    elif "options" in settings:
                        merged[section][name] = dict(settings)
                    else:
                        raise AutoDLError(
                            f"space decision {section}.{name} is new and needs 'options'"
                            f"{did_you_mean(name, merged[section])}; "
                            f"known: {', '.join(sorted(merged[section]))}"
                        )
            for name in config.get("remove") or []:
                if name in merged["globals"]:
                    del merged["globals"][name]
                elif name in merged["stage"]:
                    del merged["stage"][name]
                else:
                    known = [*merged["globals"], *merged["stage"]]
                    raise AutoDLError(
                        f"cannot remove unknown decision {name!r}{did_you_mean(name, known)}"
                    )
            if "max_stages" in config:
                merged["max_stages"] = config["max_stages"]
            given = config.get("stage") or {}
            free = {n for n in merged["stage"] if "when" not in (given.get(n) or {})}
            _condition_on_blocks(merged["stage"], free)
            config = merged
        space = cls(_expand(config), config)
        return space.with_constraints(**limits) if limits else space

    @classmethod
    def from_file(cls, path: str | Path) -> SearchSpace:
        """A space from a YAML or JSON file (see :meth:`from_config` for the format)."""
        p = Path(path)
        if not p.is_file():
            raise AutoDLError(
                f"space file {str(p)!r} does not exist; give the path of a YAML or JSON file"
            )
        text = p.read_text()
        try:
            if p.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except Exception as exc:  # noqa: BLE001 - any parser error is a user error here
            raise AutoDLError(
                f"space file {str(p)!r} cannot be parsed: {_parse_error(exc)}"
            ) from None
        if data is None:
            raise AutoDLError(f"space file {str(p)!r} is empty; write e.g. 'base: default'")
        return cls.from_config(data)

    def to_config(self) -> dict[str, Any]:
        """The config this space was made from (stored with a run so it can be rebuilt)."""
        out = (
            copy.deepcopy(self._config)
            if self._config is not None
            else {"choices": [_choice_to_dict(c) for c in self._choices]}
        )
        if self._given:
            out["constraints"] = dict(self._given)
        return out

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
            if not any(v == pv and _same_type(v, pv) for pv in c.parent_values):
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
                    if any(o == pv and _same_type(o, pv) for pv in child.parent_values):
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
        if encoding not in OPTUNA_ENCODINGS:
            raise AutoDLError(
                f"unknown Optuna encoding {encoding!r}; choose one of {', '.join(OPTUNA_ENCODINGS)}"
            )
        values: dict[str, Scalar] = {}
        for c in self._choices:
            if not self.is_active(c, values):
                continue
            if c.kind == "categorical" or len(c.options) == 1 or encoding == "categorical":
                values[c.name] = trial.suggest_categorical(c.name, list(c.options))
            elif encoding == "index":
                values[c.name] = c.options[trial.suggest_int(c.name, 0, len(c.options) - 1)]
            elif c.kind == "int":
                lo, hi = int(min(c.options)), int(max(c.options))
                log = c.log and lo > 0
                values[c.name] = c.snap(trial.suggest_int(c.name, lo, hi, log=log))
            else:
                lo, hi = float(min(c.options)), float(max(c.options))
                log = c.log and lo > 0
                values[c.name] = c.snap(trial.suggest_float(c.name, lo, hi, log=log))
        return ArchSpec(values)

    def optuna_params(
        self, spec: Mapping[str, Any], encoding: str = "categorical"
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(params, distributions)`` of ``spec`` under ``encoding``, as
        :func:`optuna.trial.create_trial` takes them (to add a result Optuna did not ask for).

        Raises:
            SpecError: ``spec`` is not in this space.
        """
        import optuna

        spec = self.validate(spec)
        fixed: dict[str, Any] = {}
        for c in self._choices:
            if c.name not in spec:
                continue
            if encoding == "index" and c.kind != "categorical" and len(c.options) > 1:
                fixed[c.name] = c.index(spec[c.name])
            else:
                fixed[c.name] = spec[c.name]
        trial = optuna.trial.FixedTrial(fixed)
        self.suggest(trial, encoding)
        return trial.params, trial.distributions

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
                self, lambda: self._mutate(spec, gen), lambda: self.sample(gen)
            )
        return self._mutate(spec, gen)

    def _mutate(self, spec: ArchSpec, gen: np.random.Generator) -> ArchSpec:
        mutable = [c for c in self._choices if c.name in spec and len(c.options) > 1]
        if not mutable:
            return spec
        c = mutable[int(gen.integers(len(mutable)))]
        i = c.index(spec[c.name])
        if c.kind != "categorical" and gen.random() < 0.5:
            j = i + (1 if gen.random() < 0.5 else -1)
            j = min(max(j, 0), len(c.options) - 1)
            if j == i:
                j = i - 1 if i > 0 else i + 1
        else:
            j = int(gen.integers(len(c.options) - 1))
            j = j if j < i else j + 1
        values = dict(spec)
        values[c.name] = c.options[j]
        return self._complete(values, lambda ch: ch.options[int(gen.integers(len(ch.options)))])

    def neighbours(
        self, spec: Mapping[str, Any], rng: np.random.Generator | int | None = None
    ) -> list[ArchSpec]:
        """Every spec that changes one active decision of ``spec`` to another of its options,
        in decision order. Decisions that the change makes active are drawn from ``rng`` (as
        :meth:`mutate` does), those it makes inactive are dropped; neighbours that coincide
        are listed once."""
        gen = _as_generator(rng)
        spec = self.validate(spec)
        out: dict[str, ArchSpec] = {}
        for c in self._choices:
            if c.name not in spec or len(c.options) < 2:
                continue
            i = c.index(spec[c.name])
            for j, option in enumerate(c.options):
                if j == i:
                    continue
                values = dict(spec)
                values[c.name] = option
                n = self._complete(
                    values, lambda ch: ch.options[int(gen.integers(len(ch.options)))]
                )
                out.setdefault(n.arch_id, n)
        return list(out.values())

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


def _parse_error(exc: Exception) -> str:
    """One line for a YAML or JSON parse error that keeps where it happened."""
    mark = getattr(exc, "problem_mark", None)  # PyYAML's MarkedYAMLError
    if mark is not None:
        what = getattr(exc, "problem", None) or type(exc).__name__
        context = getattr(exc, "context", None)
        return f"line {mark.line + 1}, column {mark.column + 1}: {what}" + (
            f" ({context})" if context else ""
        )
    text = str(exc).strip()  # json: "Expecting ',' delimiter: line 3 column 5 (char 20)"
    return text.splitlines()[0] if text else type(exc).__name__


def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def _as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _choice_to_dict(c: Choice) -> dict[str, Any]:
    d: dict[str, Any] = {"name": c.name, "options": list(c.options), "kind": c.kind}
    if c.log:
        d["log"] = True
    if c.parent:
        d["when"] = {c.parent: list(c.parent_values)}
    if c.doc:
        d["doc"] = c.doc
    return d


def _make_choice(
    name: str, settings: Mapping[str, Any], parent: str | None, parent_values: Iterable[Any]
) -> Choice:
    allowed = {"options", "kind", "log", "when", "doc", "from_stage", "name"}
    unknown = set(settings) - allowed
    if unknown:
        raise AutoDLError(
            f"decision {name!r} has unknown setting(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    options = settings.get("options")
    if not isinstance(options, list | tuple) or not options:
        raise AutoDLError(f"decision {name!r} needs a non-empty list 'options', got {options!r}")
    for o in options:
        if not isinstance(o, bool | int | float | str):
            raise AutoDLError(
                f"decision {name!r} has option {o!r}; options must be numbers, strings or booleans"
            )
    kind = settings.get("kind")
    if kind is None:
        kind = "categorical"
    return Choice(
        name=name,
        options=tuple(options),
        kind=str(kind),
        log=bool(settings.get("log", False)),
        parent=parent,
        parent_values=tuple(parent_values),
        doc=str(settings.get("doc", "")),
    )


def _when(name: str, settings: Mapping[str, Any]) -> tuple[str, list[Any]] | None:
    when = settings.get("when")
    if when is None:
        return None
    if not isinstance(when, Mapping) or len(when) != 1:
        raise AutoDLError(
            f"decision {name!r}: 'when' must name exactly one parent, e.g. {{block: [conv]}}"
        )
    ((parent, values),) = when.items()
    if not isinstance(values, list | tuple) or not values:
        raise AutoDLError(
            f"decision {name!r}: 'when: {{{parent}: ...}}' needs a non-empty list of values"
        )
    return str(parent), list(values)


def _expand(config: Mapping[str, Any]) -> list[Choice]:
    """Turn a config into the ordered choice list, expanding the per-stage template.

    A condition on parent values that a narrowed space no longer offers keeps only the values
    still offered; a decision none of whose parent values remain is never active and is dropped
    (with its own children).
    """
    kept: dict[str, Choice] = {}
    for c in _expand_all(config):
        if c.parent is not None:
            parent = kept.get(c.parent)
            if parent is None:
                continue
            values = tuple(
                v
                for v in c.parent_values
                if any(v == o and _same_type(v, o) for o in parent.options)
            )
            if not values:
                continue
            c = dataclasses.replace(c, parent_values=values)
        kept[c.name] = c
    return list(kept.values())


def _expand_all(config: Mapping[str, Any]) -> list[Choice]:
    if "choices" in config:  # an explicit list (what to_config writes for hand-made spaces)
        out = []
        for d in config["choices"]:
            w = _when(d.get("name", "?"), d)
            out.append(_make_choice(d["name"], d, w[0] if w else None, w[1] if w else ()))
        return out
    unknown = set(config) - {"max_stages", "globals", "stage"}
    if unknown:
        raise AutoDLError(
            f"space config has unknown section(s) {sorted(unknown)}; use max_stages, globals, stage"
        )
    max_stages = config.get("max_stages", 1)
    if not isinstance(max_stages, int) or isinstance(max_stages, bool) or not 1 <= max_stages <= 8:
        raise AutoDLError(f"max_stages must be an integer from 1 to 8, got {max_stages!r}")
    glob = dict(config.get("globals") or {})
    stage = dict(config.get("stage") or {})
    if "n_stages" in glob:
        ns = glob["n_stages"]
        opts = [o for o in ns.get("options", []) if isinstance(o, int) and 1 <= o <= max_stages]
        if not opts:
            raise AutoDLError(f"n_stages needs options between 1 and max_stages={max_stages}")
        glob["n_stages"] = {**ns, "options": opts, "kind": "int"}
    else:
        glob = {"n_stages": {"options": [max_stages], "kind": "int"}, **glob}
    n_stage_opts = glob["n_stages"]["options"]

    out: list[Choice] = []
    names: set[str] = set()
    # n_stages first, then the stages (which depend on it), then the other globals
    out.append(_make_choice("n_stages", glob.pop("n_stages"), None, ()))
    names.add("n_stages")
    if "block" in stage:
        _check_names(BLOCKS, stage["block"].get("options") or [], "autodlgym.register_block")
    if "init" in glob:
        _check_names(INIT_LAWS, glob["init"].get("options") or [], "autodlgym.register_init")
    for i in range(1, max_stages + 1):
        stage_values = [n for n in n_stage_opts if n >= i]
        if not stage_values:
            break
        for key, settings in stage.items():
            if not isinstance(settings, Mapping):
                raise AutoDLError(
                    f"stage decision {key!r} must be a mapping such as {{options: [...]}}"
                )
            if i < int(settings.get("from_stage", 1)):
                continue
            name = f"stage{i}.{key}"
            w = _when(name, settings)
            if w is None:
                parent, pvals = "n_stages", stage_values
            else:
                parent, pvals = f"stage{i}.{w[0]}", w[1]
                if parent not in names:
                    raise AutoDLError(
                        f"stage decision {key!r} depends on {w[0]!r}, which must be defined before it"
                    )
            out.append(_make_choice(name, settings, parent, pvals))
            names.add(name)
    for key, settings in glob.items():
        if not isinstance(settings, Mapping):
            raise AutoDLError(f"decision {key!r} must be a mapping such as {{options: [...]}}")
        w = _when(key, settings)
        if w is not None and w[0] not in names:
            raise AutoDLError(
                f"decision {key!r} depends on {w[0]!r}, which must be defined before it"
            )
        out.append(_make_choice(key, settings, w[0] if w else None, w[1] if w else ()))
        names.add(key)
    return out
