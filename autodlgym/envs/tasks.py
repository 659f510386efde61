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
- ``npz:PATH``: a user's own arrays (see :func:`npz_task`).

Generation is deterministic and never touches numpy's or Python's global random state.
Generated MNIST-1D arrays are cached on disk under ``$AUTODLGYM_CACHE`` (default
``$XDG_CACHE_HOME/autodlgym`` or ``~/.cache/autodlgym``); the cache is an optimisation only.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import os
import random
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autodlgym.errors import AutoDLError
from autodlgym.registry import Registry
from autodlgym.searchspace.io import IOSpec

LOSSES = ("cross_entropy", "mse")
METRICS = ("accuracy", "r2")
DEFAULT_TASK = "mnist1d"

#: name -> factory ``(**options) -> Task``; ``prefix=True`` entries take ``name:ARG``.
TASKS: Registry[Callable[..., Task]] = Registry("task")

_DATA_CACHE: dict[tuple[str, tuple[tuple[str, Any], ...]], TaskData] = {}
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
        io: input modality and shape, number of outputs.
        loss: ``"cross_entropy"`` (classification) or ``"mse"`` (regression).
        metric: ``"accuracy"`` or ``"r2"``; scores are higher-is-better.
        description: one line for ``autodlgym tasks``.
        loader: makes the arrays; called once per process by :meth:`load`.
    """

    name: str
    kwargs: tuple[tuple[str, Any], ...]
    io: IOSpec
    loss: str
    metric: str
    description: str = ""
    loader: Callable[[], TaskData] = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise AutoDLError(f"task loss {self.loss!r} is unknown; use one of {', '.join(LOSSES)}")
        if self.metric not in METRICS:
            raise AutoDLError(
                f"task metric {self.metric!r} is unknown; use one of {', '.join(METRICS)}"
            )
        object.__setattr__(self, "kwargs", tuple(sorted(dict(self.kwargs).items())))

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
        """The arrays, generated on first use and kept for the life of the process."""
        cache_key = (self.name, self.kwargs)
        data = _DATA_CACHE.get(cache_key)
        if data is None:
            with _DATA_LOCK:
                data = _DATA_CACHE.get(cache_key)
                if data is None:
                    data = _check_data(self, self.loader())
                    _DATA_CACHE[cache_key] = data
        return data


def _remake_task(name: str, kwargs: tuple[tuple[str, Any], ...]) -> Task:
    return get_task(name, **dict(kwargs))


def register_task(name: str, description: str = "", prefix: bool = False) -> Callable:
    """Decorator adding a task factory to the registry.

    The factory takes keyword options with defaults (JSON scalars) and returns a
    :class:`Task`; its ``kwargs`` are filled in here with the options that differ from their
    defaults, so equal tasks have equal keys and share cached data. With ``prefix=True`` the
    name is a prefix: ``get_task("name:ARG")`` calls ``factory(ARG, **options)``. The
    decorated function, called directly, behaves as :func:`get_task` does.
    """

    def deco(factory: Callable[..., Task]) -> Callable[..., Task]:
        @functools.wraps(factory)
        def make(*args: Any, **options: Any) -> Task:
            normal = _normalise_options(name, factory, options, skip_first=prefix)
            task = factory(*args, **normal)
            return dataclasses.replace(task, kwargs=tuple(normal.items()))

        TASKS.add(name, make, description=description, prefix=prefix)
        _TASK_CACHE.clear()
        return make

    return deco


def list_tasks() -> list[tuple[str, str]]:
    """(name, description) of every registered task, sorted by name."""
    out = []
    for name in TASKS.names():
        meta = TASKS.meta(name)
        out.append((f"{name}:PATH" if meta.get("prefix") else name, meta.get("description", "")))
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
        raise AutoDLError(
            f"unknown task {name!r}; choose one of: {', '.join(n for n, _ in list_tasks())}"
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
        raise AutoDLError(f"task {base!r} needs an argument: write {base}:PATH")
    if sep and not prefixed:
        raise AutoDLError(f"task {base!r} takes no ':' argument; write just {base!r}")
    task = factory(arg, **kwargs) if prefixed else factory(**kwargs)
    if cache_key is not None:
        _TASK_CACHE[cache_key] = task
    return task


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
            f"task {name!r} has no option(s) {', '.join(unknown)}; its options: {known}"
        )
    out = {}
    for key, value in kwargs.items():
        default = defaults[key]
        if isinstance(value, str) and default is not None and not isinstance(default, str):
            value = _parse_scalar(name, key, value, type(default))
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


# MNIST-1D ----------------------------------------------------------------------------------

MNIST1D_VAL = 500


def cache_dir() -> Path:
    """Where generated data sets are kept: ``$AUTODLGYM_CACHE``, else
    ``$XDG_CACHE_HOME/autodlgym``, else ``~/.cache/autodlgym``."""
    env = os.environ.get("AUTODLGYM_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "autodlgym"


def _generate_mnist1d(shuffle: bool, seed: int) -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.shuffle_seq = shuffle
    args.seed = seed
    # make_dataset reseeds numpy's and random's global state: put them back afterwards
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {"x": data["x"], "y": data["y"], "x_test": data["x_test"], "y_test": data["y_test"]}


def _mnist1d_arrays(shuffle: bool, seed: int) -> dict[str, np.ndarray]:
    try:
        from importlib.metadata import version

        pkg_version = version("mnist1d")
    except Exception:  # noqa: BLE001 - the version only names the cache file
        pkg_version = "unknown"
    path = cache_dir() / f"mnist1d-{pkg_version}-shuffle{int(shuffle)}-seed{seed}.npz"
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in ("x", "y", "x_test", "y_test")}
    except (OSError, KeyError, ValueError):
        pass  # no or unreadable cache: generate
    arrays = _generate_mnist1d(shuffle, seed)
    try:  # write atomically so concurrent workers never read half a file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs time
    return arrays


def _mnist1d_task(name: str, shuffle: bool, seed: int, desc: str) -> Task:
    def loader() -> TaskData:
        a = _mnist1d_arrays(shuffle, seed)
        x, y = a["x"][:, None, :], a["y"]
        n_train = len(y) - MNIST1D_VAL
        return TaskData(
            x[:n_train], y[:n_train], x[n_train:], y[n_train:], a["x_test"][:, None, :], a["y_test"]
        )

    return Task(
        name, (), IOSpec("sequence", (1, 40), 10), "cross_entropy", "accuracy", desc, loader
    )


_MNIST1D_DESC = "MNIST-1D: 3500/500/1000 sequences of length 40, 10 classes (generated offline)"
_SHUFFLED_DESC = "MNIST-1D with one fixed permutation of positions (no spatial structure)"


@register_task("mnist1d", description=_MNIST1D_DESC)
def mnist1d(seed: int = 42) -> Task:
    """MNIST-1D; ``seed`` is the generator's seed (42 is the published data set)."""
    return _mnist1d_task("mnist1d", False, seed, _MNIST1D_DESC)


