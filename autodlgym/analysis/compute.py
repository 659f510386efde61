"""Where the compute went: seconds by trial status and by block type.

A trial's seconds are its training plus evaluation seconds (failures count what they spent
before failing). A trial with several stages shares its seconds equally among its stages, so
the seconds by block type add up to the run's total over trials that have stages.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from autodlgym.analysis._figures import (
    STATUS_COLORS,
    empty_figure,
    label_inches,
    new_figure,
    time_unit,
)
from autodlgym.analysis.leaderboard import _require

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

_BLOCK_KEY = re.compile(r"stage(\d+)\.block$")


def trial_seconds(df: pd.DataFrame) -> pd.Series:
    """Training + evaluation seconds of each trial (missing parts count as 0)."""
    out = pd.Series(0.0, index=df.index)
    for col in ("train_seconds", "eval_seconds"):
        if col in df.columns:
            out = out + df[col].astype("float64").fillna(0.0)
    return out


def compute_by_status(df: pd.DataFrame) -> pd.DataFrame:
    """``status``, ``trials``, ``seconds``, ``share`` (of all seconds), most seconds first."""
    _require(df, "status")
    secs = trial_seconds(df)
    g = pd.DataFrame({"status": df["status"].astype("str"), "seconds": secs}).groupby("status")
    out = g["seconds"].agg(trials="count", seconds="sum").reset_index()
    total = out["seconds"].sum()
    out["share"] = out["seconds"] / total if total > 0 else np.nan
    out = out.sort_values(["seconds", "status"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True).astype(
        {"status": "str", "trials": "int64", "seconds": "float64", "share": "float64"}
    )


def compute_by_block(df: pd.DataFrame) -> pd.DataFrame:
    """Seconds per block type, each trial's seconds shared equally among its stages.

    Returns:
        ``block``, ``trials`` (trials with at least one stage of it), ``seconds``, ``share``;
        most seconds first. Empty when the specs have no ``stageN.block`` decisions (a
        tabular space with its own encoding).
    """
    _require(df, "spec")
    secs = trial_seconds(df).to_numpy()
    seconds: dict[str, float] = {}
    trials: dict[str, int] = {}
    for s, text in zip(secs, df["spec"]):
        spec = json.loads(text)
        n_stages = spec.get("n_stages")
        blocks = [
            str(v)
            for k, v in spec.items()
            if (m := _BLOCK_KEY.match(k)) and (n_stages is None or int(m.group(1)) <= n_stages)
        ]
        for b in blocks:
            seconds[b] = seconds.get(b, 0.0) + float(s) / len(blocks)
        for b in set(blocks):
            trials[b] = trials.get(b, 0) + 1
    out = pd.DataFrame(
        {
            "block": list(seconds),
            "trials": [trials[b] for b in seconds],
            "seconds": list(seconds.values()),
        }
    )
    total = out["seconds"].sum()
    out["share"] = out["seconds"] / total if total > 0 else np.nan
    out = out.sort_values(["seconds", "block"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True).astype(
        {"block": "str", "trials": "int64", "seconds": "float64", "share": "float64"}
    )


class _ComputeInfo(NamedTuple):
    by_status: pd.DataFrame  # in :func:`status_order`
    by_block: pd.DataFrame


def status_order(statuses: list[str]) -> list[str]:
    """The statuses in the order every compute panel uses: ``ok`` first, then the others in
    the order of :data:`~autodlgym.analysis._figures.STATUS_COLORS`, unknown ones last."""
    known = list(STATUS_COLORS)
    return sorted(statuses, key=lambda s: (known.index(s) if s in known else len(known), s))


def plot_compute(df: pd.DataFrame) -> Figure:
    """Three panels: trials per status, time per status (both with the statuses in
    :func:`status_order`), time per block type; times in s, min or h as they need. An empty
    figure (and a warning) for a run without trials."""
    title = "Trials by status and where the compute went"
    if len(df) == 0:
        return empty_figure(title, "the run has no finished trial")
    by_status = compute_by_status(df).set_index("status")
    by_status = by_status.loc[status_order(list(by_status.index))].reset_index()
    info = _ComputeInfo(by_status, compute_by_block(df))
    left = label_inches(list(info.by_block["block"]), 9)
    fig = new_figure((11.0, 3.8), left=0.7, bottom=1.1, top=0.55, right=1.0)
    ax1, ax2, ax3 = fig.subplots(1, 3, gridspec_kw={"wspace": 0.3 + left})
    s = info.by_status
    colors = [STATUS_COLORS.get(x, "#333333") for x in s["status"]]
    ax1.bar(s["status"], s["trials"], color=colors)
    ax1.set_title("trials by status")
    ax1.set_ylabel("trials")
    factor, unit = time_unit(float(max(s["seconds"].max(), info.by_block["seconds"].max()
                                       if len(info.by_block) else 0.0)))  # fmt: skip
    ax2.bar(s["status"], s["seconds"] * factor, color=colors)
    ax2.set_title("time by status")
    ax2.set_ylabel(f"train + eval time ({unit})")
    b = info.by_block
    if len(b):
        ax3.barh(b["block"][::-1], b["seconds"][::-1] * factor, color="#56B4E9")
        ax3.set_xlabel(f"train + eval time ({unit}), split over a trial's stages")
    else:
        ax3.text(0.5, 0.5, "no block decisions in this space", ha="center", va="center")
        ax3.set_axis_off()
    ax3.set_title("time by block type")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelrotation=30, labelsize="small")
    fig.suptitle(title)
    return fig
