"""Tasks: data sets a candidate is trained and scored on.

A task is made by a factory registered with :func:`register_task`; :func:`get_task` calls it
with keyword options and returns a :class:`Task` (what the data looks like: its
:class:`~autodlgym.searchspace.io.IOSpec`, loss and metric). ``Task.load()`` returns the arrays
as :class:`TaskData`, generated once per process for each (name, options).

Built-in tasks:

- ``mnist1d``: MNIST-1D (Greydanus 2020), generated offline by the ``mnist1d`` package;
  3500 train / 500 validation / 1000 test sequences of length 40, 10 classes.
- ``mnist1d_shuffled``: the same examples with one fixed permutation of the 40 positions, so
  that spatial priors (convolutions, recurrence) no longer help.
- ``digits``: scikit-learn's 8x8 handwritten digits, a fixed stratified split.
- ``adding``: the adding problem (Hochreiter & Schmidhuber 1997): a sequence of (value,
  marker) pairs; the target is the sum of the two marked values. A long-range regression task.
- ``npz:PATH``: a user's own arrays (keys and shapes in :func:`~autodlgym.tasks.files.npz_task`).
- ``csv:PATH`` / ``parquet:PATH``: a table with a ``target`` column; ``images:DIR``: one
  folder of images per class (:mod:`autodlgym.tasks.files`, which also holds
  ``from_arrays`` and ``from_dataset`` for data already in Python).
- Tabular benchmarks, whose evaluation is a lookup (:mod:`autodlgym.tasks.tabular`):
  ``nasbench-graph:DATASET``, ``mnist1d-table`` and ``table:RUN_DIR``. They carry a
  :attr:`Task.table` instead of arrays, and bring their own search space.

The built-in factories live in :mod:`autodlgym.tasks.datasets`, :mod:`autodlgym.tasks.files`
and :mod:`autodlgym.tasks.tabular`. A task made from a user's data carries its
``preprocessing``: the JSON description of how raw inputs become model inputs (statistics
from the training split only), which :mod:`autodlgym.tasks.preprocessing` applies and
``autodlgym export`` writes beside a model.

Generation is deterministic and never touches numpy's or Python's global random state.
Generated MNIST-1D arrays are cached on disk under ``$AUTODLGYM_CACHE`` (default
``$XDG_CACHE_HOME/autodlgym`` or ``~/.cache/autodlgym``); the cache is an optimisation only.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from autodlgym.errors import AutoDLError
from autodlgym.registry import Registry
from autodlgym.searchspace.constraints import Constraints
from autodlgym.searchspace.io import IOSpec
from autodlgym.trial import Fidelity, TrialResult, rung_fidelities
from autodlgym.utils import did_you_mean

LOSSES = ("cross_entropy", "mse")
METRICS = ("accuracy", "r2")
DEFAULT_TASK = "mnist1d"


def _adopt(name: str, factory: Callable[..., Task]) -> None:
    register_task(name)(factory)


#: name -> factory ``(**options) -> Task``; ``prefix=True`` entries take ``name:ARG``.
#: Plugins: the ``autodlgym.tasks`` entry-point group.
TASKS: Registry[Callable[..., Task]] = Registry(
    "task", lazy_module="autodlgym.tasks.datasets", group="autodlgym.tasks", adopt=_adopt
)

_DATA_CACHE: dict[tuple[str, tuple[tuple[str, Any], ...]], TaskData] = {}
_TABLE_CACHE: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}
_DATA_LOCK = threading.Lock()
# get_task(name, **options) -> Task: tasks are immutable, and workers ask for one per trial
_TASK_CACHE: dict[tuple[str, tuple[tuple[str, Any], ...]], Task] = {}


@dataclass(frozen=True)
class TaskData:
    """A task's arrays. Inputs are float32 of shape ``(N, *io.shape)``; labels are int64 of
    shape ``(N,)`` (classification) or float32 targets of shape ``(N, n_outputs)``
    (regression). The arrays are shared between callers: take a copy before modifying one."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def sizes(self) -> tuple[int, int, int]:
        """Numbers of train, validation and test examples."""
        return len(self.y_train), len(self.y_val), len(self.y_test)