@register_task("mnist1d_shuffled", description=_SHUFFLED_DESC)
def mnist1d_shuffled(seed: int = 42) -> Task:
    """MNIST-1D with its sequence positions permuted once (the same permutation everywhere)."""
    return _mnist1d_task("mnist1d_shuffled", True, seed, _SHUFFLED_DESC)


# digits ------------------------------------------------------------------------------------

_DIGITS_DESC = "scikit-learn 8x8 handwritten digits: 1257/180/360 images, 10 classes"


@register_task("digits", description=_DIGITS_DESC)
def digits() -> Task:
    """scikit-learn's digits as 1x8x8 images, standardised with train statistics; a fixed
    stratified 70/10/20 split."""

    def loader() -> TaskData:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        d = load_digits()
        x = d.images.astype(np.float32)[:, None]
        y = d.target.astype(np.int64)
        x_rest, x_test, y_rest, y_test = train_test_split(
            x, y, test_size=360, stratify=y, random_state=0
        )
        x_train, x_val, y_train, y_val = train_test_split(
            x_rest, y_rest, test_size=180, stratify=y_rest, random_state=0
        )
        mean, std = x_train.mean(), x_train.std()
        return TaskData(
            (x_train - mean) / std,
            y_train,
            (x_val - mean) / std,
            y_val,
            (x_test - mean) / std,
            y_test,
        )

    return Task(
        "digits",
        (),
        IOSpec("image", (1, 8, 8), 10),
        "cross_entropy",
        "accuracy",
        _DIGITS_DESC,
        loader,
    )


# adding problem ----------------------------------------------------------------------------

_ADDING_DESC = "adding problem: sum the two marked values of a (value, marker) sequence (R^2)"


