"""ASHA promotion chains: which architectures went up from rung to rung, with what scores.

Under ``--pruner asha`` a promotion is a new trial of the same spec at the next rung's
fidelity (:mod:`autodlgym.execution.rungs`), so an architecture's chain is its trials in
rung order. Rungs are the run's distinct fidelities, low to high
(:func:`~autodlgym.results.ranking.rungs`). At each rung an architecture stands by its best
usable score there (the earliest trial on ties), or, with none, by its earliest trial (a
failure at that rung).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from autodlgym.analysis._figures import empty_figure, new_axes
from autodlgym.analysis.leaderboard import _require
from autodlgym.results.ranking import rungs, usable

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _at_rungs(df: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture and rung it reached (see the module docstring)."""
    _require(df, "trial_id", "arch_id", "status", "val_score")
    d = df.assign(rung=rungs(df), _usable=usable(df))
    d["_score"] = d["val_score"].astype("float64").where(d["_usable"], -np.inf)
    d = d.sort_values(["arch_id", "rung", "_usable", "_score", "trial_id"],
                      ascending=[True, True, False, False, True], kind="stable")  # fmt: skip
    d = d.drop_duplicates(["arch_id", "rung"])
    top = d.groupby("arch_id")["rung"].transform("max")
    d["promoted"] = d["rung"] < top
    d["top_rung"] = top
    return d


def promotion_chains(df: pd.DataFrame) -> pd.DataFrame:
    """The architectures that reached more than one rung, one row per rung they reached.

    Returns:
        ``arch_id``, ``rung``, ``trial_id``, ``epochs``, ``status``, ``val_score`` (NaN when
        the trial has no usable score), ``promoted`` (it went on to a higher rung),
        ``top_rung``; the architectures that went highest first (then by their best score
        at their top rung), each in rung order. Empty when the run has one fidelity.
    """
    d = _at_rungs(df)
    d = d[d.groupby("arch_id")["rung"].transform("size") >= 2]
    cols = ["arch_id", "rung", "trial_id", "epochs", "status", "val_score", "promoted"]
    cols.append("top_rung")
    if d.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    final = d[~d["promoted"]].set_index("arch_id")["_score"]
    d = d.assign(_final=d["arch_id"].map(final))
    d = d.sort_values(["top_rung", "_final", "arch_id", "rung"],
                      ascending=[False, False, True, True], kind="stable")  # fmt: skip
    d["val_score"] = d["val_score"].astype("float64").where(d["_usable"])
    return d[cols].reset_index(drop=True)


def rung_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per rung: ``rung``, ``epochs``, ``max_train_samples``, ``max_examples`` (only where a
    rung has one: the first batches of an epoch), ``trials``, ``architectures`` (distinct ones
    that reached it), ``promoted`` (of those, how many went higher), ``best`` (best usable
    score there; NaN without one)."""
    d = df.assign(rung=rungs(df), _usable=usable(df))
    at = _at_rungs(df)
    rows = []
    for k, g in d.groupby("rung", sort=True):
        a = at[at["rung"] == k]
        scores = g.loc[g["_usable"], "val_score"].astype("float64")
        samples = g["max_train_samples"].iloc[0] if "max_train_samples" in g.columns else None
        samples = np.nan if samples is None or pd.isna(samples) else float(samples)  # NaN: all
        examples = g["max_examples"].iloc[0] if "max_examples" in g.columns else None
        examples = np.nan if examples is None or pd.isna(examples) else float(examples)
        rows.append(
            {
                "rung": int(k),
                "epochs": g["epochs"].iloc[0] if "epochs" in g.columns else np.nan,
                "max_train_samples": samples,
                "max_examples": examples,
                "trials": len(g),
                "architectures": int(g["arch_id"].nunique()),
                "promoted": int(a["promoted"].sum()),
                "best": float(scores.max()) if len(scores) else np.nan,
            }
        )
    cols = ["rung", "epochs", "max_train_samples", "max_examples", "trials", "architectures",
            "promoted", "best"]  # fmt: skip
    if "max_examples" not in df.columns:
        cols.remove("max_examples")
    return pd.DataFrame(rows, columns=cols)


def plot_promotions(df: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Validation score by rung: every architecture at rung 0 as a point, each promotion
    chain as a line through the rungs it reached, coloured by how high it went. An empty
    figure (and a warning) when the run has one fidelity."""
    chains = promotion_chains(df)
    title = "Promotions between rungs"
    if chains.empty:
        return empty_figure(title, "every trial ran at one fidelity: nothing was promoted", ax)
    at = _at_rungs(df)
    top = int(at["rung"].max())
    ax = new_axes(ax, (6.4, 4.2))
    rng = np.random.default_rng(0)
    for k in range(top + 1):
        here = at[(at["rung"] == k) & at["_usable"]]
        x = k + rng.uniform(-0.12, 0.12, len(here))
        ax.scatter(x, here["val_score"].astype("float64"), s=6, color="#999999", alpha=0.5,
                   linewidths=0, zorder=1)  # fmt: skip
    colors = ["#E69F00", "#009E73", "#0072B2", "#D55E00", "#CC79A7"]
    drawn: set[int] = set()
    for _, g in chains.groupby("arch_id", sort=False):
        g = g.dropna(subset=["val_score"])
        if g.empty:
            continue
        reach = int(g["top_rung"].iloc[0])
        color = colors[min(reach, len(colors)) - 1]
        label = None if reach in drawn else f"reached rung {reach}"
        drawn.add(reach)
        ax.plot(g["rung"], g["val_score"], color=color, lw=0.9, marker="o", ms=3, alpha=0.8,
                label=label, zorder=2 + reach)  # fmt: skip
    ax.set_xticks(range(top + 1))
    ax.set_xlabel("rung (low to high fidelity)")
    ax.set_ylabel("validation score")
    n = chains["arch_id"].nunique()
    ax.set_title(f"{title} ({n} architectures promoted at least once)", fontsize="medium")
    ax.legend(loc="lower right", fontsize="x-small")
    return ax.figure