@dataclass(frozen=True)
class Task:
    """What a candidate is trained and scored on.

    Args:
        name: the registered name (``npz:`` tasks carry their absolute path).
        kwargs: the factory options that differ from their defaults, as sorted
            ``(name, value)`` pairs of JSON scalars; ``get_task(name, **dict(kwargs))``
            makes the same task again.
        io: input modality and shape, number of outputs (None for a tabular task, which
            builds no model).
        loss: ``"cross_entropy"`` (classification) or ``"mse"`` (regression).
        metric: ``"accuracy"`` or ``"r2"``; scores are higher-is-better.
        description: one line for ``autodlgym tasks``.
        loader: makes the arrays; called once per process by :meth:`load`.
        table: for a tabular task, makes its
            :class:`~autodlgym.tasks.tabular.Blackbox` (called once per process by
            :meth:`lookup`); None for a task that trains.
        budget: the default budget of searches on this task (the most parameters and FLOPs
            per example a candidate may have; see :mod:`autodlgym.searchspace.constraints`),
            sized so that a CPU trains a candidate in seconds per epoch. A space file or
            ``--max-params`` / ``--max-flops`` override it; ``none`` lifts a limit.
        preprocessing: how raw inputs become the arrays, as JSON-ready data (see
            :mod:`autodlgym.tasks.preprocessing`); None for a task whose arrays are its inputs.
    """

    name: str
    kwargs: tuple[tuple[str, Any], ...]
    io: IOSpec | None
    loss: str
    metric: str
    description: str = ""
    loader: Callable[[], TaskData] = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    table: Callable[[], Any] | None = field(default=None, repr=False, compare=False)
    budget: Constraints = Constraints()
    preprocessing: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise AutoDLError(f"task loss {self.loss!r} is unknown; use one of {', '.join(LOSSES)}")
        if self.metric not in METRICS:
            raise AutoDLError(
                f"task metric {self.metric!r} is unknown; use one of {', '.join(METRICS)}"
            )
        object.__setattr__(self, "kwargs", tuple(sorted(dict(self.kwargs).items())))
        if self.table is not None and type(self) is Task:
            # Task(table=...) as written before the two kinds had classes: a lookup task
            from autodlgym.tasks.tabular import LookupTask

            object.__setattr__(self, "__class__", LookupTask)
        if isinstance(self.budget, dict):
            object.__setattr__(self, "budget", Constraints(**self.budget))
        if not isinstance(self.budget, Constraints):
            raise AutoDLError(
                f"task budget must be a Constraints or a dict of max_params / max_flops, got {self.budget!r}"
            )

    #: ``"trained"``: evaluating a candidate trains it; ``"lookup"``: it is read off a table
    #: (:class:`~autodlgym.tasks.tabular.LookupTask`). Both kinds answer the same protocol:
    #: :meth:`evaluate`, :meth:`default_space`, :meth:`default_fidelity`,
    #: :meth:`default_fidelities`, :meth:`prepare` and :attr:`budget`.
    kind: ClassVar[str] = "trained"

    @property
    def is_tabular(self) -> bool:
        """Deprecated (0.2.0): ``task.kind == "lookup"``."""
        warnings.warn(
            "Task.is_tabular is deprecated and will be removed in 0.3.0; use "
            'task.kind == "lookup" (or the task protocol: evaluate, default_space, ...)',
            DeprecationWarning,
            stacklevel=2,
        )
        return self.kind == "lookup"

    # The task protocol ----------------------------------------------------------------------
    def default_space(self) -> Any:
        """The search space a run on this task searches unless given one: the default space
        for its inputs' modality (``SearchSpace.default(io.modality)``: the blocks whose
        priors fit them); a lookup task's table brings its own."""
        from autodlgym.searchspace.space import SearchSpace

        return SearchSpace.default(self.io.modality if self.io is not None else None)

    def default_fidelity(self) -> Fidelity | None:
        """The full fidelity of a run that names no ``epochs`` (None: the run's own default,
        which follows its pruner)."""
        return None

    def epoch_range(self) -> tuple[int, int] | None:
        """The ``(min, max)`` epochs a candidate can be evaluated at (None: any number)."""
        return None

    def default_fidelities(
        self, full: Fidelity, first_time_limit: float | None = None
    ) -> list[Fidelity]:
        """The ladder of fidelities a rung scheduler (``--pruner asha``) climbs up to
        ``full``, cheapest first: from a third of an epoch (the first batches of an epoch over
        ``full``'s training set, a third of it: ``max_examples``), three times more per rung. A ladder of one fidelity means the task
        cannot be evaluated at lower fidelity, and multi-fidelity search does not apply."""
        n_train = self.load().sizes()[0]
        if full.max_train_samples is not None:
            n_train = min(n_train, full.max_train_samples)
        return rung_fidelities(full, n_train, first_time_limit=first_time_limit)

    def prepare(self, warm_up: Callable[[], None] | None = None) -> None:
        """Make what every evaluation needs before the first trial's clock runs: the arrays
        (and ``warm_up()``, the trainer's one-off costs, for a task that trains)."""
        if warm_up is not None:
            warm_up()
        self.load()

    def evaluate(
        self,
        spec: Any,
        fidelity: Fidelity,
        seed: int = 0,
        *,
        callback: Callable[[int, float], bool | None] | None = None,
        train: Callable[..., TrialResult] | None = None,
        **options: Any,
    ) -> TrialResult:
        """Score ``spec`` at ``fidelity``: what an executor runs for each trial.

        A trained task calls ``train(spec, task, fidelity, seed, callback=callback,
        **options)`` (the executor passes :func:`~autodlgym.training.trainer.train_and_score`
        bound to its device); a lookup task reads the table and ignores ``train``.
        ``callback(epoch, val_score)`` sees each validation check; returning False ends the
        trial ``pruned``.
        """
        if train is None:
            raise AutoDLError(
                f"task {self.name!r} trains its candidates: give evaluate() a trainer, e.g. "
                "train=autodlgym.train_and_score"
            )
        return train(spec, self, fidelity, seed, callback=callback, **options)

    @property
    def is_classification(self) -> bool:
        return self.loss == "cross_entropy"

    @property
    def key(self) -> str:
        """Canonical text naming this task: the name alone when it has no options, else
        JSON ``{"name": ..., "kwargs": {...}}``. :meth:`from_key` reverses it."""
        if not self.kwargs:
            return self.name
        return json.dumps(
            {"name": self.name, "kwargs": dict(self.kwargs)}, sort_keys=True, separators=(",", ":")
        )

    @classmethod
    def from_key(cls, key: str) -> Task:
        """The task a :attr:`key` names."""
        if key.startswith("{"):
            try:
                data = json.loads(key)
                name, kwargs = data["name"], dict(data.get("kwargs") or {})
            except (ValueError, KeyError, TypeError):
                raise AutoDLError(
                    f"task key {key!r} is not valid; write a task name or "
                    '{"name": ..., "kwargs": {...}}'
                ) from None
            return get_task(name, **kwargs)
        return get_task(key)

    def __reduce__(self) -> tuple[Any, ...]:
        # the loader is a closure: a pickled task is remade from its name and options
        return (_remake_task, (self.name, self.kwargs))

    def load(self) -> TaskData:
        """The arrays, generated on first use and kept for the life of the process.

        Raises:
            AutoDLError: a tabular task, which has no arrays.
        """
        if self.table is not None:
            raise AutoDLError(
                f"task {self.name!r} is a lookup table and has no arrays; evaluate candidates "
                "with task.lookup().objective_function(spec)"
            )
        cache_key = (self.name, self.kwargs)
        data = _DATA_CACHE.get(cache_key)
        if data is None:
            with _DATA_LOCK:
                data = _DATA_CACHE.get(cache_key)
                if data is None:
                    data = self.loader()
                    # a graph task's data (tasks/graphs.py) checks itself as it is made
                    data = _check_data(self, data) if isinstance(data, TaskData) else data
                    _DATA_CACHE[cache_key] = data
        return data

    def lookup(self) -> Any:
        """A tabular task's :class:`~autodlgym.tasks.tabular.Blackbox`, made on first use and
        kept for the life of the process.

        Raises:
            AutoDLError: a task that trains (it has no table).
        """
        if self.table is None:
            raise AutoDLError(f"task {self.name!r} trains its candidates; it has no lookup table")
        cache_key = (self.name, self.kwargs)
        table = _TABLE_CACHE.get(cache_key)
        if table is None:
            with _DATA_LOCK:
                table = _TABLE_CACHE.get(cache_key)
                if table is None:
                    table = _TABLE_CACHE[cache_key] = self.table()
        return table


