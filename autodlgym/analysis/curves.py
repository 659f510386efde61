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

from autodlgym.analysis._figures import STATUS_COLORS, empty_figure, new_figure
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


def top_curves(df: pd.DataFrame, curves: pd.DataFrame, k: int = 5) -> list[int]:
    """Ids of the ``k`` ``ok`` trials with the highest validation score that have a curve,
    best first (ties by trial id): the ones :func:`plot_learning_curves` labels."""
    return _top(df, _curves_info(df, curves).points, k)


def _top(df: pd.DataFrame, points: pd.DataFrame, k: int) -> list[int]:
    _require(df, "trial_id", "status", "val_score")
    has = points["trial_id"].unique()
    ok = df[(df["status"] == "ok") & df["val_score"].notna() & df["trial_id"].isin(has)]
    ok = ok.sort_values(["val_score", "trial_id"], ascending=[False, True], kind="stable")
    return [int(t) for t in ok["trial_id"].head(k)]


def plot_learning_curves(
    df: pd.DataFrame, curves: pd.DataFrame, ax: Axes | None = None, label_top: int = 5
) -> Figure:
    """Validation score per epoch of every trial; a cross marks where each pruned or failed
    trial stopped. The best ``ok`` trial is drawn bold and the ``label_top`` best are labelled
    with their trial id (:func:`top_curves`); the legend sits right of the plot. When every
    point is at one epoch, the scores are a strip of points on that epoch. Drawn as line
    collections, so ten thousand trials plot in about a second.

    Returns:
        The figure; with no curve point, an empty figure (and a warning).
    """
    from matplotlib.collections import LineCollection

    info = _curves_info(df, curves)
    title = "Learning curves"
    if info.points.empty:
        return empty_figure(title, "no trial recorded a per-epoch validation score", ax)
    if ax is None:
        ax = new_figure((8.0, 4.4), right=2.0).add_subplot()
    pts = info.points
    epochs = np.unique(pts["epoch"].to_numpy())
    single = len(epochs) == 1
    if single:  # one epoch: spread the points sideways so they do not sit on each other
        rng = np.random.default_rng(0)
        pts = pts.assign(epoch=pts["epoch"] + rng.uniform(-0.25, 0.25, len(pts)))
    # draw ok first, so the rarer pruned and failed curves sit on top
    for status in sorted(info.counts, key=lambda s: (s != "ok", s)):
        sub = pts[pts["status"] == status]
        color = STATUS_COLORS.get(status, "#333333")
        if not single:
            segments = [
                np.column_stack([g["epoch"].to_numpy(), g["val_score"].to_numpy()])
                for _, g in sub.groupby("trial_id", sort=False)
            ]
            alpha = 0.25 if status == "ok" else 0.6
            ax.add_collection(LineCollection(segments, colors=color, alpha=alpha, linewidths=1))
        label = f"{status} ({info.counts[status]})"
        ends = sub[sub["last"]]
        if status == "ok":
            ax.scatter(ends["epoch"], ends["val_score"], s=10 if single else 6, color=color,
                       alpha=0.6 if single else 1.0, label=label)  # fmt: skip
        else:
            ax.scatter(ends["epoch"], ends["val_score"], s=30, marker="x", color=color, label=label)
    top = _top(df, info.points, label_top)
    ends_xy = []
    for rank, tid in enumerate(top):
        g = pts[pts["trial_id"] == tid]
        x, y = g["epoch"].to_numpy(), g["val_score"].to_numpy()
        best = rank == 0
        if best:
            score = float(df.loc[df["trial_id"] == tid, "val_score"].iloc[0])
            ax.plot(x, y, color="#000000", lw=2.2, marker="o", ms=4, zorder=5,
                    label=f"best: trial {tid} ({score:.4f})")  # fmt: skip
        elif not single:
            ax.plot(x, y, color="#333333", lw=1.1, zorder=4)
        ends_xy.append((tid, float(x[-1]), float(y[-1])))
    ax.autoscale_view()
    _label_ends(ax, ends_xy)
    if single:
        e = float(epochs[0])
        ax.set_xlim(e - 0.6, e + 0.6)
        ax.set_xticks([e], [f"{e:g}"])
        ax.set_xlabel("epoch (every trial ran one; points spread sideways)")
    else:
        ax.set_xlabel("epoch")
        ax.set_xticks(epochs if len(epochs) <= 12 else ax.get_xticks())
        ax.set_xlim(float(epochs.min()) - 0.2, float(epochs.max()) + 0.6)
    ax.set_ylabel("validation score")
    ax.set_title(title + (f" (the {len(top)} best labelled by trial id)" if len(top) > 1 else ""))
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small",
              title="status (trials)", borderaxespad=0.0)  # fmt: skip
    return ax.figure


def _label_ends(ax: Axes, ends: list[tuple[int, float, float]]) -> None:
    """Label the curves ending at ``ends`` (trial id, x, y; the best first) with ``#id``,
    just right of their end, the labels pushed apart so they do not overlap."""
    if not ends:
        return
    y0, y1 = ax.get_ylim()
    gap = 0.045 * (y1 - y0)
    # from the top down, each label at least ``gap`` below the one above it
    order = sorted(range(len(ends)), key=lambda i: -ends[i][2])
    placed: dict[int, float] = {}
    below = np.inf
    for i in order:
        y = min(ends[i][2], below - gap)
        placed[i] = y
        below = y
    x_text = max(x for _, x, _ in ends) + 0.12
    for i, (tid, x, y) in enumerate(ends):
        ax.annotate(
            f"#{tid}",
            (x, y),
            xytext=(x_text, placed[i]),
            textcoords="data",
            fontsize="x-small",
            va="center",
            fontweight="bold" if i == 0 else "normal",
            color="#000000" if i == 0 else "#333333",
            arrowprops={"arrowstyle": "-", "color": "#999999", "lw": 0.5},
            zorder=6,
        )
