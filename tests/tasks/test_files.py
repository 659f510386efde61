"""Tasks on a user's own data: tables (CSV / Parquet), image folders, arrays and Datasets.

Each is checked against a direct computation: the encoded rows against the raw file, the
normalisation statistics against the training rows alone, the splits against their sizes and
class proportions; bad files and columns give one-line errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from data_fixtures import mixed_frame, write_images

from autodlgym.errors import AutoDLError
from autodlgym.searchspace.io import IOSpec
from autodlgym.tasks import from_arrays, from_dataset, get_task
from autodlgym.tasks import preprocessing as pp
from autodlgym.tasks.files import make_splits


@pytest.fixture
def table(tmp_path):
    df = mixed_frame()
    path = tmp_path / "mixed.csv"
    df.to_csv(path, index=False)
    return path, df


def _all_rows(data) -> np.ndarray:
    return np.concatenate([data.x_train, data.x_val, data.x_test])


def test_csv_classification_with_mixed_columns_and_missing_values(table):
    path, df = table
    task = get_task(f"csv:{path}", target="label")
    pre = task.preprocessing
    assert task.loss == "cross_entropy" and task.metric == "accuracy"
    assert pre["labels"] == ["no", "yes"] and pre["problem"] == "classification"
    kinds = {c["name"]: c["kind"] for c in pre["columns"]}
    assert kinds == {
        "x1": "numeric", "x2": "numeric", "colour": "categorical", "count": "numeric",
        "flag": "categorical",
    }  # fmt: skip
    by_name = {c["name"]: c for c in pre["columns"]}
    assert by_name["x2"]["indicator"] and not by_name["x1"]["indicator"]
    assert by_name["colour"]["categories"] == ["blue", "green", "red"]
    assert by_name["colour"]["missing_slot"] and by_name["flag"]["categories"] == ["False", "True"]
    # x1, x2 + indicator, colour x 4, count, flag x 2
    assert task.io == IOSpec("vector", (10,), 2)
    report = pre["report"]
    assert report["missing"]["x2"]["all"] == 15 and report["missing"]["colour"]["all"] == 8
    assert "x2 15" in task.description and "colour 8" in task.description
    d = task.load()
    assert d.sizes() == (210, 45, 45) and report["splits"] == {"train": 210, "val": 45, "test": 45}
    assert np.isfinite(_all_rows(d)).all()


def test_table_rows_are_the_files_rows_encoded_with_train_statistics(table):
    path, df = table
    task = get_task(f"csv:{path}", target="label")
    pre, d = task.preprocessing, task.load()
    encoded = pp.encode_table(pre, pp.read_csv(path))
    # the splits partition the file's rows: same multiset of encoded rows
    key = lambda rows: sorted(map(tuple, np.round(rows, 6)))  # noqa: E731
    assert key(_all_rows(d)) == key(encoded)
    # statistics from the training rows only: recover them from the train split directly
    x2 = next(c for c in pre["columns"] if c["name"] == "x2")
    col = 1  # feature 0 is x1 (no indicator), then x2 and its indicator
    present = d.x_train[:, col + 1] == 0  # the indicator feature follows x2
    raw_train = d.x_train[present, col].astype(np.float64) * x2["std"] + x2["mean"]
    assert raw_train.mean() == pytest.approx(x2["mean"], abs=1e-5)
    assert raw_train.std() == pytest.approx(x2["std"], rel=1e-5)
    assert x2["mean"] != pytest.approx(df["x2"].mean(), abs=1e-4)  # not the whole file's
    # a missing x2 is imputed with the train mean (0 once standardised) and flagged
    assert (d.x_train[~present, col] == 0).all() and (~present).sum() > 0


def test_splits_are_stratified_and_reproducible(table):
    path, df = table
    a = get_task(f"csv:{path}", target="label").load()
    b = get_task(f"csv:{path}", target="label", seed=1).load()
    share = (df["label"] == "yes").mean()
    for split in ("train", "val", "test"):
        y = getattr(a, f"y_{split}")
        assert abs(y.mean() - share) < 1.5 / len(y) + 1e-9  # stratified: within one example
    assert not np.array_equal(a.x_val, b.x_val)


def test_parquet_gives_the_csv_arrays(table, tmp_path):
    path, df = table
    pq = tmp_path / "mixed.parquet"
    df.to_parquet(pq)
    a = get_task(f"csv:{path}", target="label").load()
    b = get_task(f"parquet:{pq}", target="label").load()
    for name in ("x_train", "y_train", "x_val", "x_test", "y_test"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-6)


def test_regression_target_is_standardised_on_train_and_decoded_back(table):
    path, df = table
    task = get_task(f"csv:{path}", target="x1", drop="label")
    pre, d = task.preprocessing, task.load()
    assert task.loss == "mse" and task.io.n_outputs == 1 and pre["problem"] == "regression"
    assert "label" not in {c["name"] for c in pre["columns"]}
    assert d.y_train.mean() == pytest.approx(0, abs=1e-5)
    assert d.y_train.std() == pytest.approx(1, abs=1e-4)
    decoded = np.array(pp.decode(pre, d.y_test), dtype=np.float64)
    assert set(np.round(decoded, 4)) <= set(np.round(df["x1"].to_numpy(), 4))


def test_integer_targets_are_classes_and_forced_options_apply(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"a": rng.normal(size=120), "code": rng.integers(0, 3, 120), "y": rng.integers(1, 4, 120)}
    )
    df.loc[0, "code"] = 10
    path = tmp_path / "ints.csv"
    df.to_csv(path, index=False)
    task = get_task(f"csv:{path}", target="y", categorical="code")
    assert task.is_classification and task.preprocessing["labels"] == ["1", "2", "3"]
    code = next(c for c in task.preprocessing["columns"] if c["name"] == "code")
    assert code["kind"] == "categorical" and set(code["categories"]) <= {"0", "1", "2", "10"}
    assert get_task(f"csv:{path}", target="y", kind="regression").loss == "mse"


def test_a_split_column_gives_the_splits(tmp_path):
    df = mixed_frame(120)
    df["part"] = ["train"] * 80 + ["valid"] * 20 + ["test"] * 20
    path = tmp_path / "split.csv"
    df.to_csv(path, index=False)
    task = get_task(f"csv:{path}", target="label", split_column="part")
    assert task.load().sizes() == (80, 20, 20)
    assert "part" not in {c["name"] for c in task.preprocessing["columns"]}
    assert task.preprocessing["report"]["split"] == "splits given"


def test_unseen_categories_encode_as_zeros():
    pre = {
        "columns": [
            {"name": "c", "kind": "categorical", "categories": ["a", "b"], "missing_slot": True},
            {"name": "n", "kind": "numeric", "mean": 1.0, "std": 2.0, "indicator": True},
        ]
    }
    x = pp.encode_table(pre, {"c": ["a", "zzz", ""], "n": ["3", "NA", "1"], "other": [1, 2, 3]})
    np.testing.assert_array_equal(x, [[1, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 1, 0, 0]])
    with pytest.raises(pp.InputError, match="not a number"):
        pp.encode_table(pre, {"c": ["a"], "n": ["three"]})
    with pytest.raises(pp.InputError, match="no column 'n'"):
        pp.encode_table(pre, {"c": ["a"]})


def _ragged(tmp):
    p = tmp / "ragged.csv"
    p.write_text("a,b,y\n1,2,x\n3,y\n")
    return p


def _one_class(tmp):
    p = tmp / "one.csv"
    p.write_text("a,y\n1,x\n2,x\n3,x\n4,x\n")
    return p


def _binary(tmp):
    p = tmp / "bin.csv"
    p.write_bytes(b"\xff\xfe\x00\x01garbage")
    return p


@pytest.mark.parametrize(
    "make_call, words",
    [
        (lambda t, csv: get_task(f"csv:{csv}"), "target=COLUMN"),
        (lambda t, csv: get_task(f"csv:{csv}", target="lable"), "did you mean 'label'"),
        (lambda t, csv: get_task(f"csv:{csv}", target="label", drop="nope"), "no column 'nope'"),
        (lambda t, csv: get_task(f"csv:{csv}", target="label", kind="other"), "kind"),
        (lambda t, csv: get_task(f"csv:{csv}", target="colour", kind="regression"), "text"),
        (lambda t, csv: get_task(f"csv:{csv}", target="label", split_column="x1"), "x1"),
        (lambda t, csv: get_task(f"csv:{t / 'missing.csv'}", target="y"), "does not exist"),
        (lambda t, csv: get_task(f"csv:{_ragged(t)}", target="y"), "line 3"),
        (lambda t, csv: get_task(f"csv:{_one_class(t)}", target="y"), "single class"),
        (lambda t, csv: get_task(f"parquet:{_binary(t)}", target="y"), "cannot be read"),
        (lambda t, csv: get_task(f"csv:{csv}", target="label", val_fraction=0.9), "below 1"),
        (lambda t, csv: get_task(f"images:{t / 'none'}"), "does not exist"),
        (lambda t, csv: get_task(f"images:{csv}"), "is a file"),
    ],
)
def test_bad_files_and_columns_give_one_line_errors(tmp_path, table, make_call, words):
    with pytest.raises(AutoDLError) as info:
        make_call(tmp_path, table[0])
    assert "\n" not in str(info.value) and words in str(info.value)


# image folders ----------------------------------------------------------------------------
def test_image_folder_task_resizes_and_standardises_on_train(tmp_path):
    labels = write_images(tmp_path / "imgs")
    task = get_task(f"images:{tmp_path / 'imgs'}", size=8)
    pre, d = task.preprocessing, task.load()
    assert task.io == IOSpec("image", (3, 8, 8), 3) and pre["labels"] == labels
    assert pre["mode"] == "RGB" and d.sizes() == (26, 5, 5)
    np.testing.assert_allclose(d.x_train.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(d.x_train.std(axis=(0, 2, 3)), 1, atol=1e-4)
    # the red class is red: its red channel is above the others on average
    red = d.x_train[d.y_train == labels.index("red")]
    assert red[:, 0].mean() > red[:, 1].mean() + 0.5
    # one file through the standalone preprocessing gives the task's row for it
    one = pp.standardise(pre, pp.load_image(tmp_path / "imgs/red/0.png", "RGB", (8, 8))[None])
    assert any(np.allclose(one[0], row, atol=1e-6) for row in _all_rows(d))


def test_gray_images_and_given_split_folders(tmp_path):
    write_images(tmp_path / "data" / "train", gray=True)
    write_images(tmp_path / "data" / "test", n_per_class=3, seed=1, gray=True)
    task = get_task(f"images:{tmp_path / 'data'}", size=6)
    assert task.io.shape == (1, 6, 6) and task.preprocessing["mode"] == "L"
    assert task.load().sizes() == (31, 5, 9)
    assert get_task(f"images:{tmp_path / 'data'}", size=6, mode="rgb").io.shape == (3, 6, 6)


def test_an_unreadable_image_is_a_one_line_error(tmp_path):
    write_images(tmp_path / "imgs", n_per_class=3)
    (tmp_path / "imgs" / "blue" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(AutoDLError) as info:
        get_task(f"images:{tmp_path / 'imgs'}")
    assert "broken.png" in str(info.value) and "\n" not in str(info.value)


# arrays and datasets ----------------------------------------------------------------------
def test_from_arrays_makes_a_named_task_that_workers_can_remake(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTODLGYM_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 2, 12)).astype(np.float32)
    y = rng.integers(0, 2, 80)
    task = from_arrays(x, y, label_names=["neg", "pos"], seed=3)
    assert task.name.startswith("npz:") and str(tmp_path / "cache") in task.name
    assert task.io == IOSpec("sequence", (2, 12), 2)
    assert task.preprocessing["labels"] == ["neg", "pos"]
    again = get_task(task.name, **dict(task.kwargs))
    for field in ("x_train", "y_test"):
        np.testing.assert_array_equal(getattr(task.load(), field), getattr(again.load(), field))
    assert from_arrays(x, y, label_names=["neg", "pos"], seed=3).name == task.name  # same hash
    # per-channel statistics of the train split
    np.testing.assert_allclose(task.load().x_train.mean(axis=(0, 2)), 0, atol=1e-5)
    assert len(task.preprocessing["mean"]) == 2


def test_from_dataset_reads_a_torch_dataset(tmp_path):
    import torch
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 1, 6, 6, generator=g)
    y = x.mean(dim=(1, 2, 3))  # a regression target
    test = TensorDataset(x[:10], y[:10])
    task = from_dataset(TensorDataset(x[10:], y[10:]), test=test, path=tmp_path / "ds.npz")
    assert task.io == IOSpec("image", (1, 6, 6), 1) and task.loss == "mse"
    d = task.load()
    assert d.sizes() == (45, 5, 10)
    pre = task.preprocessing
    back = np.array(pp.decode(pre, d.y_test), dtype=np.float64)
    np.testing.assert_allclose(back, y[:10].numpy(), atol=1e-4)
    with pytest.raises(AutoDLError, match="pairs"):
        from_dataset([1, 2, 3])


def test_make_splits_draws_missing_splits_from_train_only():
    labels = np.array([0] * 50 + [1] * 50)
    splits, note = make_splits(
        {"train": np.arange(80), "test": np.arange(80, 100)}, labels, 0.25, 0.5, seed=0
    )
    assert len(splits["val"]) == 20 and len(splits["train"]) == 60
    assert set(splits["test"]) == set(range(80, 100)) and "val drawn" in note
    assert set(splits["val"]) <= set(range(80))
