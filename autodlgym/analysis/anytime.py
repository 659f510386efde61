"""Anytime performance: the best validation score after each trial and after each second.

``anytime(df)`` is the data (one row per trial); ``plot_anytime`` draws it against trials or
compute seconds, with random search's expectation band when the task is a table whose every
score is known (``random_search_band``). ``compare_anytime`` lines several runs of one task
up on a common grid and ``plot_compare`` overlays them, with a band over the seeds of each
searcher (as regret to the table's optimum, :func:`run_optimum`, when the task is a lookup
table). ``plot_edf`` draws the distribution of the runs' best scores per searcher and
``mann_whitney_vs_first`` tests each searcher against the first one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from autodlgym.analysis._figures import empty_figure, new_axes
from autodlgym.analysis.leaderboard import _require, best_so_far
from autodlgym.errors import AutoDLError
from autodlgym.results.ranking import usable
from autodlgym.trial import SEARCH, STOPPED

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: x axes the anytime plots offer: trial count, or training + evaluation seconds summed over
#: trials (compute, not wall time: with several workers the two differ by their number).
X_AXES = {"trials": "n_trials", "seconds": "compute_seconds"}


def anytime(df: pd.DataFrame) -> pd.DataFrame:
    """Best-so-far validation score after each trial, with the compute spent so far.

    Args:
        df: a results frame (:func:`~autodlgym.results.store.load_results`).

    Returns:
        One row per trial in ``trial_id`` order: the columns of
        :func:`~autodlgym.analysis.leaderboard.best_so_far` (``n_trials``, ``trial_id``,
        ``status``, ``val_score``, ``best_val_score``, ``best_trial_id``, ``best_stopped``:
        ``stopped`` trials count with the score they reached) plus ``seconds``
        (the trial's training + evaluation seconds; failures count what they spent) and
        ``compute_seconds`` (their running sum).
    """
    _require(df, "trial_id", "status", "val_score")
    out = best_so_far(df)
    d = df.sort_values("trial_id", kind="stable")
    seconds = np.zeros(len(d))
    for col in ("train_seconds", "eval_seconds"):
        if col in d.columns:
            seconds += d[col].astype("float64").fillna(0.0).to_numpy()
    out["seconds"] = seconds
    out["compute_seconds"] = np.cumsum(seconds)
    return out


def random_search_band(
    values: Sequence[float] | np.ndarray, n_trials: int, level: float = 0.9
) -> pd.DataFrame:
    """What random search is expected to find on a table whose every score is known.

    Draws are uniform over the table's rows, with replacement, so after ``n`` draws the best
    score is at most the ``i``-th smallest of ``N`` values with probability ``(i / N) ** n``.
    Mean and quantiles follow exactly from that distribution (no simulation).

    Args:
        values: the validation score of every architecture in the table (NaN ignored).
        n_trials: the longest run to describe.
        level: the central probability mass of the band (0.9: from the 5th to the 95th
            percentile of the best score).

    Returns:
        ``n_trials`` (1..n), ``mean``, ``low``, ``high``: the expected best score and the band.

    Raises:
        AutoDLError: no finite value, ``n_trials < 1`` or ``level`` outside (0, 1).
    """
    v = np.sort(np.asarray(values, dtype="float64"))
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise AutoDLError("random_search_band needs at least one finite table score")
    if n_trials < 1:
        raise AutoDLError(f"n_trials must be at least 1, got {n_trials}")
    if not 0 < level < 1:
        raise AutoDLError(f"level must lie between 0 and 1, got {level}")
    n_rows = v.size
    n = np.arange(1, n_trials + 1, dtype="float64")[:, None]
    cdf = (np.arange(1, n_rows + 1) / n_rows)[None, :]
    below = np.concatenate([np.zeros((1, 1)), cdf[:, :-1]], axis=1)
    weights = cdf**n - below**n  # P(best == i-th smallest), rows sum to 1
    mean = weights @ v

    def quantile(q: float) -> np.ndarray:
        # the smallest i with (i / N) ** n >= q
        idx = np.ceil(n_rows * q ** (1.0 / n[:, 0])).astype(int) - 1
        return v[np.clip(idx, 0, n_rows - 1)]

    tail = (1.0 - level) / 2
    return pd.DataFrame(
        {
            "n_trials": np.arange(1, n_trials + 1, dtype=np.int64),
            "mean": mean,
            "low": quantile(tail),
            "high": quantile(1.0 - tail),
        }
    )


class _AnytimeInfo(NamedTuple):
    curve: pd.DataFrame
    x: str
    band: pd.DataFrame | None


def _anytime_info(
    df: pd.DataFrame, x: str, table_scores: Sequence[float] | np.ndarray | None
) -> _AnytimeInfo:
    if x not in X_AXES:
        raise AutoDLError(f"x must be one of {', '.join(X_AXES)}, got {x!r}")
    curve = anytime(df)
    band = None
    if table_scores is not None and x == "trials" and len(curve):
        band = random_search_band(table_scores, len(curve))
    return _AnytimeInfo(curve, X_AXES[x], band)


def plot_anytime(
    df: pd.DataFrame,
    x: str = "trials",
    table_scores: Sequence[float] | np.ndarray | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Best-so-far validation score against trials or compute seconds.

    Args:
        df: a results frame.
        x: ``"trials"`` or ``"seconds"`` (training + evaluation seconds summed over trials).
        table_scores: every validation score of a tabular task; draws random search's
            expected best and its 90 % band (against trials only).
        ax: draw into these axes instead of a new figure.

    Returns:
        The figure (trials stopped by the search's deadline ringed: they count with the
        score they reached); with no usable trial, an empty figure (and a warning).
    """
    info = _anytime_info(df, x, table_scores)
    title = "Best validation score so far"
    c = info.curve
    if c["best_val_score"].notna().sum() == 0:
        return empty_figure(title, "no trial finished ok: nothing to plot", ax)
    ax = new_axes(ax)
    xs = c[info.x].to_numpy()
    scored = usable(c).to_numpy()
    ax.scatter(xs[scored], c["val_score"][scored], s=8, alpha=0.35, color="#0072B2", label="trial")
    stopped = scored & (c["status"] == STOPPED).to_numpy()
    if stopped.any():
        ax.scatter(
            xs[stopped], c["val_score"][stopped], s=40, facecolors="none", edgecolors="#000000",
            label="stopped at the deadline",
        )  # fmt: skip
    ax.step(xs, c["best_val_score"], where="post", color="#D55E00", lw=2, label="best so far")
    if info.band is not None:
        b = info.band
        ax.plot(b["n_trials"], b["mean"], color="#555555", ls="--", label="random search (exp.)")
        ax.fill_between(
            b["n_trials"], b["low"], b["high"], color="#999999", alpha=0.25, label="90 % band"
        )
    ax.set_xlabel("trials" if x == "trials" else "compute seconds (train + eval)")
    ax.set_ylabel("validation score")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    return ax.figure


# Several runs --------------------------------------------------------------------------------
RunLike = pd.DataFrame | str | os.PathLike[str]


def _load_run(run: str | os.PathLike[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    from autodlgym.run import Run

    with Run.open(run) as opened:
        df = opened.frame()
        # the search's trials only: retrained evaluations (autodlgym retrain) are not search trials
        return df[df["phase"] == SEARCH].reset_index(drop=True), opened.settings


def compare_anytime(
    runs: Sequence[str | os.PathLike[str]] | Mapping[str, pd.DataFrame], x: str = "trials"
) -> pd.DataFrame:
    """Anytime curves of several runs on a common grid, in long form.

    Args:
        runs: run directories, or a mapping of label -> results frame.
        x: ``"trials"`` (grid 1..longest run) or ``"seconds"`` (200 points up to the largest
            compute total).

    Returns:
        ``run`` (label: the directory name, made unique), ``searcher``, ``seed``, ``task``,
        ``x`` (the grid value) and ``best_val_score`` (the best usable score reached by that
        point, stopped trials included; NaN before the first and past the end of a shorter
        run).

    Raises:
        AutoDLError: no run given, a directory without a run, runs of different tasks.
    """
    if x not in X_AXES:
        raise AutoDLError(f"x must be one of {', '.join(X_AXES)}, got {x!r}")
    loaded: list[tuple[str, pd.DataFrame, dict[str, Any]]] = []
    if isinstance(runs, Mapping):
        loaded = [(str(k), v, {}) for k, v in runs.items()]
    else:
        seen: dict[str, int] = {}
        for r in runs:
            df, config = _load_run(r)
            label = Path(r).resolve().name
            seen[label] = seen.get(label, 0) + 1
            if seen[label] > 1:
                label = f"{label} ({seen[label]})"
            loaded.append((label, df, config))
    if not loaded:
        raise AutoDLError("compare needs at least one run")
    tasks = {_task_label(c) for _, _, c in loaded if c}
    if len(tasks) > 1:
        raise AutoDLError(
            f"runs of different tasks ({', '.join(sorted(tasks))}) cannot share a score axis; "
            "compare runs of one task"
        )
    curves = [(label, anytime(df), config) for label, df, config in loaded]
    col = X_AXES[x]
    if x == "trials":
        grid = np.arange(1, max((len(c) for _, c, _ in curves), default=0) + 1, dtype="float64")
    else:
        top = max((float(c[col].iloc[-1]) for _, c, _ in curves if len(c)), default=0.0)
        grid = np.linspace(0.0, top, 200) if top > 0 else np.zeros(0)
    parts = []
    for label, c, config in curves:
        xs = c[col].to_numpy(dtype="float64")
        best = c["best_val_score"].to_numpy(dtype="float64")
        # the best reached by each grid point: the last trial at or before it
        idx = np.searchsorted(xs, grid, side="right") - 1
        vals = np.where(idx >= 0, best[np.clip(idx, 0, None)], np.nan) if len(xs) else grid * np.nan
        if len(xs):
            vals = np.where(grid > xs[-1], np.nan, vals)
        parts.append(
            pd.DataFrame(
                {
                    "run": label,
                    "searcher": str(config.get("searcher", label)),
                    "seed": config.get("seed"),
                    "task": _task_label(config) if config else "",
                    "x": grid,
                    "best_val_score": vals,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _task_label(config: Mapping[str, Any]) -> str:
    kw = config.get("task_kwargs") or {}
    opts = ",".join(f"{k}={v}" for k, v in sorted(kw.items()))
    return str(config.get("task", "?")) + (f" ({opts})" if opts else "")


def compare_bands(long: pd.DataFrame) -> pd.DataFrame:
    """Mean and min-max band per searcher over its runs (seeds), from :func:`compare_anytime`.

    Returns:
        ``searcher``, ``x``, ``n_runs`` (runs that reached that point), ``mean``, ``low``,
        ``high``. A searcher with a single run has ``low == high == mean``.
    """
    g = long.dropna(subset=["best_val_score"]).groupby(["searcher", "x"], sort=True)
    out = g["best_val_score"].agg(n_runs="count", mean="mean", low="min", high="max")
    return out.reset_index()


def plot_compare(
    runs: Sequence[str | os.PathLike[str]] | Mapping[str, pd.DataFrame],
    x: str = "trials",
    ax: Axes | None = None,
    optimum: float | None = None,
) -> Figure:
    """Anytime curves of several runs of one task on one axes.

    Runs of the same searcher (seeds) are drawn as their mean with a min-max band; a searcher
    with one run is drawn as its line. With ``optimum`` (the best validation score of a
    lookup table, :func:`run_optimum`) the curves are the regret ``optimum - best so far``,
    on a log scale (symmetric-log, linear below the smallest positive regret, when some run
    reached the optimum). Returns an empty figure (and warns) when no run has an ``ok``
    trial.
    """
    long = compare_anytime(runs, x)
    title = "Best validation score so far" if optimum is None else "Regret of the best so far"
    if long["best_val_score"].notna().sum() == 0:
        if x == "seconds" and len(compare_anytime(runs, "trials").dropna()):
            # ok trials, but no compute recorded: lookups of a table cost no training
            return empty_figure(
                title, "these runs record no compute seconds (table lookups): see trials", ax
            )
        return empty_figure(title, "no run has a trial that finished ok", ax)
    if optimum is not None:
        long = long.assign(best_val_score=optimum - long["best_val_score"])
    ax = new_axes(ax, figsize=(7.0, 4.4))
    bands = compare_bands(long)
    colors = _cycle()
    for searcher in _searcher_order(long["searcher"]):
        b = bands[bands["searcher"] == searcher]
        color = next(colors)
        n = int(long.loc[long["searcher"] == searcher, "run"].nunique())
        label = f"{searcher} (mean of {n} runs, min-max band)" if n > 1 else str(searcher)
        ax.step(b["x"], b["mean"], where="post", color=color, lw=2, label=label)
        if n > 1:
            ax.fill_between(b["x"], b["low"], b["high"], step="post", color=color, alpha=0.2)
    ax.set_xlabel("trials" if x == "trials" else "compute seconds (train + eval)")
    if optimum is None:
        ax.set_ylabel("best validation score")
        ax.legend(loc="lower right", fontsize="small")
    else:
        ax.set_ylabel(f"regret (optimum {optimum:.4g} - best so far)")
        regret = long["best_val_score"].dropna().to_numpy()
        positive = regret[regret > 0]
        if positive.size and (regret > 0).all():
            ax.set_yscale("log")
        elif positive.size:
            ax.set_yscale("symlog", linthresh=float(positive.min()))
        ax.legend(loc="upper right", fontsize="small")
    ax.set_title(title)
    return ax.figure


def _searcher_order(searchers: pd.Series) -> list[str]:
    """Searchers in the order their first run was given (the first one is the baseline)."""
    return list(dict.fromkeys(str(s) for s in searchers))


def run_optimum(run: str | os.PathLike[str]) -> float | None:
    """The best validation score of a lookup task's table at the run's fidelity (the optimum
    a search of that task can reach); None for a task that trains or that cannot be made
    here."""
    from autodlgym.run import Run

    with Run.open(run) as opened:
        scores = opened.table_scores()
    return None if scores is None else float(np.nanmax(scores))


def best_within(df: pd.DataFrame, x: str, budget: float) -> float:
    """The best usable validation score a run reached within ``budget`` trials or compute
    seconds (``x``: ``"trials"`` or ``"seconds"``); NaN when none did. Stopped trials count
    with the score they reached."""
    if x not in X_AXES:
        raise AutoDLError(f"x must be one of {', '.join(X_AXES)}, got {x!r}")
    c = anytime(df)
    c = c[c[X_AXES[x]] <= budget]
    return float(c["best_val_score"].iloc[-1]) if len(c) else float("nan")


#: Fewest runs per group for :func:`mann_whitney_vs_first` to compute a p value.
MIN_RUNS_FOR_TEST = 3


def mann_whitney_vs_first(
    scores: pd.DataFrame, value: str = "best_val_score", min_runs: int = MIN_RUNS_FOR_TEST
) -> pd.DataFrame:
    """One-sided Mann-Whitney U of each searcher's runs against the first searcher's.

    Args:
        scores: one row per run with ``searcher`` and ``value``; the first row's searcher is
            the baseline, the others come in the order their first run appears.
        value: the column compared (higher is better).
        min_runs: fewest runs a group needs for a test.

    Returns:
        One row per other searcher: ``searcher``, ``n``, ``baseline``, ``n_baseline``, ``U``
        (the statistic of ``scipy.stats.mannwhitneyu(mine, baseline, alternative="greater")``:
        small p values say this searcher's scores are stochastically greater, i.e. better)
        and ``p_value``, NaN with ``note`` ``"(too few runs)"`` when a group has fewer than
        ``min_runs`` runs with a score.
    """
    from scipy.stats import mannwhitneyu

    columns = ["searcher", "n", "baseline", "n_baseline", "U", "p_value", "note"]
    if scores.empty:
        return pd.DataFrame(columns=columns)
    order = _searcher_order(scores["searcher"])
    groups = {
        s: scores.loc[scores["searcher"].astype(str) == s, value].dropna().to_numpy("float64")
        for s in order
    }
    base = groups[order[0]]
    rows = []
    for s in order[1:]:
        mine = groups[s]
        u = p = float("nan")
        note = "(too few runs)"
        if len(mine) >= min_runs and len(base) >= min_runs:
            test = mannwhitneyu(mine, base, alternative="greater")
            u, p, note = float(test.statistic), float(test.pvalue), ""
        rows.append([s, len(mine), order[0], len(base), u, p, note])
    return pd.DataFrame(rows, columns=columns)


def plot_edf(scores: pd.DataFrame, value: str = "best_val_score", ax: Axes | None = None) -> Figure:
    """Per searcher, the empirical distribution function of its runs' final best scores.

    Args:
        scores: one row per run with ``searcher`` and ``value`` (the summary of
            :func:`~autodlgym.analysis.report.build_comparison`).

    Returns:
        A step plot: at score ``s``, the fraction of the searcher's runs whose best score is
        at most ``s`` (further right is better); an empty figure when no run has a score.
    """
    title = "Distribution of the runs' best validation scores"
    finite = scores.dropna(subset=[value]) if len(scores) else scores
    if finite.empty:
        return empty_figure(title, "no run has a trial that finished ok", ax)
    ax = new_axes(ax, figsize=(7.0, 4.4))
    colors = _cycle()
    for searcher in _searcher_order(finite["searcher"]):
        v = np.sort(finite.loc[finite["searcher"].astype(str) == searcher, value].to_numpy())
        frac = np.arange(1, v.size + 1) / v.size
        ax.step(
            np.concatenate([[v[0]], v]), np.concatenate([[0.0], frac]), where="post",
            color=next(colors), lw=2, label=f"{searcher} ({v.size} runs)",
        )  # fmt: skip
    ax.set_xlabel("best validation score of a run")
    ax.set_ylabel("fraction of runs at or below")
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    return ax.figure


def _cycle():
    import itertools

    return itertools.cycle(
        ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
    )
