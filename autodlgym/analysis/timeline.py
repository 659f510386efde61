"""When each trial ran, on which worker, and how long workers sat idle.

The store records when each trial finished (``finished_at``) and the seconds it spent
training and evaluating (failures included: a timeout counts the seconds it ran). A trial
ran from ``finished_at - seconds`` to ``finished_at``; a trial whose result was reused from
an earlier evaluation of the same spec (``reused_from``) took no time. Times are seconds
from the first trial's start. Idle time is the part of a worker's span (its first start to
its last end) in which none of its trials ran.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from autodlgym.analysis._figures import STATUS_COLORS, empty_figure, new_figure, time_unit
from autodlgym.analysis.compute import trial_seconds
from autodlgym.analysis.leaderboard import _require
from autodlgym.trial import OK, PRUNED, STOPPED, TIMEOUT

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: What the timeline colours: ok, stopped, pruned, timeout, and every other failure as one.
OUTCOMES = (OK, STOPPED, PRUNED, TIMEOUT, "failed")
OUTCOME_COLORS = {
    OK: STATUS_COLORS["ok"],
    STOPPED: "#56B4E9",
    PRUNED: STATUS_COLORS["pruned"],
    TIMEOUT: "#CC79A7",
    "failed": "#D55E00",
}


def outcome(status: pd.Series) -> pd.Series:
    """Each status as one of :data:`OUTCOMES` (``nan``, ``oom``, ``error``, ... are
    ``failed``)."""
    s = status.astype("str")
    return s.where(s.isin(OUTCOMES[:-1]), "failed")


def timeline(df: pd.DataFrame) -> pd.DataFrame:
    """One row per trial with its worker and when it ran.

    Returns:
        ``trial_id``, ``worker`` (``"(main)"`` where none was recorded), ``status``,
        ``outcome`` (:func:`outcome`), ``start`` and ``end`` (seconds since the first trial
        started), ``seconds`` (training + evaluation; 0 for a reused result), ``reused``;
        by start, then trial. Trials without ``finished_at`` are left out.
    """
    _require(df, "trial_id", "status", "finished_at")
    d = df[df["finished_at"].notna()]
    cols = ["trial_id", "worker", "status", "outcome", "start", "end", "seconds", "reused"]
    if d.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    reused = (
        d["reused_from"].notna().to_numpy()
        if "reused_from" in d.columns
        else np.zeros(len(d), dtype=bool)
    )
    seconds = np.where(reused, 0.0, trial_seconds(d).to_numpy(dtype="float64"))
    stamps = pd.to_datetime(d["finished_at"], utc=True)
    # seconds from the first finish (the stamps' unit, ns or us, varies with pandas)
    end = (stamps - stamps.min()).dt.total_seconds().to_numpy(dtype="float64")
    start = end - seconds
    t0 = float(start.min())
    worker = d["worker"].astype("str") if "worker" in d.columns else pd.Series("", index=d.index)
    out = pd.DataFrame(
        {
            "trial_id": d["trial_id"].astype("int64").to_numpy(),
            "worker": worker.where(worker != "", "(main)").to_numpy(),
            "status": d["status"].astype("str").to_numpy(),
            "outcome": outcome(d["status"]).to_numpy(),
            "start": start - t0,
            "end": end - t0,
            "seconds": seconds,
            "reused": reused,
        }
    )
    return out.sort_values(["start", "trial_id"], kind="stable").reset_index(drop=True)


def worker_usage(tl: pd.DataFrame) -> pd.DataFrame:
    """Per worker of a :func:`timeline`: ``worker``, ``trials``, ``busy`` (seconds in which
    at least one of its trials ran), ``idle`` (the rest of its span), ``span`` (first start
    to last end), ``longest_gap`` (its longest stretch without a trial), ``idle_share``
    (idle / span; NaN for an empty span); by worker name."""
    rows = []
    for worker, g in tl.groupby("worker", sort=True):
        s = g["start"].to_numpy(dtype="float64")
        e = g["end"].to_numpy(dtype="float64")
        order = np.argsort(s, kind="stable")
        s, e = s[order], e[order]
        busy = 0.0
        longest = 0.0
        cur_s, cur_e = s[0], e[0]
        for a, b in zip(s[1:], e[1:]):  # the union of the intervals, and the gaps between
            if a > cur_e:
                busy += cur_e - cur_s
                longest = max(longest, a - cur_e)
                cur_s, cur_e = a, b
            else:
                cur_e = max(cur_e, b)
        busy += cur_e - cur_s
        span = float(e.max() - s.min())
        rows.append(
            {
                "worker": str(worker),
                "trials": len(g),
                "busy": float(busy),
                "idle": max(span - busy, 0.0),
                "span": span,
                "longest_gap": float(longest),
                "idle_share": max(span - busy, 0.0) / span if span > 0 else np.nan,
            }
        )
    cols = ["worker", "trials", "busy", "idle", "span", "longest_gap", "idle_share"]
    return pd.DataFrame(rows, columns=cols)


class _TimelineInfo(NamedTuple):
    trials: pd.DataFrame
    usage: pd.DataFrame


def plot_timeline(df: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Each worker as a row of bars, one per trial from its start to its end, coloured by
    outcome (ok, stopped, pruned, timeout, failed); the gaps between bars are idle time.
    An empty figure (and a warning) when no trial has finished."""
    tl = timeline(df)
    info = _TimelineInfo(tl, worker_usage(tl) if len(tl) else pd.DataFrame())
    title = "Timeline: trials per worker"
    if tl.empty:
        return empty_figure(title, "no trial has finished", ax)
    workers = list(info.usage["worker"])
    span = float(tl["end"].max())
    factor, unit = time_unit(span)
    fig = new_figure((8.0, 1.3 + 0.32 * len(workers)), left=1.2, right=1.6, bottom=0.55)
    ax = fig.add_subplot()
    row = {w: i for i, w in enumerate(workers)}
    tl = tl.assign(
        y=tl["worker"].map(row),
        left=tl["start"] * factor,
        # a reused result (no time) still shows as a sliver
        width=np.maximum((tl["end"] - tl["start"]) * factor, span * factor * 1e-3),
    )
    for (y, out), g in tl.groupby(["y", "outcome"], sort=False):
        # one collection per worker and outcome: thousands of trials draw in a blink
        ax.broken_barh(list(zip(g["left"], g["width"])), (y - 0.35, 0.7),
                       facecolors=OUTCOME_COLORS[out], edgecolors="white", linewidth=0.3)  # fmt: skip
    counts = tl["outcome"].value_counts()
    from matplotlib.patches import Patch

    handles = [
        Patch(color=OUTCOME_COLORS[o], label=f"{o} ({int(counts[o])})")
        for o in OUTCOMES
        if o in counts
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="x-small",
              title="outcome (trials)", title_fontsize="x-small")  # fmt: skip
    labels = [
        f"{w[:14]} ({u:.0%} idle)" if np.isfinite(u) else w[:14]
        for w, u in zip(workers, info.usage["idle_share"])
    ]
    ax.set_yticks(range(len(workers)), labels, fontsize="x-small")
    ax.set_ylim(len(workers) - 0.5, -0.5)
    ax.set_xlim(0, span * factor * 1.01 or 1)
    ax.set_xlabel(f"time since the first trial started ({unit})")
    idle = float(info.usage["idle"].sum())
    busy = float(info.usage["busy"].sum())
    share = idle / (idle + busy) if idle + busy > 0 else 0.0
    ax.set_title(f"{title} ({len(workers)} workers, {share:.0%} of their time idle)",
                 fontsize="medium")  # fmt: skip
    return fig
