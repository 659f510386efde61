"""Pareto fronts: validation score against a cost (parameters, FLOPs, latency, train seconds).

One point per architecture: its trial at the highest fidelity it reached, with its best
validation score there (:func:`~autodlgym.results.ranking.by_architecture`), of the trials
with a usable score (``ok``, or ``stopped`` by the search's deadline with the score it
reached). A point is on the front when no other point scores at least as well at no more
cost and is strictly better in one of the two. Points with equal score and cost are on the
front together.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from autodlgym.analysis._figures import empty_figure, new_axes, time_unit
from autodlgym.analysis.leaderboard import _require
from autodlgym.results.ranking import by_architecture, usable
from autodlgym.trial import SEARCH

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Costs a front can be drawn against, when the frame has the column with a finite value.
COSTS = ("params", "flops", "latency", "train_seconds")
#: costs measured in seconds (their axis gets a unit)
TIME_COSTS = ("latency", "train_seconds")


def available_costs(df: pd.DataFrame) -> list[str]:
    """The :data:`COSTS` that the frame records for at least one trial with a usable score."""
    ok = usable(df)
    return [
        c for c in COSTS if c in df.columns and np.isfinite(df.loc[ok, c].astype("float64")).any()
    ]


def pareto_front(df: pd.DataFrame, cost: str = "params") -> pd.DataFrame:
    """One point per architecture with a usable score and a cost, and whether it is on the
    front.

    Each architecture stands by its trial at the highest fidelity it reached that records
    the cost, with its best validation score there (the earliest trial on ties); retrained
    evaluations are left out.

    Returns:
        ``trial_id``, ``val_score``, ``cost`` (the value of the ``cost`` column),
        ``on_front`` (bool), ``stopped`` (bool: the trial was stopped by the search's deadline
        and stands with the score it reached), ``epochs``, ``rung`` and ``n_evals`` (see
        :func:`~autodlgym.analysis.leaderboard.leaderboard`), ``arch_id``, ``arch`` (one-line
        architecture summary, for points on the front), sorted by cost then score (best
        first).
    """
    from autodlgym.searchspace.spec import ArchSpec

    _require(df, "trial_id", "status", "val_score", "arch_id", cost)
    if "phase" in df.columns:
        df = df[df["phase"] == SEARCH]
    costs = pd.to_numeric(df[cost], errors="coerce").astype("float64")
    keep = usable(df) & pd.Series(np.isfinite(costs.to_numpy()), index=df.index)
    d = by_architecture(df, keep=keep)
    pts = pd.DataFrame(
        {
            "trial_id": d["trial_id"].to_numpy(),
            "val_score": d["val_score"].astype("float64").to_numpy(),
            "cost": d[cost].astype("float64").to_numpy(),
            "stopped": d["stopped"].to_numpy(dtype=bool),
            "epochs": d["epochs"].to_numpy() if "epochs" in d.columns else np.nan,
            "rung": d["rung"].to_numpy(dtype=np.int64),
            "n_evals": d["n_evals"].to_numpy(dtype=np.int64),
            "arch_id": d["arch_id"].astype("str").to_numpy(),
        }
    )
    pts = pts.sort_values(["cost", "val_score", "trial_id"], ascending=[True, False, True])
    pts = pts.reset_index(drop=True)
    # over distinct (cost, score) pairs, ordered by cost then score (best first), a pair is
    # on the front iff it beats every pair before it
    pairs = pts[["cost", "val_score"]].drop_duplicates()
    before = pairs["val_score"].cummax().shift(1, fill_value=-np.inf)
    front = pairs[pairs["val_score"] > before]
    key = pd.MultiIndex.from_frame(pts[["cost", "val_score"]])
    pts["on_front"] = key.isin(pd.MultiIndex.from_frame(front[["cost", "val_score"]]))
    specs = d.set_index("trial_id")["spec"] if "spec" in d.columns else None
    if specs is not None:
        pts["arch"] = [
            ArchSpec(json.loads(specs[t])).summary() if on else ""
            for t, on in zip(pts["trial_id"], pts["on_front"])
        ]
    else:
        pts["arch"] = ""
    return pts[
        ["trial_id", "val_score", "cost", "on_front", "stopped", "epochs", "rung", "n_evals",
         "arch_id", "arch"]
    ]  # fmt: skip


class _ParetoInfo(NamedTuple):
    points: pd.DataFrame
    cost: str


def plot_pareto(df: pd.DataFrame, cost: str = "params", ax: Axes | None = None) -> Figure:
    """Validation score against ``cost`` (log scale when it spans more than a decade), the
    front drawn as a step line; one point per architecture (see :func:`pareto_front`),
    stopped ones ringed. An empty figure (and a warning) with no usable trial that records
    that cost."""
    info = _ParetoInfo(pareto_front(df, cost), cost)
    title = f"Pareto front: validation score vs {cost}"
    pts = info.points
    if pts.empty:
        return empty_figure(title, f"no ok trial records {cost}", ax)
    ax = new_axes(ax)
    label = cost
    if cost in TIME_COSTS:  # seconds, drawn in a unit that reads (ms for a latency)
        factor, unit = time_unit(float(pts["cost"].max()))
        pts = pts.assign(cost=pts["cost"] * factor)
        label = f"{cost} ({unit})"
    ax.scatter(
        pts["cost"], pts["val_score"], s=10, alpha=0.4, color="#0072B2", label="architecture"
    )
    stopped = pts[pts["stopped"]]
    if len(stopped):
        ax.scatter(
            stopped["cost"], stopped["val_score"], s=60, facecolors="none", edgecolors="#000000",
            label=f"stopped at the deadline ({len(stopped)})",
        )  # fmt: skip
    f = pts[pts["on_front"]]
    ax.step(f["cost"], f["val_score"], where="post", color="#D55E00", lw=1.5)
    ax.scatter(f["cost"], f["val_score"], s=28, color="#D55E00", label=f"front ({len(f)})")
    positive = pts["cost"][pts["cost"] > 0]
    if len(positive) and positive.max() > 10 * positive.min() and (pts["cost"] > 0).all():
        ax.set_xscale("log")
    ax.set_xlabel(label + ", lower is better")
    ax.set_ylabel("validation score")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    return ax.figure
