"""The built-in data sets: MNIST-1D (and its shuffled variant), digits, adding.

Each is one :func:`~autodlgym.tasks.base.register_task` factory; importing this module
registers them, and the tasks on a user's own data of :mod:`autodlgym.tasks.files` (the task
registry imports it on first use).
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np

from autodlgym.errors import AutoDLError
from autodlgym.searchspace.constraints import Constraints
from autodlgym.searchspace.io import IOSpec
from autodlgym.tasks.base import Task, TaskData, register_task

# Default budgets: candidates a CPU thread trains in seconds per epoch. The default space is
# sized for accelerators (its median MNIST-1D candidate has ~400k parameters and ~7 MFLOPs;
# about 30% of its samples fit these limits); under these limits the MNIST-1D paper's CNN
# (~0.9 MFLOPs) fits with room to spare, while a candidate's epoch costs at most
# 3 x 5 MFLOPs x 3500 examples. The adding problem has 8000 training
# sequences per epoch, so its FLOPs limit is lower. ``npz`` tasks have none: their size is the
# user's to judge (give --max-params / --max-flops).
SMALL_BUDGET = Constraints(max_params=100_000, max_flops=5_000_000)
ADDING_BUDGET = Constraints(max_params=100_000, max_flops=2_000_000)

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
        name,
        (),
        IOSpec("sequence", (1, 40), 10),
        "cross_entropy",
        "accuracy",
        desc,
        loader,
        budget=SMALL_BUDGET,
    )


_MNIST1D_DESC = "MNIST-1D: 3500/500/1000 sequences of length 40, 10 classes (generated offline)"
_SHUFFLED_DESC = "MNIST-1D with one fixed permutation of positions (no spatial structure)"


@register_task("mnist1d", description=_MNIST1D_DESC, env_name="MNIST1D")
def mnist1d(seed: int = 42) -> Task:
    """MNIST-1D; ``seed`` is the generator's seed (42 is the published data set)."""
    return _mnist1d_task("mnist1d", False, seed, _MNIST1D_DESC)


@register_task("mnist1d_shuffled", description=_SHUFFLED_DESC, env_name="MNIST1DShuffled")
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
        budget=SMALL_BUDGET,
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

    io = IOSpec("sequence", (2, length), 1)
    return Task("adding", (), io, "mse", "r2", _ADDING_DESC, loader, budget=ADDING_BUDGET)


# the tabular benchmarks and the user-data tasks (npz, csv, parquet, images) register
# alongside the data sets (the registry imports this module)
from autodlgym.tasks import files as _files  # noqa: E402, F401
from autodlgym.tasks import graphs as _graphs  # noqa: E402, F401
from autodlgym.tasks import tabular as _tabular  # noqa: E402, F401
