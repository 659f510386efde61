"""Slice plots: the validation score against each decision, one panel per decision.

One point per architecture (:func:`~autodlgym.results.ranking.by_architecture`: its trial at
the highest fidelity it reached, with its best validation score there), of the trials with a
usable score (``ok``, or ``stopped`` by the search's deadline with the score it reached;
stopped ones are drawn hollow). A numeric decision sits on its own scale (log when its
options span 10x or more, as in the per-decision effects); a categorical one has its options
evenly spaced in the space's order, each tick with the number of architectures that chose
it. :func:`decision_axis` places options the same way for the parallel coordinates and the
pair plot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from autodlgym.analysis._figures import empty_figure, new_figure
from autodlgym.analysis.effects import _is_number, _option_order, _positions, _short
from autodlgym.analysis.leaderboard import _require, choice_columns
from autodlgym.results.ranking import by_architecture

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from autodlgym.searchspace.space import SearchSpace


class DecisionAxis(NamedTuple):
    """Where a decision's options go on an axis: ``options`` in order, their ``positions``
    and the axis ``scale`` (``"linear"``, ``"log"`` or ``"even"``)."""

    options: list[Any]
    positions: np.ndarray
    scale: str

    def position(self, values: pd.Series) -> np.ndarray:
        """The positions of ``values`` (NaN for a value that is not an option)."""
        at = {_key(o): float(p) for o, p in zip(self.options, self.positions)}
        return np.array([at.get(_key(v), np.nan) for v in values], dtype="float64")


def _key(v: object) -> object:
    # 1 and 1.0 are one option; numpy scalars compare as Python ones
    if _is_number(v):
        return float(v)  # type: ignore[arg-type]
    return v if isinstance(v, (str, bool)) or v is None else str(v)


def decision_axis(values: pd.Series, space: SearchSpace | None = None) -> DecisionAxis:
    """The axis of a decision whose points take ``values`` (NaN: the decision is inactive).

    The options seen, in the space's option order when the decision is in ``space``
    (ascending for numbers otherwise); numbers on their own scale, categories evenly spaced
    (see :func:`~autodlgym.analysis.effects._positions`).
    """
    seen = list(dict.fromkeys(_key(v) for v in values.dropna()))
    name = str(values.name)
    order = list(space[name].options) if space is not None and name in space.names else None
    options = [seen[i] for i in _option_order(seen, order)]
    positions, scale = _positions(options)
    return DecisionAxis(options, positions, scale)


def points(df: pd.DataFrame) -> pd.DataFrame:
    """The architectures the decision views draw: :func:`by_architecture` of the search's
    trials (one row per architecture with a usable score), in ``trial_id`` order."""
    _require(df, "trial_id", "status", "val_score", "arch_id")
    return by_architecture(df).reset_index(drop=True)


def varying_decisions(pts: pd.DataFrame, decisions: list[str] | None = None) -> list[str]:
    """``decisions`` (default: every decision column), keeping those with two values or more
    among ``pts``, in the given order."""
    cols = decisions if decisions is not None else choice_columns(pts)
    out = []
    for c in cols:
        if c in pts.columns and pts[c].dropna().map(_key).nunique() >= 2:
            out.append(c)
    return out


def slice_data(
    df: pd.DataFrame, decisions: list[str] | None = None, space: SearchSpace | None = None
) -> pd.DataFrame:
    """One row per architecture and decision it has, for the slice plot.

    Args:
        df: a results frame.
        decisions: the decisions to slice, in this order (default: every decision with two
            values or more among the architectures).
        space: the run's search space (its option order).

    Returns:
        ``decision``, ``trial_id``, ``arch_id``, ``value`` (the option), ``x`` (its position:
        see :func:`decision_axis`), ``scale``, ``val_score``, ``stopped``, ``rung``; decisions
        in order, then by trial.
    """
    pts = points(df)
    cols = ["decision", "trial_id", "arch_id", "value", "x", "scale", "val_score", "stopped"]
    cols.append("rung")
    parts = []
    for d in varying_decisions(pts, decisions):
        has = pts[pts[d].notna()]
        axis = decision_axis(pts[d], space)
        parts.append(
            pd.DataFrame(
                {
                    "decision": d,
                    "trial_id": has["trial_id"].to_numpy(),
                    "arch_id": has["arch_id"].to_numpy(),
                    "value": has[d].astype(object).map(_key).to_numpy(),
                    "x": axis.position(has[d]),
                    "scale": axis.scale,
                    "val_score": has["val_score"].astype("float64").to_numpy(),
                    "stopped": has["stopped"].astype(bool).to_numpy(),
                    "rung": has["rung"].astype("int64").to_numpy(),
                }
            )
        )
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    return pd.concat(parts, ignore_index=True)[cols]


def plot_slices(
    df: pd.DataFrame,
    decisions: list[str] | None = None,
    space: SearchSpace | None = None,
    max_decisions: int = 12,
    ax: Axes | None = None,
) -> Figure:
    """The validation score against each decision, one panel per decision (the first
    ``max_decisions`` of ``decisions``; see :func:`slice_data`). Points are spread a little
    sideways so that many on one option stay visible; ticks say how many architectures
    took each option. An empty figure (and a warning) when no decision varies."""
    data = slice_data(df, decisions, space)
    title = "Validation score by decision (one point per architecture)"
    if data.empty:
        return empty_figure(title, "no decision takes two values among the scored trials", ax)
    names = list(dict.fromkeys(data["decision"]))
    total = len(names)
    names = names[:max_decisions]
    k = len(names)
    ncols = min(4, k)
    nrows = -(-k // ncols)
    fig = new_figure((2.6 * ncols + 0.4, 2.4 * nrows + 1.2), bottom=0.6, top=0.9)
    fig.subplots_adjust(hspace=1.0, wspace=0.15)
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    for a in axes[k:]:
        a.set_axis_off()
    rng = np.random.default_rng(0)
    for a, name in zip(axes, names):
        rows = data[data["decision"] == name]
        _slice_panel(a, name, rows, rng)
    for r in range(nrows):
        axes[r * ncols].set_ylabel("validation score", fontsize="small")
    of = f"{k} of {total} decisions; " if k < total else ""
    fig.suptitle(f"{title}\n{of}hollow: stopped at the deadline", fontsize="medium")
    return fig


def _slice_panel(ax: Axes, name: str, rows: pd.DataFrame, rng: np.random.Generator) -> None:
    scale = str(rows["scale"].iloc[0])
    ticks = rows.groupby("x", sort=True).agg(value=("value", "first"), n=("value", "size"))
    xs = ticks.index.to_numpy(dtype="float64")
    x = rows["x"].to_numpy(dtype="float64")
    # spread within a fraction of the smallest gap between options, on the axis's own scale
    t = np.log10(xs) if scale == "log" else xs
    gap = float(np.diff(t).min()) if len(t) > 1 else 1.0
    jitter = rng.uniform(-0.18, 0.18, len(x)) * gap
    x = 10 ** (np.log10(x) + jitter) if scale == "log" else x + jitter
    stopped = rows["stopped"].to_numpy(dtype=bool)
    y = rows["val_score"].to_numpy(dtype="float64")
    ax.scatter(x[~stopped], y[~stopped], s=8, alpha=0.5, color="#0072B2", linewidths=0)
    if stopped.any():
        ax.scatter(x[stopped], y[stopped], s=16, facecolors="none", edgecolors="#000000", lw=0.7)
    if scale == "log":
        ax.set_xscale("log")
        ax.minorticks_off()
    labels = [f"{_short(v)}\nn={n}" for v, n in zip(ticks["value"], ticks["n"])]
    turn = len(labels) > 5
    ax.set_xticks(xs, labels, fontsize="x-small", rotation=90 if turn else 0)
    if scale == "even":
        ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_title(name, fontsize="small")
    ax.tick_params(axis="y", labelsize="x-small")
    ax.grid(axis="y", color="#eeeeee", lw=0.6)
