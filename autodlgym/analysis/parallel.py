"""Parallel coordinates: each architecture as a line through its options, coloured by score.

The points are those of the slice plot (:func:`~autodlgym.analysis.slices.points`: one per
architecture at its highest fidelity, with a usable score). Each decision is a vertical axis
with its options in order (numbers on their own scale, log when they span 10x or more,
categories evenly spaced), rescaled to 0-1; the last axis is the validation score. A
decision the architecture does not have (a stage it lacks) leaves a gap in its line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from autodlgym.analysis._figures import empty_figure, new_figure
from autodlgym.analysis.effects import _short
from autodlgym.analysis.slices import _key, decision_axis, points, varying_decisions

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from autodlgym.searchspace.space import SearchSpace


def parallel_coordinates(
    df: pd.DataFrame,
    decisions: list[str] | None = None,
    space: SearchSpace | None = None,
    max_decisions: int = 8,
) -> pd.DataFrame:
    """Where each architecture's line crosses each axis.

    Args:
        df: a results frame.
        decisions: candidate decisions in order of interest (default: frame order); the first
            ``max_decisions`` that take two values or more are drawn.
        space: the run's search space (its option order).

    Returns:
        Long form, one row per architecture and axis: ``trial_id``, ``arch_id``, ``axis``
        (a decision, then ``val_score``), ``value`` (the option, or the score), ``y`` (the
        position on the axis, 0-1; NaN where the architecture lacks the decision),
        ``val_score``, ``stopped``. Axes in drawing order, then by trial.
    """
    pts = points(df)
    names = varying_decisions(pts, decisions)[:max_decisions]
    cols = ["trial_id", "arch_id", "axis", "value", "y", "val_score", "stopped"]
    if pts.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    score = pts["val_score"].astype("float64").to_numpy()
    parts = []
    for name in names:
        axis = decision_axis(pts[name], space)
        pos = axis.position(pts[name])
        t = np.log10(axis.positions) if axis.scale == "log" else axis.positions
        p = np.log10(pos) if axis.scale == "log" else pos
        lo, hi = float(t.min()), float(t.max())
        parts.append(
            (name, pts[name].astype(object).map(lambda v: None if pd.isna(v) else _key(v)),
             (p - lo) / (hi - lo) if hi > lo else np.full(len(p), 0.5))
        )  # fmt: skip
    lo, hi = float(score.min()), float(score.max())
    parts.append(("val_score", score, (score - lo) / (hi - lo) if hi > lo else score * 0 + 0.5))
    frames = [
        pd.DataFrame(
            {
                "trial_id": pts["trial_id"].to_numpy(),
                "arch_id": pts["arch_id"].to_numpy(),
                "axis": name,
                "value": list(values),
                "y": np.asarray(y, dtype="float64"),
                "val_score": score,
                "stopped": pts["stopped"].astype(bool).to_numpy(),
            }
        )
        for name, values, y in parts
    ]
    return pd.concat(frames, ignore_index=True)[cols]


def plot_parallel_coordinates(
    df: pd.DataFrame,
    decisions: list[str] | None = None,
    space: SearchSpace | None = None,
    max_decisions: int = 8,
    ax: Axes | None = None,
) -> Figure:
    """One line per architecture across the axes of :func:`parallel_coordinates`, coloured
    by validation score (the best on top, the very best bold); each axis labelled with its
    options. An empty figure (and a warning) without a scored architecture."""
    from matplotlib.collections import LineCollection

    data = parallel_coordinates(df, decisions, space, max_decisions)
    title = "Parallel coordinates (one line per architecture, coloured by validation score)"
    if data.empty or data["axis"].nunique() < 2:
        return empty_figure(title, "no decision takes two values among the scored trials", ax)
    axes_names = list(dict.fromkeys(data["axis"]))
    wide = data.pivot(index="trial_id", columns="axis", values="y")[axes_names]
    score = data.drop_duplicates("trial_id").set_index("trial_id")["val_score"]
    score = score.reindex(wide.index)
    order = np.argsort(score.to_numpy(), kind="stable")  # best drawn last, on top
    wide, score = wide.iloc[order], score.iloc[order]
    k = len(axes_names)
    fig = new_figure((max(6.4, 1.3 * k + 1.5), 4.6), left=0.5, right=1.3, bottom=0.9, top=0.5)
    ax = fig.add_subplot()
    xs = np.arange(k, dtype="float64")
    y = wide.to_numpy(dtype="float64")
    # a segment between each pair of neighbouring axes the architecture has (a gap where it
    # lacks a decision)
    both = np.isfinite(y[:, :-1]) & np.isfinite(y[:, 1:])
    rows_, cols_ = np.nonzero(both)
    segments = np.stack(
        [np.column_stack([xs[cols_], y[rows_, cols_]]),
         np.column_stack([xs[cols_ + 1], y[rows_, cols_ + 1]])], axis=1,
    )  # fmt: skip
    seg_scores = score.to_numpy()[rows_]
    lines = LineCollection(segments, cmap="viridis", linewidths=0.8, alpha=0.55)
    lines.set_array(np.asarray(seg_scores))
    ax.add_collection(lines)
    best = y[-1]
    ax.plot(xs[np.isfinite(best)], best[np.isfinite(best)], color="#D55E00", lw=2.2)
    for j, name in enumerate(axes_names):
        ax.axvline(j, color="#555555", lw=0.8)
        sub = data[data["axis"] == name].dropna(subset=["y"])
        if name == "val_score":
            lo, hi = float(sub["value"].min()), float(sub["value"].max())
            marks = [(0.0, f"{lo:.3g}"), (1.0, f"{hi:.3g}")] if hi > lo else [(0.5, f"{lo:.3g}")]
        else:
            ticks = sub.drop_duplicates("y").sort_values("y")
            marks = [(float(t), _short(v, 8)) for t, v in zip(ticks["y"], ticks["value"])]
            if len(marks) > 8:  # a crowded axis: its ends and middle
                marks = [marks[0], marks[len(marks) // 2], marks[-1]]
        for t, text in marks:
            ax.text(j + 0.04, t, text, fontsize="xx-small", va="center", color="#333333")
    ax.set_xticks(xs, [_short(n, 16) for n in axes_names], rotation=30, ha="right",
                  fontsize="x-small")  # fmt: skip
    ax.set_yticks([])
    ax.set_xlim(-0.2, k - 0.6)
    ax.set_ylim(-0.05, 1.05)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig.colorbar(lines, ax=ax, label="validation score", pad=0.02, fraction=0.04)
    ax.set_title(
        f"{title}\nred: the best, trial {int(score.index[-1])} ({score.iloc[-1]:.4f})",
        fontsize="medium",
    )
    return fig
