"""How raw inputs become model inputs, and a command that runs an exported model on new data.

This file stands alone on purpose. It imports only the standard library and numpy (torch to
run a model, Pillow to read images, pandas to read Parquet), because ``autodlgym export``
copies it unchanged into every model directory as ``predict.py``::

    python MODEL_DIR/predict.py --input new_rows.csv       # one prediction per line

The task factories of :mod:`autodlgym.tasks.files` turn training data into arrays with the same
functions, so a model sees the same numbers when it is trained and when it predicts.

A preprocessing description is JSON-ready data (``preprocessing.json`` in a model directory)::

    {"format": "autodlgym-preprocessing", "version": 1,
     "kind": "table" | "image" | "array",
     "modality": "vector" | "sequence" | "image", "input_shape": [...],
     "problem": "classification" | "regression",
     "labels": [class names, index order] (classification),
     "target": {"name": ..., "mean": [...], "std": [...]} (regression: outputs are
               standardised targets; a prediction is ``output * std + mean``; mean/std null
               when the targets were not standardised),
     ... kind-specific entries:}

- ``table``: ``"columns"``: one entry per input column, in the order their features appear in
  the input vector. ``{"name", "kind": "numeric", "mean", "std", "indicator"}`` gives one
  feature ``(value - mean) / std`` (a missing value is imputed with ``mean``, so 0), then, if
  ``indicator``, a 0/1 feature that says the value was missing.
  With ``"junk_as_missing": true`` (the task's ``numeric=`` option) a cell that is not a
  number is a missing value (and counted, see :func:`unseen_note`), else an error.
  ``{"name", "kind": "categorical", "categories": [...], "missing_slot"}`` gives one 0/1
  feature per category (the value as text); with ``missing_slot`` one more for a missing value;
  a category not seen in training is all zeros, and counted: ``predict.py`` and ``autodlgym
  predict`` report such values on stderr. Missing: empty, None, NaN or one of
  :data:`NA_STRINGS`.
- ``image``: ``"mode"`` (``"RGB"`` or ``"L"``), ``"size"`` ``[height, width]``, ``"mean"`` and
  ``"std"`` per channel: the file is converted to the mode, resized (bilinear), scaled to
  [0, 1] and standardised per channel.
- ``array``: ``"mean"`` / ``"std"`` per feature (vector) or per channel (sequence, image), or
  null when inputs are used as they are.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "autodlgym-preprocessing"
VERSION = 1
#: Text cells that mean "no value" (as pandas reads them by default).
NA_STRINGS = frozenset(
    ["", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "-NaN", "NULL", "null", "None", "<NA>", "#N/A"]
)
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
PROGRAM_FILES = ("program.pt2", "program.ts")


class InputError(ValueError):
    """Input that cannot be read or does not match the model; the message is one line."""


# Cells ------------------------------------------------------------------------------------
def is_missing(value: Any) -> bool:
    """Whether a cell holds no value (None, NaN, pandas' NA/NaT, or an NA text)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return value.strip() in NA_STRINGS
    return type(value).__name__ in ("NAType", "NaTType")


def to_number(value: Any) -> float | None:
    """A cell as a finite float, or None when it is missing or not finite.

    Raises:
        ValueError: the cell holds text that is not a number.
    """
    if is_missing(value):
        return None
    if isinstance(value, bool):
        return float(value)
    x = float(value.strip()) if isinstance(value, str) else float(value)
    return x if math.isfinite(x) else None


def category(value: Any) -> str | None:
    """A cell as the text of a category, or None when it is missing."""
    return None if is_missing(value) else str(value).strip()


# Reading ----------------------------------------------------------------------------------
def read_csv(path: str | Path) -> dict[str, list[str]]:
    """The columns of a CSV (``.tsv``: tab-separated) file as raw text cells, by header name.

    Raises:
        InputError: no header, a repeated column name, or a row of the wrong length.
    """
    path = Path(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, None)
            if not header:
                raise InputError(f"{path} has no header row; its first line must name the columns")
            header = [h.strip() for h in header]
            dupes = sorted({h for h in header if header.count(h) > 1})
            if dupes:
                raise InputError(f"{path} names column(s) {', '.join(dupes)} more than once")
            columns: dict[str, list[str]] = {h: [] for h in header}
            for line, row in enumerate(reader, start=2):
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank line
                if len(row) != len(header):
                    raise InputError(
                        f"{path} line {line} has {len(row)} cells, the header {len(header)}"
                    )
                for name, cell in zip(header, row):
                    columns[name].append(cell)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path} cannot be read as CSV ({type(exc).__name__}: {exc})") from None
    return columns


