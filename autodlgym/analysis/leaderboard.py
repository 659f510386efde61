"""pandas views of a run: leaderboard, best-so-far, per-choice effects, failures, export.

Every function takes the frame :func:`~autodlgym.results.store.load_results` returns (or a
filtered copy of it) and returns a new frame; none modifies its input. Scores are
higher-is-better throughout.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from autodlgym.errors import AutoDLError
from autodlgym.results.ranking import annotate, by_architecture, usable
from autodlgym.results.store import BASE_COLUMNS, TAIL_COLUMNS
from autodlgym.trial import OK, SEARCH, STOPPED, TrialResult

#: Columns a leaderboard shows first, in this order (those present).
MAIN_COLUMNS = (
    "rank", "trial_id", "val_score", "test_score", "status", "stopped", "n_evals", "epochs",
    "rung", "params", "flops", "train_seconds", "arch_id",
)  # fmt: skip

#: ``leaderboard(status=SCORED)``, the default: the trials with a usable score (``ok``, or
#: ``stopped`` by the search's deadline, with a finite validation score; see
#: :func:`autodlgym.results.ranking.usable`)
SCORED = "scored"
#: what one row of a leaderboard stands for
PER = ("spec", "trial")

#: Columns where smaller is better; ``leaderboard(by=...)`` ranks them ascending by default.
LOWER_IS_BETTER = frozenset(
    {"train_loss", "params", "trainable_params", "flops", "train_seconds", "eval_seconds",
     "peak_rss_mb", "peak_gpu_mb"}
)  # fmt: skip

#: not decisions: the store's columns and every TrialResult field (fields without a column of
#: their own, such as ``latency`` or ``steps_run``, come back from the extra JSON as columns)
_NOT_CHOICES = (
    frozenset(BASE_COLUMNS)
    | frozenset(TAIL_COLUMNS)
    | {f.name for f in dataclasses.fields(TrialResult)}
    | {"rank", "n_evals", "rung", "stopped"}
)


def choice_columns(df: pd.DataFrame) -> list[str]:
    """The search-space decision columns of a results frame, in frame order."""
    return [c for c in df.columns if c not in _NOT_CHOICES and not str(c).startswith("diag_")]


def _frame(df_or_run_dir: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    if isinstance(df_or_run_dir, pd.DataFrame):
        return df_or_run_dir
    from autodlgym.run import load_results

    return load_results(df_or_run_dir)


def _require(df: pd.DataFrame, *columns: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise AutoDLError(
            f"results have no column(s) {', '.join(map(repr, missing))}; "
            f"available: {', '.join(map(str, df.columns))}"
        )


def leaderboard(
    df_or_run_dir: pd.DataFrame | str | os.PathLike[str],
    top: int | None = 10,
    by: str = "val_score",
    status: str | Sequence[str] | None = SCORED,
    ascending: bool | None = None,
    per: str = "spec",
) -> pd.DataFrame:
    """The best architectures (or trials), ranked.

    Args:
        df_or_run_dir: a results frame, or a run directory to load one from.
        top: keep this many rows (None: all).
        by: the column to rank by.
        status: the trials that count: ``"scored"`` (:data:`SCORED`, the default) those with
            a usable score: ``ok``, or ``stopped`` by the search's deadline with the finite
            validation score it reached; a status or several; None: every trial.
        ascending: rank smaller values first. None: ascending for :data:`LOWER_IS_BETTER`
            columns, descending otherwise.
        per: ``"spec"`` (default): one row per architecture, of the search's trials that
            count (retrained evaluations are left out): its trials at the highest fidelity it
            reached (by ``epochs``, then ``max_train_samples`` or ``max_examples``) and among
            those the one with its best validation score, the earliest on ties (whatever
            ``by`` ranks).
            ``"trial"``: one row per trial that counts.

    Returns:
        A new frame with a 1-based ``rank`` column; the ``by`` column and
        :data:`MAIN_COLUMNS` first, then the decision columns, then the rest. Besides the
        frame's columns: ``stopped`` (bool: the trial was stopped by the search's deadline;
        it ranks with the score it reached), ``n_evals`` (the trials of that architecture,
        whatever their status) and ``rung`` (the index of the trial's fidelity among the
        distinct fidelities of the frame, low to high; 0 when there is one). Ties keep
        trial order; missing values rank last. ``attrs["environment"]`` is the run's (what
        each session ran on), as :func:`~autodlgym.results.store.load_results` gives it.

    Raises:
        AutoDLError: a column that is missing, ``top < 1``, an unknown ``per``.
    """
    df = _frame(df_or_run_dir)
    _require(df, by, "trial_id")
    if top is not None and top < 1:
        raise AutoDLError(f"top must be a positive number of rows, got {top}")
    if per not in PER:
        raise AutoDLError(f"per must be {' or '.join(map(repr, PER))}, got {per!r}")
    environment = df.attrs.get("environment", [])
    if per == "spec":
        _require(df, "arch_id", "val_score")
        if "phase" in df.columns:
            df = df[df["phase"] == SEARCH]
    if status is None:
        counts = pd.Series(True, index=df.index)
    elif isinstance(status, str) and status == SCORED:
        _require(df, "status", "val_score")
        counts = usable(df)
    else:
        _require(df, "status")
        wanted = [status] if isinstance(status, str) else list(status)
        counts = df["status"].isin(wanted)
    if per == "spec":
        rows = by_architecture(df, keep=counts)
    else:
        rows = annotate(df)[counts.to_numpy(dtype=bool)]
    if ascending is None:
        ascending = by in LOWER_IS_BETTER
    ranked = rows.sort_values(
        [by, "trial_id"], ascending=[ascending, True], na_position="last", kind="stable"
    )
    if top is not None:
        ranked = ranked.head(top)
    ranked = ranked.reset_index(drop=True)
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1, dtype=np.int64))
    first = ["rank", "trial_id", by] + [
        c for c in MAIN_COLUMNS if c not in ("rank", "trial_id", by)
    ]
    first = [c for c in first if c in ranked.columns]
    choices = [c for c in choice_columns(ranked) if c not in first]
    rest = [c for c in ranked.columns if c not in first and c not in choices]
    out = ranked[first + choices + rest]
    out.attrs["environment"] = environment
    return out


def best_so_far(df: pd.DataFrame) -> pd.DataFrame:
    """Anytime performance: the best usable validation score after each trial.

    A score is usable when its trial finished ``ok`` or was ``stopped`` by the search's
    deadline with a finite score (:func:`~autodlgym.results.ranking.usable`): a stopped
    trial counts with the score it reached.

    Returns:
        One row per trial in ``trial_id`` order with ``n_trials`` (1, 2, ...), ``trial_id``,
        ``status``, ``val_score``, ``best_val_score`` (running maximum over usable scores,
        NaN before the first) and ``best_trial_id`` (the trial that holds it; earliest on
        ties), ``best_stopped`` (that trial was stopped). ``best_val_score`` never decreases.
    """
    _require(df, "trial_id", "status", "val_score")
    d = df.sort_values("trial_id", kind="stable").reset_index(drop=True)
    scores = d["val_score"].astype("float64").where(usable(d))
    best = scores.cummax().ffill()  # cummax leaves NaN where a trial failed
    # a trial takes the title only by beating the best so far: on ties the earlier keeps it
    previous = best.shift(1)
    improved = scores.notna() & (previous.isna() | (scores > previous))
    best_id = d["trial_id"].astype("Int64").where(improved).ffill()
    stopped = (d["status"] == STOPPED).astype("boolean").where(improved).ffill()
    return pd.DataFrame(
        {
            "n_trials": np.arange(1, len(d) + 1, dtype=np.int64),
            "trial_id": d["trial_id"].to_numpy(),
            "status": d["status"].to_numpy(),
            "val_score": d["val_score"].astype("float64").to_numpy(),
            "best_val_score": best.to_numpy(),
            "best_trial_id": best_id.astype("Int64").array,
            "best_stopped": stopped.astype("boolean").array,
        }
    )


def choice_effects(df: pd.DataFrame, column: str | Sequence[str] | None = None) -> pd.DataFrame:
    """How each option of each decision fared: which priors help, which fail.

    Args:
        df: a results frame.
        column: the decision column(s) to summarise (default: all of them).

    Returns:
        One row per decision and option (trials where the decision is inactive are left out):
        ``decision``, ``option``, ``count`` (trials with that option), ``n_ok``, ``ok_rate``,
        and ``mean``/``median``/``max`` of ``val_score`` over its ``ok`` trials. Sorted by
        decision (frame order), then by mean score, best first.
    """
    _require(df, "status", "val_score")
    if column is None:
        columns = choice_columns(df)
    else:
        columns = [column] if isinstance(column, str) else list(column)
        _require(df, *columns)
    ok = df["status"] == OK
    score = df["val_score"].astype("float64").where(ok)
    parts = []
    for col in columns:
        values = df[col]
        frame = pd.DataFrame({"option": values.astype(object), "ok": ok, "score": score})
        frame = frame[values.notna().to_numpy()]
        if frame.empty:
            continue
        g = frame.groupby("option", sort=False, dropna=True)
        stats = pd.DataFrame(
            {
                "count": g.size(),
                "n_ok": g["ok"].sum(),
                "mean": g["score"].mean(),
                "median": g["score"].median(),
                "max": g["score"].max(),
            }
        )
        stats["ok_rate"] = stats["n_ok"] / stats["count"]
        stats = stats.sort_values("mean", ascending=False, na_position="last", kind="stable")
        stats = stats.reset_index()
        stats.insert(0, "decision", col)
        parts.append(stats)
    out_cols = ["decision", "option", "count", "n_ok", "ok_rate", "mean", "median", "max"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=_EFFECT_DTYPES[c]) for c in out_cols})
    out = pd.concat(parts, ignore_index=True)[out_cols]
    return out.astype({c: _EFFECT_DTYPES[c] for c in out_cols})


_EFFECT_DTYPES = {
    "decision": "str", "option": "object", "count": "int64", "n_ok": "int64",
    "ok_rate": "float64", "mean": "float64", "median": "float64", "max": "float64",
}  # fmt: skip


def failure_summary(df: pd.DataFrame, examples: int = 3) -> pd.DataFrame:
    """Trials per status other than ``ok``, with their most common messages.

    Returns:
        One row per status present other than ``ok``: ``status``, ``count``, ``share`` (of
        all trials, ``ok`` ones included) and ``examples`` (up to ``examples`` distinct
        messages, most frequent first, joined with `` | ``). Sorted by count, largest first;
        empty when every trial finished ok.
    """
    _require(df, "status")
    messages = df["message"] if "message" in df.columns else pd.Series("", index=df.index)
    rows = []
    total = len(df)
    for status, group in df.groupby("status", sort=False):
        if status == OK:
            continue
        msgs = messages.loc[group.index].fillna("").astype(str)
        common = msgs[msgs != ""].value_counts(sort=True).index[:examples]
        rows.append(
            {
                "status": status,
                "count": len(group),
                "share": len(group) / total,
                "examples": " | ".join(common),
            }
        )
    out = pd.DataFrame(rows, columns=["status", "count", "share", "examples"])
    out = out.sort_values(["count", "status"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True).astype(
        {"status": "str", "count": "int64", "share": "float64", "examples": "str"}
    )


def export(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a frame to ``.csv`` or ``.parquet`` (chosen by the extension); return the path.

    Parent directories are made. Object columns holding mixed kinds (a decision whose options
    mix numbers and words) are written as text in Parquet, which needs one type per column.

    Raises:
        AutoDLError: any other extension.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise AutoDLError(f"cannot export to {str(p)!r}; give a path ending in .csv or .parquet")
    p.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        df.to_csv(p, index=False)
    else:
        out = df.copy()
        for col in out.columns:
            if out[col].dtype == object:
                kinds = {type(v) for v in out[col].dropna()}
                if len(kinds) > 1:
                    out[col] = out[col].map(lambda v: v if pd.isna(v) else str(v)).astype("str")
        out.to_parquet(p, index=False)
    return p
