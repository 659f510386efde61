"""The final scores of a run: test against validation, and their distribution (EDF).

One point per architecture (:func:`~autodlgym.results.ranking.by_architecture`: its trial at
the highest fidelity it reached, with its best validation score there), of the trials with a
usable score. A trial stopped by the search's deadline keeps its validation score but was
never tested, so it is in the distribution and not in the test-against-validation plot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from autodlgym.analysis._figures import empty_figure, new_axes
from autodlgym.analysis._stats import spearman
from autodlgym.analysis.slices import points

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def val_test_scores(df: pd.DataFrame) -> pd.DataFrame:
    """The architectures with both scores: ``trial_id``, ``arch_id``, ``val_score``,
    ``test_score``, ``rung``, ``n_evals``; by trial."""
    pts = points(df)
    cols = ["trial_id", "arch_id", "val_score", "test_score", "rung", "n_evals"]
    if "test_score" not in pts.columns:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    test = pts["test_score"].astype("float64")
    return pts.loc[np.isfinite(test.to_numpy()), cols].reset_index(drop=True)


def score_edf(df: pd.DataFrame) -> pd.DataFrame:
    """The empirical distribution of the architectures' validation scores: ``val_score``
    ascending, ``fraction`` (of architectures scoring at most that), ``stopped``."""
    pts = points(df)
    if pts.empty:
        return pd.DataFrame(
            {
                "val_score": pd.Series(dtype="float64"),
                "fraction": pd.Series(dtype="float64"),
                "stopped": pd.Series(dtype="bool"),
            }  # fmt: skip
        )
    s = pts.sort_values(["val_score", "trial_id"], kind="stable")
    n = len(s)
    return pd.DataFrame(
        {
            "val_score": s["val_score"].astype("float64").to_numpy(),
            "fraction": np.arange(1, n + 1) / n,
            "stopped": s["stopped"].astype(bool).to_numpy(),
        }
    )


def plot_val_test_scores(df: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Test score against validation score, one point per architecture, with the diagonal
    and Spearman's rho in the title; the best by validation marked. An empty figure (and a
    warning) when no architecture has both scores."""
    pts = val_test_scores(df)
    title = "Test against validation score"
    if pts.empty:
        return empty_figure(title, "no architecture has a test score", ax)
    ax = new_axes(ax, (5.2, 4.4))
    ax.scatter(pts["val_score"], pts["test_score"], s=10, alpha=0.5, color="#0072B2")
    lo = float(min(pts["val_score"].min(), pts["test_score"].min()))
    hi = float(max(pts["val_score"].max(), pts["test_score"].max()))
    pad = 0.03 * (hi - lo) or 0.01
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#999999", lw=0.8, ls="--",
            label="test = validation")  # fmt: skip
    best = pts.sort_values(["val_score", "trial_id"], ascending=[False, True]).iloc[0]
    ax.scatter([best["val_score"]], [best["test_score"]], s=60, color="#D55E00", zorder=5,
               label=f"best by validation: trial {int(best['trial_id'])}")  # fmt: skip
    rho = spearman(pts["val_score"].to_numpy(), pts["test_score"].to_numpy())[0]
    rho_txt = "" if np.isnan(rho) else f", Spearman's rho {rho:.2f}"
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("validation score")
    ax.set_ylabel("test score")
    ax.set_title(f"{title}\n({len(pts)} architectures{rho_txt})", fontsize="medium")
    ax.legend(loc="upper left", fontsize="x-small")
    return ax.figure


def plot_score_edf(df: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """:func:`score_edf` as a step plot (further right is better); stopped architectures
    marked on the curve. An empty figure (and a warning) with no scored architecture."""
    edf = score_edf(df)
    title = "Distribution of the architectures' validation scores"
    if edf.empty:
        return empty_figure(title, "no trial has a usable score", ax)
    ax = new_axes(ax, (5.2, 4.4))
    v = edf["val_score"].to_numpy()
    f = edf["fraction"].to_numpy()
    ax.step(np.concatenate([[v[0]], v]), np.concatenate([[0.0], f]), where="post",
            color="#0072B2", lw=1.8, label=f"{len(v)} architectures")  # fmt: skip
    st = edf[edf["stopped"]]
    if len(st):
        ax.scatter(st["val_score"], st["fraction"], s=30, facecolors="none", edgecolors="#000",
                   label=f"stopped at the deadline ({len(st)})", zorder=4)  # fmt: skip
    ax.set_ylim(0, 1.03)
    ax.set_xlabel("validation score")
    ax.set_ylabel("fraction of architectures at or below")
    ax.set_title(title, fontsize="medium")
    ax.legend(loc="upper left", fontsize="x-small")
    return ax.figure