def _remake_task(name: str, kwargs: tuple[tuple[str, Any], ...]) -> Task:
    return get_task(name, **dict(kwargs))


def register_task(
    name: str,
    description: str = "",
    prefix: bool = False,
    arg: str = "PATH",
    choices: tuple[str, ...] = (),
    tabular: bool = False,
    env_name: str | None = None,
) -> Callable:
    """Decorator adding a task factory to the registry.

    This one registration is all a task needs: ``autodlgym tasks`` lists it, ``--task``
    and Ray workers find it, and (unless ``prefix``) it gets the Gymnasium ids
    ``autodlgym/<env_name>-v0``, ``-Seq-v0`` and ``-Search-v0``; ``env_name`` defaults to
    the name in CamelCase (``my_task`` -> ``MyTask``).

    The factory takes keyword options with defaults (JSON scalars) and returns a
    :class:`Task`; its ``kwargs`` are filled in here with the options that differ from their
    defaults, so equal tasks have equal keys and share cached data. With ``prefix=True`` the
    name is a prefix: ``get_task("name:ARG")`` calls ``factory(ARG, **options)``; ``arg``
    names the argument in listings, and ``choices`` (if given) are the arguments it accepts,
    each listed as a task of its own. ``tabular`` marks factories of lookup tasks. The
    decorated function, called directly, behaves as :func:`get_task` does.
    """

    def deco(factory: Callable[..., Task]) -> Callable[..., Task]:
        @functools.wraps(factory)
        def make(*args: Any, **options: Any) -> Task:
            normal = _normalise_options(name, factory, options, skip_first=prefix)
            task = factory(*args, **normal)
            return dataclasses.replace(task, kwargs=tuple(normal.items()))

        TASKS.add(
            name,
            make,
            description=description,
            prefix=prefix,
            arg=arg,
            choices=tuple(choices),
            tabular=tabular,
            env_name=env_name or camel(name),
        )
        _TASK_CACHE.clear()
        return make

    return deco


