"""Learning curves of every trial, coloured by status, with pruned trials marked where they
stopped.

The per-epoch points come from the store's ``curves`` table, read with
:meth:`ResultStore.curves() <autodlgym.results.store.ResultStore.curves>` (long form: one row per
trial and epoch with ``trial_id, epoch, train_loss, val_score, seconds``). A trial that failed
before its first epoch has no points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from autodlgym.analysis._figures import STATUS_COLORS, empty_figure, new_axes
from autodlgym.analysis.leaderboard import _require
from autodlgym.errors import AutoDLError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_CURVE_COLUMNS = ("trial_id", "epoch", "train_loss", "val_score", "seconds")


def learning_curves(df: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """Per-epoch points of every trial, joined with the trial's status.

    Args:
        df: a results frame (for ``status``).
        curves: ``ResultStore.curves()`` of the same run.

    Returns:
        ``trial_id``, ``status``, ``epoch`` (1-based; the point's index where the trainer
        recorded none), ``val_score``, ``train_loss``, ``seconds`` and ``last`` (True on a
        trial's final point: where a pruned trial stopped), sorted by trial and epoch. Points
        of trials missing from ``df`` are dropped.
    """
    _require(df, "trial_id", "status")
    missing = [c for c in _CURVE_COLUMNS if c not in curves.columns]
    if missing:
        raise AutoDLError(
            f"curves have no column(s) {', '.join(missing)}; pass ResultStore(run).curves()"
        )
    c = curves.loc[:, list(_CURVE_COLUMNS)].copy()
    status = df.set_index("trial_id")["status"]
    c = c[c["trial_id"].isin(status.index)]
    order = c.groupby("trial_id", sort=False).cumcount() + 1
    c["epoch"] = c["epoch"].astype("float64").fillna(order.astype("float64"))
    c = c.sort_values(["trial_id", "epoch"], kind="stable").reset_index(drop=True)
    c.insert(1, "status", c["trial_id"].map(status).astype("str"))
    c["last"] = ~c["trial_id"].duplicated(keep="last")
    return c


class _CurvesInfo(NamedTuple):
    points: pd.DataFrame
    counts: dict[str, int]  # trials with a curve per status


def _curves_info(df: pd.DataFrame, curves: pd.DataFrame) -> _CurvesInfo:
    pts = learning_curves(df, curves)
    pts = pts[pts["val_score"].notna()]
    counts = pts.groupby("status")["trial_id"].nunique().to_dict()
    return _CurvesInfo(pts, {str(k): int(v) for k, v in counts.items()})


def plot_learning_curves(df: pd.DataFrame, curves: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Validation score per epoch of every trial; a cross marks where each pruned or failed
    trial stopped. Drawn as line collections, so ten thousand trials plot in about a second.

    Returns:
        The figure; with no curve point, an empty figure (and a warning).
    """
    from matplotlib.collections import LineCollection

    info = _curves_info(df, curves)
    title = "Learning curves"
    if info.points.empty:
        return empty_figure(title, "no trial recorded a per-epoch validation score", ax)
    ax = new_axes(ax)
    pts = info.points
    # draw ok first, so the rarer pruned and failed curves sit on top
    for status in sorted(info.counts, key=lambda s: (s != "ok", s)):
        sub = pts[pts["status"] == status]
        color = STATUS_COLORS.get(status, "#333333")
        segments = [
            np.column_stack([g["epoch"].to_numpy(), g["val_score"].to_numpy()])
            for _, g in sub.groupby("trial_id", sort=False)
        ]
        alpha = 0.25 if status == "ok" else 0.6
        ax.add_collection(LineCollection(segments, colors=color, alpha=alpha, linewidths=1))
        label = f"{status} ({info.counts[status]})"
        if status == "ok":
            ends = sub[sub["last"]]
            ax.scatter(ends["epoch"], ends["val_score"], s=6, color=color, label=label)
        else:
            ends = sub[sub["last"]]
            ax.scatter(ends["epoch"], ends["val_score"], s=30, marker="x", color=color, label=label)
    ax.autoscale_view()
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation score")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small", title="status (trials)")
    return ax.figure