def frame_columns(frame: Any) -> dict[str, list[Any]]:
    """A pandas DataFrame's columns as lists of Python values, with None where missing."""
    out = {}
    for name in frame.columns:
        values = frame[name].tolist()
        out[str(name)] = [None if is_missing(v) else v for v in values]
    return out


def read_table(path: str | Path) -> dict[str, list[Any]]:
    """The columns of a ``.csv`` / ``.tsv`` / ``.parquet`` file (Parquet needs pandas)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return read_csv(path)
    if suffix in (".parquet", ".pq"):
        try:
            import pandas as pd

            return frame_columns(pd.read_parquet(path))
        except ImportError:
            raise InputError(
                "reading Parquet needs pandas and pyarrow: pip install pandas pyarrow"
            ) from None
        except Exception as exc:  # noqa: BLE001 - any reader error is an input error here
            raise InputError(
                f"{path} cannot be read as Parquet ({type(exc).__name__}: {exc})"
            ) from None
    raise InputError(f"{path} is not a table; give a {', '.join(TABLE_SUFFIXES)} file")


def n_rows(columns: Mapping[str, Sequence[Any]]) -> int:
    return len(next(iter(columns.values()))) if columns else 0


# Encoding ---------------------------------------------------------------------------------
def encode_table(
    pre: Mapping[str, Any],
    columns: Mapping[str, Sequence[Any]],
    unseen: dict[str, dict[str, int]] | None = None,
) -> np.ndarray:
    """Rows of a table as the model's input vectors, float32 of shape ``(N, F)``.

    Args:
        pre: a ``table`` preprocessing description.
        columns: column name -> cells (raw text, numbers or None); columns the description
            does not name (the target, identifiers) are ignored.
        unseen: when given, filled with what the training split did not have: column ->
            {value: count} for categories not seen in training (encoded as no category) and
            for text in a column read with ``junk_as_missing`` (encoded as missing).

    Raises:
        InputError: a column is absent, or a numeric column holds text.
    """
    n = n_rows(columns)
    features: list[np.ndarray] = []
    for col in pre["columns"]:
        name = col["name"]
        if name not in columns:
            raise InputError(f"the input has no column {name!r}; the model reads {_names(pre)}")
        cells = columns[name]
        if col["kind"] == "numeric":
            values = np.empty(n, dtype=np.float64)
            for i, cell in enumerate(cells):
                try:
                    x = to_number(cell)
                except (TypeError, ValueError):
                    if not col.get("junk_as_missing"):
                        raise InputError(
                            f"column {name!r} row {i + 1} holds {cell!r}, not a number"
                        ) from None
                    x = None  # read with numeric=: text is a missing value
                    if unseen is not None:
                        seen = unseen.setdefault(name, {})
                        seen[str(cell)] = seen.get(str(cell), 0) + 1
                values[i] = math.nan if x is None else x
            missing = np.isnan(values)
            values[missing] = col["mean"]
            features.append((values - col["mean"]) / col["std"])
            if col["indicator"]:
                features.append(missing.astype(np.float64))
        else:
            slots = {c: j for j, c in enumerate(col["categories"])}
            width = len(slots) + int(col["missing_slot"])
            onehot = np.zeros((n, width), dtype=np.float64)
            for i, cell in enumerate(cells):
                key = category(cell)
                if key is None:
                    if col["missing_slot"]:
                        onehot[i, width - 1] = 1.0
                elif key in slots:
                    onehot[i, slots[key]] = 1.0
                elif unseen is not None:
                    seen = unseen.setdefault(name, {})
                    seen[key] = seen.get(key, 0) + 1
            features.extend(onehot.T)
    x = np.stack(features, axis=1) if features else np.zeros((n, 0))
    return np.ascontiguousarray(x, dtype=np.float32)


def standardise(pre: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """Array inputs ``(N, *input_shape)`` standardised with the description's ``mean`` and
    ``std`` (per feature for vectors, per channel otherwise), as float32."""
    x = np.asarray(x, dtype=np.float64)
    if pre.get("mean") is None:
        return np.ascontiguousarray(x, dtype=np.float32)
    extra = len(pre["input_shape"]) - 1  # axes after the feature / channel axis
    mean = np.asarray(pre["mean"], dtype=np.float64).reshape(-1, *([1] * extra))
    std = np.asarray(pre["std"], dtype=np.float64).reshape(-1, *([1] * extra))
    return np.ascontiguousarray((x - mean) / std, dtype=np.float32)


def load_image(path: str | Path, mode: str, size: Sequence[int]) -> np.ndarray:
    """One image file as float32 ``(C, H, W)`` in [0, 1]: converted to ``mode`` (``"RGB"``
    or ``"L"``) and resized to ``size`` = (height, width) with bilinear filtering.

    Raises:
        InputError: the file cannot be read as an image.
    """
    Image = _pillow()
    try:
        with Image.open(path) as img:
            img = img.convert(mode).resize((int(size[1]), int(size[0])), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.float32) / 255.0
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for a bad file
        raise InputError(
            f"{path} cannot be read as an image ({type(exc).__name__}: {exc})"
        ) from None
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))


def _pillow() -> Any:
    """Pillow's ``Image`` module, or a one-line :class:`InputError` saying how to get it."""
    try:
        from PIL import Image
    except ImportError:
        raise InputError("reading images needs Pillow: pip install pillow") from None
    return Image