def camel(name: str) -> str:
    """``my_task`` -> ``MyTask``: the default Gymnasium name of a task."""
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_"))


def list_tasks(tabular: bool | None = None) -> list[tuple[str, str]]:
    """(name, description) of every registered task and task plugin, sorted by name;
    a plugin that fails to load is listed with the reason.

    A prefix task with a fixed set of arguments is listed once per argument
    (``nasbench-graph:cora``, ...); one that takes any argument is listed as ``name:ARG``
    (``npz:PATH``, ``table:RUN_DIR``).

    Args:
        tabular: only lookup tasks (True), only tasks that train (False), or all (None).
    """
    failed = TASKS.load_plugins()
    out = []
    for name in TASKS.names():
        if name in failed:
            out.append((name, f"({failed[name]})"))
            continue
        meta = TASKS.meta(name)
        if tabular is not None and bool(meta.get("tabular")) != tabular:
            continue
        desc = meta.get("description", "")
        if not meta.get("prefix"):
            out.append((name, desc))
        elif meta.get("choices"):
            out.extend((f"{name}:{c}", desc) for c in meta["choices"])
        else:
            out.append((f"{name}:{meta.get('arg', 'PATH')}", desc))
    return out


def get_task(name: str | Task = DEFAULT_TASK, **kwargs: Any) -> Task:
    """The task registered under ``name`` with options ``kwargs``.

    Options are checked against the factory's signature; string values are converted to the
    type of the option's default (so ``length="100"`` from a command line works). Options
    equal to their defaults are dropped, so equal tasks have equal keys. Tasks are kept per
    (name, options) for the life of the process, so a file behind an ``npz:`` task is read
    once.

    Raises:
        AutoDLError: unknown task or option, or data that cannot be read.
    """
    if isinstance(name, Task):
        if kwargs:
            raise AutoDLError("give options either in the Task or as keywords, not both")
        return name
    if not isinstance(name, str) or not name:
        raise AutoDLError(f"a task name must be a non-empty string, got {name!r}")
    base, sep, arg = name.partition(":")
    if base not in TASKS:
        known = [n for n, _ in list_tasks()]
        raise AutoDLError(
            f"unknown task {name!r}{did_you_mean(name, known)}; choose one of: {', '.join(known)}"
            " (a plugin's task needs its package installed or --import MODULE)"
        )
    try:
        cache_key = (name, tuple(sorted(kwargs.items())))
        task = _TASK_CACHE.get(cache_key)
    except TypeError:  # an unhashable option: let the factory reject it
        cache_key, task = None, None
    if task is not None:
        return task
    factory = TASKS.get(base)
    prefixed = bool(TASKS.meta(base).get("prefix"))
    if prefixed and not (sep and arg):
        raise AutoDLError(
            f"task {base!r} needs an argument: write {base}:{TASKS.meta(base).get('arg', 'PATH')}"
        )
    if sep and not prefixed:
        raise AutoDLError(f"task {base!r} takes no ':' argument; write just {base!r}")
    task = factory(arg, **kwargs) if prefixed else factory(**kwargs)
    if cache_key is not None:
        _TASK_CACHE[cache_key] = task
        if task.name != name:  # a file task asked for by a relative path: its absolute name too
            _TASK_CACHE[(task.name, cache_key[1])] = task
    return task


