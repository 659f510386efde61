"""Tasks from a user's own data: tables, image folders, arrays, torch Datasets.

- ``csv:PATH`` / ``parquet:PATH`` (:func:`csv_task`): a table with a ``target`` column.
- ``images:DIR`` (:func:`images_task`): one folder of images per class.
- ``npz:PATH`` (:func:`npz_task`): arrays in an ``.npz`` file.
- :func:`from_arrays` / :func:`from_dataset`: data already in Python, kept as an ``.npz`` so
  that Ray workers and ``--resume`` can load it again by name.

Every one of them states its train / validation / test split (given, or made from a seed and
stratified by class for classification), computes normalisation statistics on the training
split only, and keeps them in ``Task.preprocessing`` (see
:mod:`autodlgym.tasks.preprocessing`, whose functions turn both the training data and, after
``autodlgym export``, new data into model inputs). A file or column that cannot be used raises
a one-line :class:`~autodlgym.errors.AutoDLError`.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import tempfile
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autodlgym.errors import AutoDLError
from autodlgym.searchspace.io import IOSpec
from autodlgym.tasks import preprocessing as pp
from autodlgym.tasks.base import Task, TaskData, get_task, register_task

#: an integer target with at most this many distinct values is a class label (``kind=auto``)
MAX_INTEGER_CLASSES = 20
SPLITS = ("train", "val", "test")
#: names a split column (or a split folder of ``images:DIR``) may use for each split
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
_NDIM_MODALITY = {2: "vector", 3: "sequence", 4: "image"}
#: a drawn validation or test split smaller than this gets a warning: scores on it are noise
MIN_SPLIT_WARN = 20
#: a text column whose cells are numbers but for at most this share is flagged (numeric=)
JUNK_SHARE = 0.2
#: a column whose every value is distinct, over at least this many rows, looks like an id
ID_MIN_ROWS = 20


def fingerprint(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a data file's bytes, or of a folder's files (relative paths and bytes, in
    order; hidden files left out): what a run checks to know its data did not change."""
    p = Path(path)
    digest = hashlib.sha256()
    files = (
        sorted(f for f in p.rglob("*") if f.is_file() and not _hidden(f.relative_to(p)))
        if p.is_dir()
        else [p]
    )
    for f in files:
        if p.is_dir():
            digest.update(str(f.relative_to(p).as_posix()).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


# Splits -----------------------------------------------------------------------------------
def make_splits(
    given: dict[str, np.ndarray],
    labels: np.ndarray | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> tuple[dict[str, np.ndarray], str]:
    """Complete a train / validation / test split of example indices.

    Args:
        given: split name -> indices; ``"train"`` is required; a missing ``"test"``, then a
            missing ``"val"``, is drawn from the training indices.
        labels: class index per example (stratifies the drawn splits) or None (regression).
        val_fraction, test_fraction: sizes of drawn splits, as fractions of the given
            training examples (of all examples when no split is given).
        seed: seeds the draw (scikit-learn's own generator: no global state).

    Returns:
        ``(splits, note)``: sorted index arrays for the three splits and one line that says
        how they were made.

    Raises:
        AutoDLError: a split would be empty.
    """
    from sklearn.model_selection import train_test_split

    total = len(given["train"])
    splits = {k: np.sort(np.asarray(v, dtype=np.int64)) for k, v in given.items()}
    made, unstratified = [], False
    for name, fraction in (("test", test_fraction), ("val", val_fraction)):
        if name in splits:
            continue
        pool = splits["train"]
        k = max(1, int(round(total * fraction)))
        if k >= len(pool):
            raise AutoDLError(
                f"{len(pool)} training examples are too few to hold out a {name} split of {k}; "
                "give more data or smaller val_fraction / test_fraction"
            )
        strat = labels[pool] if labels is not None else None
        try:
            rest, held = train_test_split(pool, test_size=k, stratify=strat, random_state=seed)
        except ValueError:  # a class too small to stratify: draw without stratification
            rest, held = train_test_split(pool, test_size=k, random_state=seed)
            unstratified = labels is not None
        splits["train"], splits[name] = np.sort(rest), np.sort(held)
        made.append(name)
    for name in SPLITS:
        if len(splits[name]) == 0:
            raise AutoDLError(f"the {name} split is empty; give at least one {name} example")
    small = [k for k in ("val", "test") if k in made and len(splits[k]) < MIN_SPLIT_WARN]
    if small:
        warnings.warn(
            f"{sum(len(splits[k]) for k in SPLITS)} examples split "
            f"{'/'.join(str(len(splits[k])) for k in SPLITS)} (train/val/test): scores on "
            f"{' and '.join(f'{len(splits[k])} {k}' for k in small)} examples are mostly noise; "
            "give more data (or larger val_fraction / test_fraction)",
            UserWarning,
            stacklevel=2,
        )
    if not made:
        note = "splits given"
    else:
        how = "stratified by class" if labels is not None and not unstratified else "unstratified"
        note = f"{' and '.join(made)} drawn from train with seed {seed}, {how}"
    return {k: splits[k] for k in SPLITS}, note


def _sizes(splits: dict[str, np.ndarray]) -> str:
    return "/".join(str(len(splits[k])) for k in SPLITS)


def _closest(name: str, options: Sequence[str]) -> str:
    near = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def _names_option(task: str, option: str, text: str, columns: Sequence[str]) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        if n not in columns:
            raise AutoDLError(
                f"{task} option {option}={text!r}: there is no column {n!r}{_closest(n, columns)}"
            )
    return names


def _check_fractions(task: str, val_fraction: float, test_fraction: float) -> None:
    if not (0.0 < val_fraction < 1.0 and 0.0 < test_fraction < 1.0):
        raise AutoDLError(
            f"{task} val_fraction and test_fraction must lie in (0, 1), got {val_fraction!r} and "
            f"{test_fraction!r}"
        )
    if val_fraction + test_fraction >= 1.0:
        raise AutoDLError(f"{task} val_fraction + test_fraction must be below 1")


def _user_file(task: str, path: str, what: str, fix: str) -> Path:
    p = Path(path).expanduser().resolve()
    if not p.exists():
        raise AutoDLError(f"{task} {what} {str(p)!r} does not exist; {fix}")
    return p


# Tables -----------------------------------------------------------------------------------
def _value_kind(cells: Sequence[Any]) -> str:
    """``"empty"`` (all missing), ``"int"``, ``"float"`` or ``"category"``."""
    kind = "empty"
    for cell in cells:
        if pp.is_missing(cell):
            continue
        if isinstance(cell, bool) or not isinstance(cell, int | float | str):
            return "category"
        if isinstance(cell, str):
            try:
                int(cell)
                k = "int"
            except ValueError:
                try:
                    float(cell)
                    k = "float"
                except ValueError:
                    return "category"
        else:
            k = "int" if isinstance(cell, int) else "float"
        kind = "float" if "float" in (kind, k) else "int"
    return kind


def _label_key(cell: Any, integer: bool) -> str:
    if integer:
        return str(int(cell.strip() if isinstance(cell, str) else cell))
    return pp.category(cell)  # type: ignore[return-value]


def _is_junk(cell: Any) -> bool:
    """A cell that is there but is not a number (``?``, ``n.a.``, ``12 kg``)."""
    if pp.is_missing(cell) or isinstance(cell, bool):
        return False
    try:
        pp.to_number(cell)
    except (TypeError, ValueError):
        return True
    return False


def _junk(cells: Sequence[Any]) -> dict[str, int]:
    """Cells that are not numbers, by text, with their counts; {} when every one is."""
    return dict(Counter(str(c).strip() for c in cells if _is_junk(c)))


def _counts(counts: dict[str, int], limit: int = 3) -> str:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    more = f", {len(ranked) - limit} more" if len(ranked) > limit else ""
    return ", ".join(f"{k!r} x{n}" for k, n in ranked[:limit]) + more


def _cells(n: int) -> str:
    return f"{n} cell" + ("" if n == 1 else "s")


def _looks_like_id(cells: Sequence[Any], kind: str) -> bool:
    """Integers or text, every value distinct, over enough rows: a row identifier."""
    if kind not in ("int", "category") or len(cells) < ID_MIN_ROWS:
        return False
    values = [pp.category(c) for c in cells]
    return None not in values and len(set(values)) == len(values)


def _table_task(
    scheme: str,
    path: str,
    target: str,
    kind: str,
    categorical: str,
    drop: str,
    split_column: str,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    max_categories: int,
    numeric: str = "",
) -> Task:
    task = f"{scheme} task"
    p = _user_file(task, path, "file", f"give a {scheme} file as {scheme}:PATH")
    if not p.is_file():
        raise AutoDLError(f"{task} path {str(p)!r} is a directory; give a {scheme} file")
    _check_fractions(task, val_fraction, test_fraction)
    if kind not in ("auto", "classification", "regression"):
        raise AutoDLError(f"{task} kind={kind!r}: use auto, classification or regression")
    if max_categories < 1:
        raise AutoDLError(f"{task} max_categories must be positive, got {max_categories}")
    try:
        if scheme == "csv":
            columns = pp.read_csv(p)
        else:
            import pandas as pd

            columns = pp.frame_columns(pd.read_parquet(p))
    except pp.InputError as exc:
        raise AutoDLError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - any reader error is a user error here
        raise AutoDLError(
            f"{str(p)!r} cannot be read as {scheme} ({type(exc).__name__}); check the file"
        ) from None
    names = list(columns)
    if not target:
        raise AutoDLError(
            f"{task} needs the column to predict: --task-opt target=COLUMN (columns: {', '.join(names)})"
        )
    if target not in columns:
        raise AutoDLError(
            f"{str(p)!r} has no column {target!r}{_closest(target, names)}; columns: {', '.join(names)}"
        )
    dropped = set(_names_option(task, "drop", drop, names))
    forced = set(_names_option(task, "categorical", categorical, names))
    as_numbers = set(_names_option(task, "numeric", numeric, names))
    both = sorted(forced & as_numbers)
    if both:
        raise AutoDLError(f"{task} names {', '.join(both)} in both categorical= and numeric=")
    if split_column and split_column not in columns:
        raise AutoDLError(
            f"{task} split_column={split_column!r} is not a column{_closest(split_column, names)}"
        )

    # rows without a target cannot be trained or scored on
    target_cells = columns[target]
    keep = np.array([not pp.is_missing(c) for c in target_cells], dtype=bool)
    n_no_target = int((~keep).sum())
    if keep.sum() < 3:
        raise AutoDLError(
            f"{str(p)!r} has {int(keep.sum())} rows with a {target!r} value; give more"
        )
    rows = np.flatnonzero(keep)
    columns = {k: [v[i] for i in rows] for k, v in columns.items()}
    n = len(rows)

    # the target: classification or regression from the column's type
    target_kind = _value_kind(columns[target])
    n_distinct = len({_label_key(c, target_kind == "int") for c in columns[target]})
    if kind == "auto":
        classify = target_kind == "category" or (
            target_kind == "int" and n_distinct <= MAX_INTEGER_CLASSES
        )
    else:
        classify = kind == "classification"
    if classify:
        keys = [_label_key(c, target_kind == "int") for c in columns[target]]
        labels = sorted(set(keys), key=(int if target_kind == "int" else str))
        if len(labels) < 2:
            raise AutoDLError(f"target column {target!r} has a single class {labels[0]!r}")
        index = {k: i for i, k in enumerate(labels)}
        y_all = np.array([index[k] for k in keys], dtype=np.int64)
    else:
        if target_kind == "category":
            raise AutoDLError(
                f"target column {target!r} holds text, not numbers; drop kind=regression"
            )
        y_raw = np.array([pp.to_number(c) for c in columns[target]], dtype=np.float64)
        if not np.isfinite(y_raw).all():
            raise AutoDLError(f"target column {target!r} holds non-finite numbers")
        y_all = y_raw[:, None]

    # splits
    if split_column:
        given: dict[str, list[int]] = {}
        for i, cell in enumerate(columns[split_column]):
            name = SPLIT_NAMES.get(str(pp.category(cell) or "").lower())
            if name is None:
                raise AutoDLError(
                    f"split column {split_column!r} row {i + 1} holds {cell!r}; use train, val or test"
                )
            given.setdefault(name, []).append(i)
        if "train" not in given:
            raise AutoDLError(f"split column {split_column!r} marks no row as train")
        given_arrays = {k: np.asarray(v) for k, v in given.items()}
    else:
        given_arrays = {"train": np.arange(n)}
    splits, split_note = make_splits(
        given_arrays, y_all if classify else None, val_fraction, test_fraction, seed
    )
    train = splits["train"]

    # features: statistics from the training rows only
    features, notes, missing_report, junk_report = [], [], {}, {}
    for name in names:
        if name in (target, split_column) or name in dropped:
            continue
        cells = columns[name]
        junk = _junk(cells)
        if name in as_numbers:  # numeric=: text in the column is a missing value
            if junk:
                junk_report[name] = junk
                cells = [None if _is_junk(c) else c for c in cells]
            col_kind = "float"
        elif name in forced:
            col_kind = "category"
        else:
            col_kind = _value_kind(cells)
        train_cells = [cells[i] for i in train]
        n_missing = sum(pp.is_missing(c) for c in cells)
        n_missing_train = sum(pp.is_missing(c) for c in train_cells)
        if n_missing_train == len(train) or (col_kind == "empty"):
            notes.append(f"{name} dropped (no values in the training split)")
            continue
        if n_missing:
            missing_report[name] = {"all": n_missing, "train": n_missing_train}
        if col_kind == "category" and name not in forced:
            n_values = len(cells) - n_missing
            if junk and sum(junk.values()) <= JUNK_SHARE * n_values:
                warnings.warn(
                    f"column {name!r} holds {n_values - sum(junk.values())} numbers and "
                    f"{_cells(sum(junk.values()))} that {'is' if sum(junk.values()) == 1 else 'are'} not ({_counts(junk)}); it is read as "
                    f"categories. To read it as numbers, those cells missing: --task-opt "
                    f"numeric={name}",
                    UserWarning,
                    stacklevel=3,
                )
                notes.append(f"{name}: {_cells(sum(junk.values()))} not numbers ({_counts(junk)})")
        if _looks_like_id(cells, col_kind):
            warnings.warn(
                f"column {name!r} looks like an identifier (each of its {len(cells)} values "
                f"is distinct): it cannot generalise to new rows; leave it out with "
                f"--task-opt drop={name}",
                UserWarning,
                stacklevel=3,
            )
            notes.append(f"{name} looks like an identifier (drop={name})")
        if col_kind == "category":
            counts = Counter(pp.category(c) for c in train_cells if not pp.is_missing(c))
            ranked = sorted(counts, key=lambda c: (-counts[c], c))
            kept = sorted(ranked[:max_categories])
            if len(ranked) > len(kept):
                notes.append(
                    f"{name}: {len(ranked)} categories, kept the {len(kept)} most frequent"
                )
            features.append(
                {
                    "name": name,
                    "kind": "categorical",
                    "categories": kept,
                    "missing_slot": n_missing_train > 0,
                }
            )
        else:
            values = np.array(
                [pp.to_number(c) if not pp.is_missing(c) else None for c in train_cells],
                dtype=np.float64,
            )
            mean = float(np.nanmean(values))
            std = float(np.nanstd(values))
            entry = {
                "name": name,
                "kind": "numeric",
                "mean": mean,
                "std": std if std > 0 and np.isfinite(std) else 1.0,
                "indicator": n_missing_train > 0,
            }
            if name in as_numbers:
                entry["junk_as_missing"] = True  # at predict time too
            features.append(entry)
    if not features:
        raise AutoDLError(f"{str(p)!r} has no feature columns besides {target!r}")
    if missing_report:
        notes.append(
            "missing values: "
            + ", ".join(f"{k} {v['all']}" for k, v in missing_report.items())
            + " (numeric: train mean + indicator; categorical: a category of their own)"
        )
    if junk_report:
        notes.append(
            "read as numbers (numeric=), text as missing: "
            + ", ".join(f"{k} {sum(v.values())} ({_counts(v)})" for k, v in junk_report.items())
        )
    if n_no_target:
        notes.append(f"{n_no_target} rows without a {target!r} value left out")

    pre: dict[str, Any] = {
        "format": pp.FORMAT,
        "version": pp.VERSION,
        "kind": "table",
        "modality": "vector",
        "problem": "classification" if classify else "regression",
        "columns": features,
        "source": str(p),
        "sha256": fingerprint(p),
    }
    x_all = pp.encode_table(pre, columns)
    pre["input_shape"] = [int(x_all.shape[1])]
    if classify:
        pre["labels"] = labels
    else:
        mean_y = y_all[train].mean(axis=0)
        std_y = y_all[train].std(axis=0)
        std_y = np.where(std_y > 0, std_y, 1.0)
        pre["target"] = {"name": target, "mean": mean_y.tolist(), "std": std_y.tolist()}
        y_all = ((y_all - mean_y) / std_y).astype(np.float32)
    pre["report"] = {
        "rows": n,
        "rows_without_target": n_no_target,
        "splits": {k: len(v) for k, v in splits.items()},
        "split": split_note,
        "missing": missing_report,
        "not_numbers": junk_report,
        "notes": notes,
    }
    n_out = len(labels) if classify else 1
    problem = f"{n_out} classes" if classify else "regression"
    description = (
        f"{p.name}: {n} rows ({_sizes(splits)}), {len(features)} columns -> "
        f"{x_all.shape[1]} inputs; {target!r}: {problem}; {split_note}"
        + ("; " + "; ".join(notes) if notes else "")
    )

    def loader() -> TaskData:
        return TaskData(*(a for k in SPLITS for a in (x_all[splits[k]], y_all[splits[k]])))

    loss, metric = ("cross_entropy", "accuracy") if classify else ("mse", "r2")
    io = IOSpec("vector", (int(x_all.shape[1]),), n_out)
    return Task(f"{scheme}:{p}", (), io, loss, metric, description, loader, preprocessing=pre)


@register_task(
    "csv", description="your own table: a CSV file; --task-opt target=COLUMN", prefix=True
)
def csv_task(
    path: str,
    target: str = "",
    kind: str = "auto",
    categorical: str = "",
    drop: str = "",
    split_column: str = "",
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    max_categories: int = 64,
    numeric: str = "",
) -> Task:
    """A task from a CSV file (``.tsv``: tab-separated) with a header row.

    Args:
        path: the file.
        target: the column to predict (required). ``kind="auto"`` makes text (or boolean)
            columns, and integer columns with at most :data:`MAX_INTEGER_CLASSES` distinct
            values, classification; other numbers regression. Rows without a target are left
            out.
        kind: ``auto``, ``classification`` or ``regression``.
        categorical: comma-separated columns to one-hot although they hold numbers.
        numeric: comma-separated columns to read as numbers although some cells hold text
            (``?``, ``n/a.``): those cells count as missing, here and at predict time, and
            the task's report counts them. A column of numbers with a few such cells is
            read as categories unless named here, with a warning that says so.
        drop: comma-separated columns to leave out (identifiers, leaks).
        split_column: a column saying ``train`` / ``val`` / ``test`` per row (the split is
            then given; a missing val or test split is drawn from train).
        val_fraction, test_fraction: sizes of the splits drawn from ``seed``, stratified by
            class for classification.
        max_categories: one-hot at most this many (most frequent) categories per column.

    Every other column is a feature: numbers are standardised with the training split's mean
    and standard deviation, a missing number is imputed with that mean and, when the training
    split has missing values in the column, flagged by an indicator feature; text is one-hot
    encoded over the training split's categories, with a category for missing values. The
    task's ``description`` and ``preprocessing["report"]`` state the split and the missing
    values. A regression target is standardised with training statistics (R^2 is unchanged).
    A column that looks like a row identifier (integers or text, every value distinct) is
    flagged with a warning (leave it out with ``drop=``); a drawn validation or test split of
    fewer than :data:`MIN_SPLIT_WARN` rows is warned about too.
    """
    return _table_task(
        "csv", path, target, kind, categorical, drop, split_column, val_fraction,
        test_fraction, seed, max_categories, numeric,
    )  # fmt: skip


@register_task(
    "parquet", description="your own table: a Parquet file; --task-opt target=COLUMN", prefix=True
)
def parquet_task(
    path: str,
    target: str = "",
    kind: str = "auto",
    categorical: str = "",
    drop: str = "",
    split_column: str = "",
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    max_categories: int = 64,
    numeric: str = "",
) -> Task:
    """A task from a Parquet file; options and preprocessing as in :func:`csv_task`
    (column types come from the file: numbers are numeric, text and booleans categorical)."""
    return _table_task(
        "parquet", path, target, kind, categorical, drop, split_column, val_fraction,
        test_fraction, seed, max_categories, numeric,
    )  # fmt: skip


# Image folders ----------------------------------------------------------------------------
@register_task(
    "images", description="your own images: one folder per class", prefix=True, arg="DIR"
)
def images_task(
    path: str,
    size: int = 32,
    mode: str = "auto",
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> Task:
    """A classification task from a folder of images, one sub-folder per class.

    ``DIR/<class>/*.png`` (any file Pillow reads, at any depth below the class folder; other
    files are ignored), or with given splits ``DIR/train/<class>/...`` plus optional
    ``DIR/val/<class>/...`` and ``DIR/test/<class>/...`` (missing splits are drawn from
    train with ``seed``, stratified). Images are converted to ``mode`` (``rgb``, ``gray``, or
    ``auto``: gray when every image is), resized to ``size`` x ``size`` (bilinear), scaled to
    [0, 1] and standardised per channel with the training split's statistics. Class names are
    the folder names.
    """
    task = "images task"
    root = _user_file(task, path, "folder", "give a folder with one sub-folder per class")
    if not root.is_dir():
        raise AutoDLError(f"{task} path {str(root)!r} is a file; give a folder of class folders")
    _check_fractions(task, val_fraction, test_fraction)
    if not isinstance(size, int) or size < 1:
        raise AutoDLError(f"{task} size must be a positive integer, got {size!r}")
    if mode not in ("auto", "rgb", "gray"):
        raise AutoDLError(f"{task} mode={mode!r}: use auto, rgb or gray")
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    split_dirs = {SPLIT_NAMES.get(d.name.lower()): d for d in subdirs}
    given = "train" in split_dirs and all(d.name.lower() in SPLIT_NAMES for d in subdirs)
    parts = {k: d for k, d in split_dirs.items() if k} if given else {"train": root}
    files: list[Path] = []
    class_of: list[str] = []
    split_of: list[str] = []
    for split, folder in parts.items():
        for class_dir in sorted(d for d in folder.iterdir() if d.is_dir()):
            if class_dir.name.startswith("."):
                continue
            found = pp.image_files(class_dir)
            files += found
            class_of += [class_dir.name] * len(found)
            split_of += [split] * len(found)
    labels = sorted(set(class_of))
    if len(labels) < 2:
        raise AutoDLError(
            f"{str(root)!r} holds images of {len(labels)} class(es); give one sub-folder of images per class, at least two"
        )
    if mode == "auto":
        from PIL import Image

        gray = True
        for f in files:
            try:
                with Image.open(f) as img:
                    gray = gray and img.mode in ("1", "L", "LA", "I", "I;16", "F")
            except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for a bad file
                raise AutoDLError(
                    f"image {str(f)!r} cannot be read ({type(exc).__name__}); remove or replace it"
                ) from None
            if not gray:
                break
        pil_mode = "L" if gray else "RGB"
    else:
        pil_mode = "L" if mode == "gray" else "RGB"
    try:
        raw = np.stack([pp.load_image(f, pil_mode, (size, size)) for f in files])
    except pp.InputError as exc:
        raise AutoDLError(f"{exc}; remove or replace the file") from None
    index = {c: i for i, c in enumerate(labels)}
    y_all = np.array([index[c] for c in class_of], dtype=np.int64)
    split_arr = np.array(split_of)
    given_idx = {k: np.flatnonzero(split_arr == k) for k in parts}
    splits, split_note = make_splits(given_idx, y_all, val_fraction, test_fraction, seed)
    train = raw[splits["train"]].astype(np.float64)
    mean = train.mean(axis=(0, 2, 3))
    std = train.std(axis=(0, 2, 3))
    pre = {
        "format": pp.FORMAT,
        "version": pp.VERSION,
        "kind": "image",
        "modality": "image",
        "input_shape": [int(raw.shape[1]), size, size],
        "problem": "classification",
        "labels": labels,
        "mode": pil_mode,
        "size": [size, size],
        "mean": mean.tolist(),
        "std": np.where(std > 0, std, 1.0).tolist(),
        "source": str(root),
        "sha256": fingerprint(root),
        "report": {
            "images": len(files),
            "splits": {k: len(v) for k, v in splits.items()},
            "split": split_note,
        },
    }
    x_all = pp.standardise(pre, raw)
    description = (
        f"{root.name}: {len(files)} images ({_sizes(splits)}), {len(labels)} classes, "
        f"{pil_mode} {size}x{size}; {split_note}"
    )

    def loader() -> TaskData:
        return TaskData(*(a for k in SPLITS for a in (x_all[splits[k]], y_all[splits[k]])))

    io = IOSpec("image", tuple(pre["input_shape"]), len(labels))
    return Task(
        f"images:{root}",
        (),
        io,
        "cross_entropy",
        "accuracy",
        description,
        loader,
        preprocessing=pre,
    )


# Arrays -----------------------------------------------------------------------------------
_NPZ_DESC = "your own arrays: an .npz with x_train, y_train (optional x_val, y_val, x_test, y_test)"
_NPZ_FIX = "give an .npz file with x_train and y_train (optional x_val/y_val, x_test/y_test)"


@register_task("npz", description=_NPZ_DESC, prefix=True)
def npz_task(
    path: str,
    val_fraction: float = 0.1,
    test_fraction: float = 0.15,
    seed: int = 0,
    standardize: bool = True,
) -> Task:
    """A task from an ``.npz`` file.

    Keys:

    - ``x_train``, ``y_train`` (required); ``x_val``/``y_val`` and ``x_test``/``y_test``
      (optional pairs: a missing split is drawn from train with ``seed``, ``test_fraction``
      and ``val_fraction`` of the training examples, stratified by class).
    - ``x_*`` shapes: ``(N, F)`` vectors; ``(N, C, L)`` sequences of length L with C channels
      (``(N, L)`` with ``modality="sequence"``: one channel); ``(N, C, H, W)`` images.
    - ``y_*``: integer class indices ``(N,)`` in 0..K-1 make a classification task; floats
      ``(N,)`` or ``(N, T)`` a regression task.
    - ``modality`` (optional string): ``vector``, ``sequence`` or ``image``, when the number
      of dimensions alone would say otherwise.
    - ``label_names`` (optional strings, K of them): class names for predictions.

    With ``standardize`` (the default) inputs are standardised per feature (vectors) or per
    channel (sequences, images), and regression targets per target, with the statistics of
    the training split only; the statistics travel in ``Task.preprocessing``.
    """
    task = "npz task"
    p = _user_file(task, path, "file", _NPZ_FIX)
    _check_fractions(task, val_fraction, test_fraction)
    try:
        with np.load(p, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as exc:  # noqa: BLE001 - any reader error is a user error here
        raise AutoDLError(
            f"npz task file {str(p)!r} cannot be read ({type(exc).__name__}); {_NPZ_FIX}"
        ) from None
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    for s in ("val", "test"):
        if (f"x_{s}" in arrays) != (f"y_{s}" in arrays):
            missing.append(f"y_{s}" if f"x_{s}" in arrays else f"x_{s}")
    if missing:
        raise AutoDLError(f"npz task file {str(p)!r} lacks {', '.join(missing)}; {_NPZ_FIX}")
    splits_in = [s for s in SPLITS if f"x_{s}" in arrays]
    x_train = arrays["x_train"]
    modality = str(arrays["modality"]) if "modality" in arrays else _NDIM_MODALITY.get(x_train.ndim)
    if modality is None:
        raise AutoDLError(
            f"npz task x_train has {x_train.ndim} dimensions; use 2 (N, F), 3 (N, C, L) or 4 (N, C, H, W)"
        )
    for s in splits_in:
        x, y = arrays[f"x_{s}"], arrays[f"y_{s}"]
        if modality == "sequence" and x.ndim == 2:
            x = arrays[f"x_{s}"] = x[:, None, :]  # a plain (N, L) signal has one channel
        if len(x) != len(y) or len(x) == 0:
            raise AutoDLError(
                f"npz task x_{s} and y_{s} must have the same positive length, got {len(x)} and {len(y)}"
            )
        if x.shape[1:] != arrays["x_train"].shape[1:]:
            raise AutoDLError(
                f"npz task x_{s} has example shape {x.shape[1:]}, x_train {arrays['x_train'].shape[1:]}"
            )
        if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
            raise AutoDLError(f"npz task x_{s} and y_{s} must be numeric arrays")
    x_train = arrays["x_train"]
    y_list = [arrays[f"y_{s}"] for s in splits_in]
    classify = all(np.issubdtype(y.dtype, np.integer) or y.dtype == bool for y in y_list)
    label_names = None
    if classify:
        if any(y.ndim != 1 for y in y_list):
            raise AutoDLError("npz task integer labels must be 1-D arrays of class indices")
        if min(int(y.min()) for y in y_list) < 0:
            raise AutoDLError("npz task class indices must be 0 or more")
        n_out = max(int(y.max()) for y in y_list) + 1
        if "label_names" in arrays:
            label_names = [str(v) for v in np.asarray(arrays["label_names"]).ravel()]
            if len(label_names) < n_out:
                raise AutoDLError(
                    f"npz task label_names names {len(label_names)} classes, the labels use {n_out}"
                )
            n_out = len(label_names)
    else:
        y_train = arrays["y_train"]
        n_out = 1 if y_train.ndim == 1 else int(np.prod(y_train.shape[1:]))
    try:
        io = IOSpec(modality, tuple(x_train.shape[1:]), n_out)
    except AutoDLError as exc:
        raise AutoDLError(f"npz task {str(p)!r}: {exc}") from None

    # one index space over the splits in the file; missing splits are drawn from train
    offsets = np.cumsum([0] + [len(arrays[f"y_{s}"]) for s in splits_in])
    x_all = np.concatenate([arrays[f"x_{s}"] for s in splits_in])
    y_all = np.concatenate([arrays[f"y_{s}"] for s in splits_in])
    if not classify:
        y_all = y_all.reshape(len(y_all), -1).astype(np.float64)
    given = {s: np.arange(offsets[i], offsets[i + 1]) for i, s in enumerate(splits_in)}
    splits, split_note = make_splits(
        given, y_all if classify else None, val_fraction, test_fraction, seed
    )
    pre: dict[str, Any] = {
        "format": pp.FORMAT,
        "version": pp.VERSION,
        "kind": "array",
        "modality": modality,
        "input_shape": list(io.shape),
        "problem": "classification" if classify else "regression",
        "mean": None,
        "std": None,
        "source": str(p),
        "sha256": fingerprint(p),
    }
    if standardize:
        train = x_all[splits["train"]].astype(np.float64)
        axes = (0,) if modality == "vector" else (0, *range(2, train.ndim))
        mean, std = train.mean(axis=axes), train.std(axis=axes)
        pre["mean"], pre["std"] = mean.tolist(), np.where(std > 0, std, 1.0).tolist()
    if classify:
        pre["labels"] = label_names or [str(i) for i in range(n_out)]
    else:
        pre["target"] = {"name": "y", "mean": None, "std": None}
        if standardize:
            mean_y, std_y = y_all[splits["train"]].mean(axis=0), y_all[splits["train"]].std(axis=0)
            std_y = np.where(std_y > 0, std_y, 1.0)
            pre["target"].update(mean=mean_y.tolist(), std=std_y.tolist())
            y_all = (y_all - mean_y) / std_y
    pre["report"] = {"splits": {k: len(v) for k, v in splits.items()}, "split": split_note}
    description = f"{p.name}: {modality} {io.shape} ({_sizes(splits)}); {split_note}"

    def loader() -> TaskData:
        x = pp.standardise(pre, x_all)
        return TaskData(*(a for k in SPLITS for a in (x[splits[k]], y_all[splits[k]])))

    loss, metric = ("cross_entropy", "accuracy") if classify else ("mse", "r2")
    return Task(f"npz:{p}", (), io, loss, metric, description, loader, preprocessing=pre)


def arrays_dir() -> Path:
    """Where :func:`from_arrays` keeps the arrays it is given (under the data cache)."""
    from autodlgym.tasks.datasets import cache_dir

    return cache_dir() / "arrays"


def from_arrays(
    x_train: Any,
    y_train: Any,
    x_val: Any = None,
    y_val: Any = None,
    x_test: Any = None,
    y_test: Any = None,
    *,
    modality: str | None = None,
    label_names: Sequence[str] | None = None,
    path: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Task:
    """A task from arrays already in memory (numpy arrays, or anything ``np.asarray`` takes).

    The arrays are written to an ``.npz`` (``path``, or a file named by their content hash
    under :func:`arrays_dir`) and the task is ``npz:`` that file, so ``run_search``, Ray
    workers and ``--resume`` load it by name. Shapes, keys and ``options`` (``val_fraction``,
    ``test_fraction``, ``seed``, ``standardize``) are those of :func:`npz_task`; pass the
    returned task as ``RunConfig(task=...)``.

    Raises:
        AutoDLError: a val or test split given without its labels (or the reverse), or arrays
            :func:`npz_task` rejects.
    """
    named = {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val}
    named |= {"x_test": x_test, "y_test": y_test}
    arrays = {}
    for key, value in named.items():
        if value is None:
            continue
        a = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
        if a.dtype == object:
            raise AutoDLError(f"from_arrays: {key} is not a numeric array (dtype object)")
        arrays[key] = a
    if modality is not None:
        arrays["modality"] = np.array(modality)
    if label_names is not None:
        arrays["label_names"] = np.array([str(n) for n in label_names])
    if path is None:
        digest = hashlib.sha256()
        for key in sorted(arrays):
            a = np.ascontiguousarray(arrays[key])
            digest.update(f"{key}:{a.dtype.str}:{a.shape};".encode())
            digest.update(a.tobytes())
        target = arrays_dir() / f"{digest.hexdigest()[:24]}.npz"
    else:
        target = Path(path).expanduser().resolve()
    if path is not None or not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as f:  # atomic: a worker never reads half a file
            np.savez(f, **arrays)
        os.replace(tmp, target)
    return get_task(f"npz:{target}", **options)


def from_dataset(train: Any, val: Any = None, test: Any = None, **kwargs: Any) -> Task:
    """A task from map-style datasets (``torch.utils.data.Dataset`` or any sequence) of
    ``(input, target)`` pairs: each is read once, stacked into arrays and handed to
    :func:`from_arrays` with ``kwargs``. Integer targets make a classification task, float
    targets a regression task.

    Raises:
        AutoDLError: an empty dataset, or an item that is not an ``(input, target)`` pair.
    """
    arrays: dict[str, Any] = {}
    for split, ds in (("train", train), ("val", val), ("test", test)):
        if ds is None:
            continue
        xs, ys = [], []
        for i in range(len(ds)):
            item = ds[i]
            if not isinstance(item, tuple | list) or len(item) < 2:
                raise AutoDLError(
                    f"from_dataset: {split} item {i} is a {type(item).__name__}; items must be (input, target) pairs"
                )
            x, y = item[0], item[1]
            xs.append(np.asarray(x.detach().cpu() if hasattr(x, "detach") else x))
            ys.append(np.asarray(y.detach().cpu() if hasattr(y, "detach") else y))
        if not xs:
            raise AutoDLError(f"from_dataset: the {split} dataset is empty")
        try:
            arrays[f"x_{split}"], arrays[f"y_{split}"] = np.stack(xs), np.stack(ys)
        except ValueError as exc:
            raise AutoDLError(f"from_dataset: {split} items differ in shape ({exc})") from None
    return from_arrays(**arrays, **kwargs)
