"""Yardsticks beside the search: scikit-learn models on the same split and the same inputs.

A searched network is worth its cost only if it beats what a fraction of a second of
scikit-learn gets. For a table (``csv:`` / ``parquet:``, or any task whose preprocessing is a
``table``) two baselines are fitted on the task's own training split, as the network sees it
(the same standardised numbers, missing-value indicators and one-hot categories):

- ``hist_gradient_boosting``: :class:`~sklearn.ensemble.HistGradientBoostingClassifier` /
  ``Regressor`` with its defaults and ``random_state=seed``;
- ``logistic_regression`` (classification) / ``ridge`` (regression): a linear model with its
  defaults (``max_iter=1000`` for the logistic regression).

For other inputs (images, sequences, arrays) the reference is the linear model alone, on the
inputs flattened to vectors: a floor any network should clear. A graph task gets the same
logistic regression without the graph: on each node's features (node classification) or on
the mean of each graph's node features (graph classification), the floor message passing
must clear. Scores are the task's metric
(accuracy, or R^2 pooled over the targets as the trainer computes it) on the validation and
test splits. The runner records them as trials of phase ``"baseline"``, which searchers,
budgets and rankings of the search never see.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from autodlgym.trial import OK, TrialResult

if TYPE_CHECKING:  # pragma: no cover
    from autodlgym.tasks import Task

#: a baseline fits on at most this many training rows (drawn with the seed): a yardstick must
#: stay cheap beside the search on a large data set
MAX_BASELINE_ROWS = 50_000


def baseline_names(task: Task) -> list[str]:
    """The baselines a task gets, by their recorded names (``linear`` is named for the
    problem: ``logistic_regression`` or ``ridge``)."""
    linear = "logistic_regression" if task.is_classification else "ridge"
    is_table = (task.preprocessing or {}).get("kind") == "table"
    return ["hist_gradient_boosting", linear] if is_table else [linear]


def _model(name: str, classify: bool, seed: int) -> Any:
    if name == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        return cls(random_state=seed)
    if name == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=1000)
    if name == "ridge":
        from sklearn.linear_model import Ridge

        return Ridge()
    raise ValueError(f"unknown baseline {name!r}")


def graph_arrays(data: Any) -> Any:
    """A graph task's data as the arrays a baseline fits, without the edges: each node's
    features and label (node level), or each graph's mean node features and its label."""
    from types import SimpleNamespace

    if data.level == "node":
        g = data.graphs[0]
        x, y = g.x.numpy(), g.y.numpy()
    else:
        x = np.stack([g.x.numpy().mean(axis=0) for g in data.graphs])
        y = np.array([int(g.y.reshape(-1)[0]) for g in data.graphs])
    arrays = {}
    for split in ("train", "val", "test"):
        idx = np.asarray(getattr(data, split), dtype=np.int64)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x[idx], y[idx]
    return SimpleNamespace(**arrays)


def score(task: Task, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The task's metric: accuracy, or R^2 pooled over all targets (1 - SSE / SST, as the
    trainer scores a network)."""
    if task.is_classification:
        return float(np.mean(np.asarray(y_true).ravel() == np.asarray(y_pred).ravel()))
    y = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(len(y_true), -1)
    sst = float(((y - y.mean(axis=0)) ** 2).sum())
    return 1.0 - float(((p - y) ** 2).sum()) / sst if sst > 0 else 0.0


def fit_baselines(task: Task, seed: int = 0) -> list[tuple[str, TrialResult]]:
    """Fit the task's baselines (:func:`baseline_names`) on its training split and score them
    on its validation and test splits.

    Returns:
        ``(name, result)`` per baseline: an ``ok`` :class:`~autodlgym.trial.TrialResult`
        with ``val_score``, ``test_score`` and ``train_seconds``, or an ``error`` one with
        scikit-learn's message (a baseline never stops a search).
    """
    data = task.load()

    def flat(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float32).reshape(len(x), -1)

    if task.io is not None and task.io.is_graph:
        data = graph_arrays(data)
    x_train, y_train = flat(data.x_train), np.asarray(data.y_train)
    if len(x_train) > MAX_BASELINE_ROWS:
        keep = np.random.default_rng(seed).choice(len(x_train), MAX_BASELINE_ROWS, replace=False)
        x_train, y_train = x_train[np.sort(keep)], y_train[np.sort(keep)]
    classify = task.is_classification
    if not classify and y_train.ndim == 2 and y_train.shape[1] == 1:
        y_train = y_train[:, 0]
    out = []
    for name in baseline_names(task):
        start = time.perf_counter()
        try:
            model = _model(name, classify, seed)
            if name == "hist_gradient_boosting" and not classify and y_train.ndim == 2:
                from sklearn.multioutput import MultiOutputRegressor

                model = MultiOutputRegressor(model)
            model.fit(x_train, y_train)
            seconds = time.perf_counter() - start
            val = score(task, data.y_val, model.predict(flat(data.x_val)))
            test = score(task, data.y_test, model.predict(flat(data.x_test)))
        except Exception as exc:  # noqa: BLE001 - a yardstick that fails is reported, not fatal
            first = str(exc).splitlines()[0] if str(exc) else ""
            result = TrialResult.failure(
                "error", f"scikit-learn {name}: {type(exc).__name__}: {first}"[:300]
            )
            result.train_seconds = time.perf_counter() - start
            out.append((name, result))
            continue
        out.append(
            (
                name,
                TrialResult(
                    OK,
                    val_score=val,
                    test_score=test,
                    train_seconds=seconds,
                    eval_seconds=time.perf_counter() - start - seconds,
                    message=f"scikit-learn {name} on the same split",
                ),
            )
        )
    return out