def clear_task_cache() -> None:
    """Forget the tasks made in this process (a data file changed on disk: make it again)."""
    _TASK_CACHE.clear()


def _normalise_options(
    name: str, factory: Callable[..., Task], kwargs: dict[str, Any], skip_first: bool
) -> dict[str, Any]:
    params = list(inspect.signature(factory).parameters.values())
    if any(p.default is inspect.Parameter.empty for p in params[int(skip_first) :]):
        raise TypeError(f"task factory {name!r}: every option needs a default")
    if skip_first:
        params = params[1:]
    defaults = {p.name: p.default for p in params}
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        known = ", ".join(defaults) or "none"
        raise AutoDLError(
            f"task {name!r} has no option(s) {', '.join(unknown)}"
            f"{did_you_mean(unknown[0], defaults)}; its options: {known}"
        )
    out = {}
    for key, value in kwargs.items():
        default = defaults[key]
        if isinstance(value, str) and default is not None and not isinstance(default, str):
            value = _parse_scalar(name, key, value, type(default))
        elif (
            isinstance(default, str)
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        ):
            value = str(value)  # a column named "3" given as target=3 on a command line
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(default) is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, bool | int | float | str):
            raise AutoDLError(f"task option {key}={value!r} must be a number, string or boolean")
        if value != default or type(value) is not type(default):
            out[key] = value
    return out


def _parse_scalar(task: str, key: str, text: str, kind: type) -> Any:
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        return kind(text)
    except ValueError:
        raise AutoDLError(
            f"task {task!r} option {key}={text!r} is not a valid {kind.__name__}"
        ) from None


def _check_data(task: Task, data: TaskData) -> TaskData:
    """Cast to the documented dtypes and check shapes against the task's IOSpec."""
    n_out = task.io.n_outputs
    arrays = {}
    for split in ("train", "val", "test"):
        x = np.ascontiguousarray(getattr(data, f"x_{split}"), dtype=np.float32)
        y = np.asarray(getattr(data, f"y_{split}"))
        if task.is_classification:
            y = np.ascontiguousarray(y, dtype=np.int64)
            want_y = (len(x),)
        else:
            y = np.ascontiguousarray(y, dtype=np.float32).reshape(len(y), -1)
            want_y = (len(x), n_out)
        if x.shape[1:] != task.io.shape or y.shape != want_y or len(x) == 0:
            raise AutoDLError(
                f"task {task.name!r}: {split} arrays have shapes x{x.shape} y{y.shape}, expected "
                f"x(N, {', '.join(map(str, task.io.shape))}) y{want_y} with N > 0"
            )
        if task.is_classification and (y.min() < 0 or y.max() >= n_out):
            raise AutoDLError(f"task {task.name!r}: {split} labels must lie in [0, {n_out - 1}]")
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    for a in arrays.values():
        a.setflags(write=False)
    return TaskData(**arrays)