def image_files(folder: str | Path) -> list[Path]:
    """The image files under ``folder`` (any depth, by path), known to Pillow by extension."""
    Image = _pillow()
    known = {ext.lower() for ext in Image.registered_extensions()}
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in known)


def read_arrays(pre: Mapping[str, Any], path: str | Path) -> np.ndarray:
    """Inputs from an ``.npz`` (key ``x``, ``x_test`` or its only array) or ``.npy`` file,
    checked against the model's input shape."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            x = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as f:
                keys = [k for k in ("x", "x_test") if k in f.files] or (
                    f.files if len(f.files) == 1 else []
                )
                if not keys:
                    raise InputError(f"{path} has arrays {', '.join(f.files)}; name the inputs x")
                x = f[keys[0]]
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} cannot be read as .npz / .npy ({type(exc).__name__})") from None
    shape = tuple(pre["input_shape"])
    if pre["modality"] == "sequence" and x.ndim == 2 and shape[0] == 1:
        x = x[:, None, :]  # a plain (N, L) signal has one channel
    if tuple(x.shape[1:]) != shape:
        raise InputError(
            f"{path} holds inputs of shape {tuple(x.shape[1:])}; the model reads {shape}"
        )
    return x


def read_inputs(
    pre: Mapping[str, Any],
    path: str | Path,
    unseen: dict[str, dict[str, int]] | None = None,
) -> tuple[np.ndarray, list[str] | None]:
    """New data for a model: ``(inputs, names)``. ``names`` labels each row for a folder of
    images (paths relative to the folder) and is None otherwise. ``unseen`` as for
    :func:`encode_table` (tables).

    Raises:
        InputError: missing or unreadable input, or input that does not fit the model.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"input {str(path)!r} does not exist")
    kind = pre["kind"]
    if kind == "table":
        return encode_table(pre, read_table(path), unseen), None
    if kind == "image":
        files = image_files(path) if path.is_dir() else [path]
        if not files:
            raise InputError(f"{path} holds no image files")
        raw = np.stack([load_image(f, pre["mode"], pre["size"]) for f in files])
        names = [str(f.relative_to(path)) for f in files] if path.is_dir() else None
        return standardise(pre, raw), names
    return standardise(pre, read_arrays(pre, path)), None


