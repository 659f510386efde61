"""Two decisions at once: the mean validation score of each pair of options, as a grid.

The search spaces here are grids of options, so the contour of two decisions is a table:
one cell per pair of options, coloured by the mean score of the architectures that took
that pair (:func:`~autodlgym.analysis.slices.points`: one per architecture at its highest
fidelity, usable scores only), with its count; a pair no architecture took stays blank. The
report draws it for the two decisions that :func:`~autodlgym.analysis.effects.decision_importance`
ranks first (Optuna's PED-ANOVA).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from autodlgym.analysis._figures import empty_figure, new_figure
from autodlgym.analysis.effects import _short
from autodlgym.analysis.slices import _key, decision_axis, points, varying_decisions
from autodlgym.errors import AutoDLError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from autodlgym.searchspace.space import SearchSpace


def pair_grid(
    df: pd.DataFrame, first: str, second: str, space: SearchSpace | None = None
) -> pd.DataFrame:
    """The mean and best validation score of each pair of options of two decisions.

    Returns:
        One row per pair taken by at least one architecture: ``first`` and ``second`` (the
        options), ``n`` (architectures), ``mean``, ``best``; in option order (see
        :func:`~autodlgym.analysis.slices.decision_axis`), ``first`` varying slowest.

    Raises:
        AutoDLError: a decision that is not a column of ``df``, or the same one twice.
    """
    if first == second:
        raise AutoDLError(f"a pair needs two different decisions, got {first!r} twice")
    for name in (first, second):
        if name not in df.columns:
            raise AutoDLError(f"no decision {name!r} in the results")
    pts = points(df).dropna(subset=[first, second])
    cols = [first, second, "n", "mean", "best"]
    if pts.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    a = decision_axis(pts[first], space)
    b = decision_axis(pts[second], space)
    frame = pd.DataFrame(
        {
            "ia": _index(a, pts[first]),
            "ib": _index(b, pts[second]),
            "score": pts["val_score"].astype("float64").to_numpy(),
        }
    )
    g = frame.groupby(["ia", "ib"], sort=True)["score"].agg(n="size", mean="mean", best="max")
    g = g.reset_index()
    out = pd.DataFrame(
        {
            first: [a.options[int(i)] for i in g["ia"]],
            second: [b.options[int(i)] for i in g["ib"]],
            "n": g["n"].astype("int64"),
            "mean": g["mean"].astype("float64"),
            "best": g["best"].astype("float64"),
        }
    )
    return out[cols]


def _index(axis, values: pd.Series) -> np.ndarray:
    at = {_key(o): i for i, o in enumerate(axis.options)}
    return np.array([at[_key(v)] for v in values], dtype="float64")


def top_pair(df: pd.DataFrame, ranked: list[str]) -> tuple[str, str] | None:
    """The first two of ``ranked`` (decisions, most important first) that take two values or
    more among the scored architectures; None when fewer than two do."""
    names = varying_decisions(points(df), ranked)
    return (names[0], names[1]) if len(names) >= 2 else None


def plot_pair(
    df: pd.DataFrame,
    first: str,
    second: str,
    space: SearchSpace | None = None,
    ax: Axes | None = None,
) -> Figure:
    """:func:`pair_grid` as a heat map: each cell the mean score of its pair with ``n``
    written in it; blank where no architecture took the pair."""
    grid = pair_grid(df, first, second, space)
    title = f"Mean validation score by {first} and {second}"
    if grid.empty:
        return empty_figure(title, "no scored architecture has both decisions", ax)
    pts = points(df).dropna(subset=[first, second])
    a = decision_axis(pts[first], space).options
    b = decision_axis(pts[second], space).options
    z = np.full((len(b), len(a)), np.nan)
    n = np.zeros((len(b), len(a)), dtype=int)
    ia = {_key(o): i for i, o in enumerate(a)}
    ib = {_key(o): i for i, o in enumerate(b)}
    for va, vb, cnt, m in zip(grid[first], grid[second], grid["n"], grid["mean"]):
        z[ib[_key(vb)], ia[_key(va)]] = m
        n[ib[_key(vb)], ia[_key(va)]] = cnt
    w = min(11.0, 1.6 + 0.55 * len(a))
    h = min(9.0, 1.4 + 0.4 * len(b))
    fig = new_figure((max(w, 4.5), max(h, 3.0)), left=1.2, bottom=1.0, right=1.2)
    ax = fig.add_subplot()
    mesh = ax.imshow(np.ma.masked_invalid(z), cmap="viridis", aspect="auto", origin="lower")
    if z.size <= 400:
        finite = z[np.isfinite(z)]
        mid = (finite.min() + finite.max()) / 2
        for j in range(len(b)):
            for i in range(len(a)):
                if n[j, i]:
                    ax.text(i, j, f"{z[j, i]:.3f}\nn={n[j, i]}", ha="center", va="center",
                            fontsize="xx-small", color="white" if z[j, i] < mid else "black")  # fmt: skip
    ax.set_xticks(range(len(a)), [_short(o) for o in a], fontsize="x-small",
                  rotation=90 if len(a) > 6 else 0)  # fmt: skip
    ax.set_yticks(range(len(b)), [_short(o) for o in b], fontsize="x-small")
    ax.set_xlabel(first)
    ax.set_ylabel(second)
    fig.colorbar(mesh, ax=ax, label="mean validation score", fraction=0.05, pad=0.02)
    ax.set_title(title + "\n(one architecture each, at its highest fidelity)", fontsize="medium")
    return fig
