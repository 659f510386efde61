"""Tasks: every registered task loads consistently, deterministically and without touching
global random state; npz tasks round-trip; bad inputs give one-line AutoDLErrors."""

from __future__ import annotations

import json
import pickle
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autodlgym.errors import AutoDLError
from autodlgym.searchspace.io import IOSpec
from autodlgym.tasks import Task, TaskData, get_task, list_tasks, register_task
from autodlgym.tasks import base as tasks_mod

# the tasks with arrays (graph tasks hold graphs: tests/tasks/test_graphs.py)
BUILTIN = [
    name
    for name, _ in list_tasks(tabular=False)
    if ":" not in name and not get_task(name).io.is_graph
]


def _small(name: str) -> Task:
    return get_task(name, n=200) if name == "adding" else get_task(name)


def test_builtins_are_listed():
    assert {"mnist1d", "mnist1d_shuffled", "digits", "adding", "npz:PATH"} <= {
        n for n, _ in list_tasks()
    }
    assert all(desc for _, desc in list_tasks())


@pytest.mark.parametrize("name", BUILTIN)
def test_task_data_matches_its_io(name):
    task = _small(name)
    data = task.load()
    assert isinstance(data, TaskData)
    for split in ("train", "val", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        assert x.dtype == np.float32 and x.shape[1:] == task.io.shape and len(x) == len(y) > 0
        assert np.isfinite(x).all()
        if task.loss == "cross_entropy":
            assert task.metric == "accuracy"
            assert y.dtype == np.int64 and y.ndim == 1
            assert 0 <= y.min() and y.max() < task.io.n_outputs
        else:
            assert task.metric == "r2"
            assert y.dtype == np.float32 and y.shape == (len(x), task.io.n_outputs)
    assert task.load() is data  # cached in-process


@pytest.mark.parametrize("name", BUILTIN)
def test_generation_is_deterministic(name):
    a = _small(name).load()
    tasks_mod._DATA_CACHE.clear()
    b = _small(name).load()
    assert a is not b
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_mnist1d_sizes_and_shapes():
    task = get_task("mnist1d")
    assert task.io == IOSpec("sequence", (1, 40), 10)
    assert task.load().sizes() == (3500, 500, 1000)
    assert get_task() == task  # the default task


def test_mnist1d_generation_is_deterministic_isolated_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTODLGYM_CACHE", str(tmp_path / "a"))  # empty cache: really generate
    np.random.seed(123)
    random.seed(123)
    np_before, py_before = np.random.get_state(), random.getstate()
    fresh = get_task("mnist1d", seed=7).load()
    np_after, py_after = np.random.get_state(), random.getstate()
    assert py_before == py_after
    assert all(np.array_equal(a, b) for a, b in zip(np_before, np_after))
    assert list((tmp_path / "a").glob("mnist1d-*seed7.npz"))

    tasks_mod._DATA_CACHE.clear()
    from_disk = get_task("mnist1d", seed=7).load()
    tasks_mod._DATA_CACHE.clear()
    monkeypatch.setenv("AUTODLGYM_CACHE", str(tmp_path / "b"))
    regenerated = get_task("mnist1d", seed=7).load()
    for other in (from_disk, regenerated):
        np.testing.assert_array_equal(fresh.x_train, other.x_train)
        np.testing.assert_array_equal(fresh.y_test, other.y_test)


def test_shuffled_mnist1d_permutes_positions_only():
    plain, shuffled = get_task("mnist1d").load(), get_task("mnist1d_shuffled").load()
    np.testing.assert_array_equal(plain.y_train, shuffled.y_train)
    assert not np.allclose(plain.x_train, shuffled.x_train)
    # one permutation of the 40 positions for every example
    perm = [
        int(np.argmin(np.abs(plain.x_train[:50, 0, :] - shuffled.x_train[:50, 0, [j]]).sum(0)))
        for j in range(40)
    ]
    assert sorted(perm) == list(range(40))
    np.testing.assert_allclose(plain.x_test[:, :, perm], shuffled.x_test, atol=1e-5)


def test_adding_targets_are_the_sum_of_marked_values():
    task = get_task("adding", length=20, n=100)
    assert task.io == IOSpec("sequence", (2, 20), 1) and task.loss == "mse"
    d = task.load()
    x = np.concatenate([d.x_train, d.x_val, d.x_test])
    y = np.concatenate([d.y_train, d.y_val, d.y_test])[:, 0]
    assert (x[:, 1].sum(1) == 2).all()
    assert (x[:, 1, :10].sum(1) == 1).all()  # one marker in each half
    np.testing.assert_allclose((x[:, 0] * x[:, 1]).sum(1), y, rtol=1e-6)


@settings(max_examples=20, deadline=None)
@given(length=st.integers(2, 300), n=st.integers(10, 5000), seed=st.integers(0, 2**31))
def test_task_key_round_trips(length, n, seed):
    task = get_task("adding", length=length, n=n, seed=seed)
    again = Task.from_key(json.loads(json.dumps(task.key)))
    assert again == task and again.key == task.key
    assert get_task(task.name, **dict(task.kwargs)) == task


def test_tasks_pickle_by_name_and_options():
    task = get_task("adding", length=30, n=50)
    again = pickle.loads(pickle.dumps(task))
    assert again == task
    np.testing.assert_array_equal(again.load().x_test, task.load().x_test)


def test_default_options_are_dropped_and_strings_converted():
    assert get_task("adding", length=50).key == "adding" == get_task("adding").key
    assert get_task("adding", length="100") == get_task("adding", length=100)
    assert dict(get_task("adding", length=100).kwargs) == {"length": 100}


def _write_npz(path, n=60, classes=3, **extra):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.normal(size=(n, 5)).astype(np.float64),
        "y_train": rng.integers(0, classes, n),
        "x_test": rng.normal(size=(20, 5)),
        "y_test": rng.integers(0, classes, 20),
        **extra,
    }
    np.savez(path, **arrays)
    return arrays