def decode(pre: Mapping[str, Any], outputs: np.ndarray) -> list[str]:
    """Model outputs ``(N, n_outputs)`` as one prediction per row: a class name, or the
    target value(s) in the units of the training data (space-separated when several)."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if pre["problem"] == "classification":
        labels = pre.get("labels") or [str(i) for i in range(outputs.shape[1])]
        return [labels[int(i)] for i in outputs.argmax(axis=1)]
    target = pre.get("target") or {}
    if target.get("mean") is not None:
        outputs = outputs * np.asarray(target["std"]) + np.asarray(target["mean"])
    return [" ".join(f"{v:.6g}" for v in row) for row in outputs]


def _names(pre: Mapping[str, Any]) -> str:
    return ", ".join(c["name"] for c in pre["columns"])


# Running an exported model ----------------------------------------------------------------
def load_preprocessing(model_dir: str | Path) -> dict[str, Any]:
    """``MODEL_DIR/preprocessing.json``, checked for its format and version."""
    path = Path(model_dir) / "preprocessing.json"
    try:
        pre = json.loads(path.read_text())
    except (OSError, ValueError):
        raise InputError(
            f"{str(model_dir)!r} holds no readable preprocessing.json; give a directory written by autodlgym export"
        ) from None
    if pre.get("format") != FORMAT or int(pre.get("version", 0)) > VERSION:
        raise InputError(
            f"{path} is not a preprocessing description this file reads (version {VERSION})"
        )
    return pre


def load_program(model_dir: str | Path) -> Any:
    """The exported network as a callable module: ``program.pt2`` (torch.export) or
    ``program.ts`` (TorchScript). Needs torch only."""
    import torch

    model_dir = Path(model_dir)
    if (model_dir / "program.pt2").is_file():
        return torch.export.load(str(model_dir / "program.pt2")).module()
    if (model_dir / "program.ts").is_file():
        return torch.jit.load(str(model_dir / "program.ts"), map_location="cpu").eval()
    raise InputError(f"{str(model_dir)!r} holds no {' or '.join(PROGRAM_FILES)}")


def predict(
    model_dir: str | Path,
    path: str | Path,
    batch_size: int = 1024,
    pre: Mapping[str, Any] | None = None,
    unseen: dict[str, dict[str, int]] | None = None,
) -> tuple[list[str], np.ndarray, list[str] | None]:
    """Run an exported model on new data: ``(predictions, outputs, names)``.

    ``outputs`` are the network's raw outputs (logits, or standardised targets), one row per
    example; ``predictions`` as :func:`decode` writes them; ``names`` as :func:`read_inputs`.
    ``pre`` is the model's preprocessing when already loaded; ``unseen`` is filled as
    :func:`encode_table` says (see :func:`unseen_note`).
    """
    pre = load_preprocessing(model_dir) if pre is None else pre
    x, names = read_inputs(pre, path, unseen)
    outputs = run_program(load_program(model_dir), x, pre, batch_size)
    return decode(pre, outputs), outputs, names


def run_program(program: Any, x: np.ndarray, pre: Mapping[str, Any], batch_size: int = 1024):
    """The raw outputs of a loaded program on model inputs ``x``, in batches."""
    import torch

    parts = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            parts.append(program(torch.from_numpy(x[i : i + batch_size])).float().numpy())
    n_out = len(pre["labels"]) if pre["problem"] == "classification" and pre.get("labels") else 1
    return np.concatenate(parts) if parts else np.zeros((0, n_out), dtype=np.float32)


def unseen_note(unseen: Mapping[str, Mapping[str, int]], limit: int = 3) -> str | None:
    """One line about values the model never saw in training (None when there were none):
    ``colour: 3 cells of categories not seen in training ('purple' x2, 'teal' x1)``."""
    if not unseen:
        return None
    parts = []
    for name, counts in unseen.items():
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{v!r} x{n}" for v, n in ranked[:limit])
        more = f", {len(ranked) - limit} more" if len(ranked) > limit else ""
        n = sum(counts.values())
        parts.append(f"{name}: {n} cell{'' if n == 1 else 's'} ({shown}{more})")
    return (
        "values not seen in training, encoded as no category (or missing, for numeric= "
        "columns): " + "; ".join(parts)
    )


def probabilities(outputs: np.ndarray) -> np.ndarray:
    """Class probabilities (softmax) of a classifier's outputs, one row per example."""
    z = outputs - outputs.max(axis=1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def format_predictions(
    pre: Mapping[str, Any],
    predictions: list[str],
    outputs: np.ndarray,
    names: list[str] | None,
    scores: bool,
) -> list[str]:
    """The lines :func:`main` prints: ``[name<TAB>]prediction[<TAB>scores]``."""
    lines = []
    if scores and pre["problem"] == "classification":
        probs = probabilities(outputs)
    for i, label in enumerate(predictions):
        parts = ([names[i]] if names is not None else []) + [label]
        if scores:
            row = probs[i] if pre["problem"] == "classification" else outputs[i]
            parts.append(" ".join(f"{v:.6g}" for v in row))
        lines.append("\t".join(parts))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """``predict.py [MODEL_DIR] --input FILE [--scores]``: one prediction per line."""
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description="Run an exported autodlgym model on new data.")
    parser.add_argument(
        "model_dir", nargs="?", default=str(here), help="model directory (default: this file's)"
    )
    parser.add_argument(
        "--input", required=True, help="a .csv/.parquet table, an image or folder, or an .npz"
    )
    parser.add_argument(
        "--scores", action="store_true", help="add class probabilities (or raw outputs)"
    )
    args = parser.parse_args(argv)
    unseen: dict[str, dict[str, int]] = {}
    try:
        pre = load_preprocessing(args.model_dir)
        predictions, outputs, names = predict(args.model_dir, args.input, pre=pre, unseen=unseen)
    except InputError as exc:
        print(f"predict: error: {exc}", file=sys.stderr)
        return 2
    note = unseen_note(unseen)
    if note:
        print(f"predict: note: {note}", file=sys.stderr)
    return print_lines(format_predictions(pre, predictions, outputs, names, args.scores))


def print_lines(lines: Sequence[str]) -> int:
    """Print ``lines`` to stdout; a reader that closes the pipe early (``| head``) ends it
    quietly (exit 0, no traceback)."""
    try:
        for line in lines:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # what is still buffered would fail again at exit: point stdout at nothing
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
