"""Do measurements at initialisation predict the final score?

Four diagnostics of :mod:`autodlgym.training.diagnostics` against the validation score of
``ok`` trials, each with Spearman's rank correlation (scipy):

- ``hanin``: Hanin & Rolnick's sum of 1 / width over hidden layers (``diag_hanin``);
- ``gain_spread``: log10 of the largest over the smallest per-block activation gain
  (``diag_gain_max / diag_gain_min``, or the ``gains`` list of the ``diagnostics`` column):
  0 when every block scales the signal alike;
- ``grad_norm``: L2 norm of the loss gradient over all parameters (``diag_grad_norm_total``);
- ``naswot``: Mellor et al.'s NASWOT score (``diag_naswot``).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from autodlgym.analysis._figures import empty_figure, new_figure
from autodlgym.analysis.leaderboard import _require
from autodlgym.trial import OK

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

#: Diagnostic name -> how it reads from a results frame.
DIAGNOSTICS = ("hanin", "gain_spread", "grad_norm", "naswot")
_COLUMNS = {"hanin": "diag_hanin", "grad_norm": "diag_grad_norm_total", "naswot": "diag_naswot"}


def _values(df: pd.DataFrame, name: str) -> np.ndarray:
    if name == "gain_spread":
        if "diag_gain_max" in df and "diag_gain_min" in df:
            hi = df["diag_gain_max"].astype("float64").to_numpy()
            lo = df["diag_gain_min"].astype("float64").to_numpy()
        elif "diagnostics" in df:  # the trainer stores the per-block gains as a list
            hi, lo = np.full(len(df), np.nan), np.full(len(df), np.nan)
            for i, text in enumerate(df["diagnostics"]):
                gains = [g for g in (json.loads(text or "{}").get("gains") or []) if g]
                gains = [g for g in gains if isinstance(g, int | float) and math.isfinite(g)]
                if gains:
                    hi[i], lo[i] = max(gains), min(gains)
        else:
            return np.full(len(df), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where((lo > 0) & (hi > 0), np.log10(hi / lo), np.nan)
    col = _COLUMNS[name]
    return df[col].astype("float64").to_numpy() if col in df else np.full(len(df), np.nan)


def init_diagnostics(df: pd.DataFrame) -> pd.DataFrame:
    """The four diagnostics of every ``ok`` trial, in long form.

    Returns:
        ``trial_id``, ``diagnostic`` (one of :data:`DIAGNOSTICS`), ``value``, ``val_score``;
        only rows where both numbers are finite.
    """
    _require(df, "trial_id", "status", "val_score")
    ok = df[df["status"] == OK]
    score = ok["val_score"].astype("float64").to_numpy()
    parts = []
    for name in DIAGNOSTICS:
        v = _values(ok, name)
        keep = np.isfinite(v) & np.isfinite(score)
        parts.append(
            pd.DataFrame(
                {
                    "trial_id": ok["trial_id"].to_numpy()[keep],
                    "diagnostic": name,
                    "value": v[keep],
                    "val_score": score[keep],
                }
            )
        )
    return pd.concat(parts, ignore_index=True).astype(
        {"trial_id": "int64", "diagnostic": "str", "value": "float64", "val_score": "float64"}
    )


def diagnostic_correlations(df: pd.DataFrame) -> pd.DataFrame:
    """Spearman's rho of each diagnostic with the validation score of ``ok`` trials.

    Returns:
        One row per diagnostic in :data:`DIAGNOSTICS` order: ``diagnostic``, ``n`` (trials
        with both numbers), ``rho`` and ``p_value`` (NaN with fewer than 3 trials or a
        constant column).
    """
    from autodlgym.analysis._stats import spearman

    long = init_diagnostics(df)
    rows = []
    for name in DIAGNOSTICS:
        sub = long[long["diagnostic"] == name]
        rho = p = np.nan
        if len(sub) >= 3 and sub["value"].nunique() > 1 and sub["val_score"].nunique() > 1:
            rho, p = spearman(sub["value"].to_numpy(), sub["val_score"].to_numpy())
        rows.append({"diagnostic": name, "n": len(sub), "rho": rho, "p_value": p})
    return pd.DataFrame(rows).astype(
        {"diagnostic": "str", "n": "int64", "rho": "float64", "p_value": "float64"}
    )


class _DiagInfo(NamedTuple):
    points: pd.DataFrame
    correlations: pd.DataFrame


def plot_init_diagnostics(df: pd.DataFrame) -> Figure:
    """One panel per diagnostic: validation score against the diagnostic, rho in the panel.

    Returns:
        The figure; an empty one (and a warning) when no ``ok`` trial recorded a diagnostic.
    """
    info = _DiagInfo(init_diagnostics(df), diagnostic_correlations(df))
    title = "Diagnostics at initialisation vs final score"
    if info.points.empty:
        return empty_figure(title, "no ok trial recorded init diagnostics")
    fig = new_figure((11.0, 3.2), left=0.7, top=0.5)
    axes = fig.subplots(1, len(DIAGNOSTICS), sharey=True, gridspec_kw={"wspace": 0.08})
    for ax, (_, row) in zip(axes, info.correlations.iterrows()):
        name = row["diagnostic"]
        sub = info.points[info.points["diagnostic"] == name]
        ax.scatter(sub["value"], sub["val_score"], s=10, alpha=0.5, color="#0072B2")
        rho = "n/a" if np.isnan(row["rho"]) else f"{row['rho']:+.2f}"
        ax.text(
            0.03, 0.97, f"Spearman rho = {rho}\nn = {row['n']}", transform=ax.transAxes,
            va="top", fontsize="small", bbox={"facecolor": "white", "alpha": 0.8, "lw": 0},
        )  # fmt: skip
        v = sub["value"]
        if len(v) and (v > 0).all() and v.max() > 100 * v.min():
            ax.set_xscale("log")
        ax.set_xlabel(name)
    axes[0].set_ylabel("validation score")
    fig.suptitle(title)
    return fig