def test_npz_classification_round_trip(tmp_path):
    path = tmp_path / "mine.npz"
    arrays = _write_npz(path)
    task = get_task(f"npz:{path}")
    assert task.io == IOSpec("vector", (5,), 3) and task.loss == "cross_entropy"
    assert Task.from_key(task.key) == task
    d = task.load()
    assert d.sizes() == (54, 6, 20)
    # standardised per feature with the statistics of the training split only
    mean, std = d.x_train.mean(axis=0), d.x_train.std(axis=0)
    np.testing.assert_allclose(mean, 0, atol=1e-5)
    np.testing.assert_allclose(std, 1, atol=1e-4)
    pre = task.preprocessing
    raw_mean, raw_std = np.asarray(pre["mean"]), np.asarray(pre["std"])
    np.testing.assert_allclose(d.x_test, (arrays["x_test"] - raw_mean) / raw_std, rtol=1e-5)
    # the validation split is held out of train, and together they are the file's train set
    raw = np.concatenate([d.x_train, d.x_val]) * raw_std + raw_mean
    rows = {tuple(np.round(r, 4)) for r in raw}
    assert rows == {tuple(np.round(r, 4)) for r in arrays["x_train"]}
    # ... and the validation rows did not enter the statistics
    assert not np.allclose(raw_mean, arrays["x_train"].mean(axis=0))


def test_npz_without_standardisation_keeps_the_arrays(tmp_path):
    path = tmp_path / "mine.npz"
    arrays = _write_npz(path)
    d = get_task(f"npz:{path}", standardize=False).load()
    np.testing.assert_allclose(d.x_test, arrays["x_test"].astype(np.float32))


def test_npz_regression_with_explicit_val_and_modality(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "reg.npz"
    np.savez(
        path,
        x_train=rng.normal(size=(30, 16)),
        y_train=rng.normal(size=30),
        x_val=rng.normal(size=(5, 16)),
        y_val=rng.normal(size=5),
        x_test=rng.normal(size=(7, 16)),
        y_test=rng.normal(size=7),
        modality="sequence",
    )
    task = get_task(f"npz:{path}")
    assert task.io == IOSpec("sequence", (1, 16), 1) and task.loss == "mse" and task.metric == "r2"
    d = task.load()
    assert d.sizes() == (30, 5, 7) and d.y_val.shape == (5, 1)


@pytest.mark.parametrize(
    "make_call",
    [
        lambda tmp: get_task("no_such_task"),
        lambda tmp: get_task("adding", no_such_option=1),
        lambda tmp: get_task("adding", length="long"),
        lambda tmp: get_task("adding", length=1),
        lambda tmp: get_task("npz"),
        lambda tmp: get_task("digits:extra"),
        lambda tmp: get_task(f"npz:{tmp / 'missing.npz'}"),
        lambda tmp: get_task(f"npz:{_bad_keys(tmp)}"),
        lambda tmp: get_task(f"npz:{_not_npz(tmp)}"),
        lambda tmp: Task.from_key("{not json"),
    ],
)
def test_bad_inputs_raise_one_line_errors(tmp_path, make_call):
    with pytest.raises(AutoDLError) as info:
        make_call(tmp_path)
    assert "\n" not in str(info.value) and str(info.value)


def _bad_keys(tmp):
    path = tmp / "bad.npz"
    np.savez(path, x_train=np.zeros((4, 2)), y_train=np.zeros(4, dtype=int), x_val=np.zeros((2, 2)))
    return path


def _not_npz(tmp):
    path = tmp / "text.npz"
    path.write_text("hello")
    return path


def test_register_task_adds_a_user_task():
    @register_task("tiny_test_task", description="four points")
    def tiny(scale: float = 1.0) -> Task:
        def loader() -> TaskData:
            x = np.arange(8, dtype=np.float32).reshape(4, 2) * scale
            y = np.array([0, 1, 0, 1])
            return TaskData(x, y, x, y, x, y)

        return Task(
            "tiny_test_task",
            (),
            IOSpec("vector", (2,), 2),
            "cross_entropy",
            "accuracy",
            "four points",
            loader,
        )

    try:
        assert ("tiny_test_task", "four points") in list_tasks()
        task = get_task("tiny_test_task", scale=2)
        assert dict(task.kwargs) == {"scale": 2.0}
        assert task.load().x_train[-1, -1] == 14.0
        assert get_task("tiny_test_task").load().x_train[-1, -1] == 7.0  # cached per options
    finally:
        tasks_mod.TASKS.remove("tiny_test_task")