@register_task("adding", description=_ADDING_DESC)
def adding(length: int = 50, n: int = 10000, seed: int = 0) -> Task:
    """The adding problem: ``n`` sequences of ``length`` steps with two channels, values
    U[0, 1] and a marker that is 1 at one position in the first half and one in the second
    half. The target is the sum of the two marked values; 80/10/10 split.
    """
    if not isinstance(length, int) or length < 2:
        raise AutoDLError(f"adding task needs length >= 2, got {length!r}")
    if not isinstance(n, int) or n < 10:
        raise AutoDLError(f"adding task needs n >= 10 samples, got {n!r}")

    def loader() -> TaskData:
        rng = np.random.default_rng(seed)
        values = rng.random((n, length), dtype=np.float32)
        half = length // 2
        first = rng.integers(0, half, size=n)
        second = rng.integers(half, length, size=n)
        markers = np.zeros((n, length), dtype=np.float32)
        rows = np.arange(n)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        x = np.stack([values, markers], axis=1)
        y = (values[rows, first] + values[rows, second])[:, None]
        n_val = n_test = max(1, n // 10)
        n_train = n - n_val - n_test
        return TaskData(
            x[:n_train],
            y[:n_train],
            x[n_train : n_train + n_val],
            y[n_train : n_train + n_val],
            x[n_train + n_val :],
            y[n_train + n_val :],
        )

    return Task("adding", (), IOSpec("sequence", (2, length), 1), "mse", "r2", _ADDING_DESC, loader)


# user arrays -------------------------------------------------------------------------------

_NPZ_DESC = "your own arrays: an .npz with x_train, y_train, x_test, y_test (optional x_val, y_val)"
_NPZ_REQUIRED = ("x_train", "y_train", "x_test", "y_test")
_NDIM_MODALITY = {2: "vector", 3: "sequence", 4: "image"}


@register_task("npz", description=_NPZ_DESC, prefix=True)
def npz_task(path: str, val_fraction: float = 0.1) -> Task:
    """A task from an .npz file.

    Keys: ``x_train``, ``y_train``, ``x_test``, ``y_test``; optional ``x_val``/``y_val`` (else
    the last ``val_fraction`` of a fixed permutation of the train set is held out) and an
    optional string ``modality`` (else inferred from the number of dimensions of x: 2 vector,
    3 sequence (N, C, L), 4 image (N, C, H, W)). Integer labels make a classification task
    (classes 0..K-1), float targets a regression task.
    """
    p = Path(path).expanduser().resolve()
    fix = "give an .npz file with x_train, y_train, x_test, y_test (optional x_val, y_val)"
    if not p.is_file():
        raise AutoDLError(f"npz task file {str(p)!r} does not exist; {fix}")
    if not 0.0 < val_fraction < 1.0:
        raise AutoDLError(f"npz task val_fraction must lie in (0, 1), got {val_fraction!r}")
    try:
        with np.load(p, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as exc:  # noqa: BLE001 - any reader error is a user error here
        raise AutoDLError(
            f"npz task file {str(p)!r} cannot be read ({type(exc).__name__}); {fix}"
        ) from None
    missing = [k for k in _NPZ_REQUIRED if k not in arrays]
    if missing or (("x_val" in arrays) != ("y_val" in arrays)):
        missing += [
            k
            for k in ("x_val", "y_val")
            if k not in arrays and ("x_val" in arrays or "y_val" in arrays)
        ]
        raise AutoDLError(f"npz task file {str(p)!r} lacks {', '.join(missing)}; {fix}")
    x_train = arrays["x_train"]
    modality = str(arrays["modality"]) if "modality" in arrays else _NDIM_MODALITY.get(x_train.ndim)
    if modality is None:
        raise AutoDLError(
            f"npz task x_train has {x_train.ndim} dimensions; use 2 (N, F), 3 (N, C, L) or 4 (N, C, H, W)"
        )
    splits = ("train", "val", "test") if "x_val" in arrays else ("train", "test")
    for s in splits:
        x, y = arrays[f"x_{s}"], arrays[f"y_{s}"]
        if modality == "sequence" and x.ndim == 2:
            x = arrays[f"x_{s}"] = x[:, None, :]  # a plain (N, L) signal has one channel
        if len(x) != len(y) or len(x) == 0:
            raise AutoDLError(
                f"npz task x_{s} and y_{s} must have the same positive length, got {len(x)} and {len(y)}"
            )
        if x.shape[1:] != x_train.shape[1:] and s != "train" and x_train.ndim == x.ndim:
            raise AutoDLError(
                f"npz task x_{s} has example shape {x.shape[1:]}, x_train {x_train.shape[1:]}"
            )
        if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
            raise AutoDLError(f"npz task x_{s} and y_{s} must be numeric arrays")
    x_train = arrays["x_train"]
    y_all = [arrays[f"y_{s}"] for s in splits]
    classify = all(np.issubdtype(y.dtype, np.integer) or y.dtype == bool for y in y_all)
    if classify:
        if any(y.ndim != 1 for y in y_all):
            raise AutoDLError("npz task integer labels must be 1-D arrays of class indices")
        n_out = int(max(int(y.max()) for y in y_all)) + 1
    else:
        n_out = 1 if arrays["y_train"].ndim == 1 else int(np.prod(arrays["y_train"].shape[1:]))
    try:
        io = IOSpec(modality, tuple(x_train.shape[1:]), n_out)
    except AutoDLError as exc:
        raise AutoDLError(f"npz task {str(p)!r}: {exc}") from None

    def loader() -> TaskData:
        if "x_val" in arrays:
            x_tr, y_tr = arrays["x_train"], arrays["y_train"]
            x_va, y_va = arrays["x_val"], arrays["y_val"]
        else:
            n = len(arrays["y_train"])
            n_val = max(1, int(round(n * val_fraction)))
            if n_val >= n:
                raise AutoDLError(
                    f"npz task has {n} train examples; too few to hold out a validation set"
                )
            perm = np.random.default_rng(0).permutation(n)
            tr, va = perm[: n - n_val], perm[n - n_val :]
            x_tr, y_tr = arrays["x_train"][tr], arrays["y_train"][tr]
            x_va, y_va = arrays["x_train"][va], arrays["y_train"][va]
        return TaskData(x_tr, y_tr, x_va, y_va, arrays["x_test"], arrays["y_test"])

    loss, metric = ("cross_entropy", "accuracy") if classify else ("mse", "r2")
    return Task(f"npz:{p}", (), io, loss, metric, _NPZ_DESC, loader)
