"""Which trials have a usable score, and one row per architecture at its highest fidelity.

Every ranking of a run (the leaderboard, the report's header and top table, Pareto fronts,
best-so-far, ``Run.best`` and the search's summary) reads trials through these two helpers:

* :func:`usable`: a trial has a usable score when it finished ``ok``, or was ``stopped`` by
  the search's deadline, with a finite validation score. A stopped trial keeps the score it
  reached; rankings mark it (a ``stopped`` column).
* :func:`by_architecture`: one row per architecture. Of its evaluations, those at the highest
  fidelity it reached (by epochs, then the examples an epoch trains on, ``max_train_samples``
  or ``max_examples``, where none, the whole training set, is the most), and among those its
  best validation score, the earliest trial on ties.
  A multi-fidelity search (ASHA rungs) evaluates an architecture several times; its row is
  its longest training, not its luckiest one, and never more than one row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from autodlgym.trial import OK, STOPPED

#: statuses whose validation score counts in rankings (with a finite score: :func:`usable`)
SCORED_STATUSES = (OK, STOPPED)


def usable(df: pd.DataFrame) -> pd.Series:
    """A boolean mask over ``df``'s rows: ``ok`` or ``stopped`` with a finite ``val_score``."""
    if len(df) == 0 or "status" not in df.columns or "val_score" not in df.columns:
        return pd.Series(False, index=df.index, dtype=bool)
    score = pd.to_numeric(df["val_score"], errors="coerce").astype("float64")
    return df["status"].isin(SCORED_STATUSES) & pd.Series(
        np.isfinite(score.to_numpy()), index=df.index
    )


def fidelity_levels(df: pd.DataFrame) -> list[tuple[float, float]]:
    """Each trial's fidelity as ``(epochs, examples)``, comparable low to high: the examples
    an epoch trains on, ``max_train_samples`` (none, the whole training set, is the most), or
    fewer where ``max_examples`` stops it sooner (a first ASHA rung: the first batches of an
    epoch)."""
    n = len(df)
    epochs = (
        pd.to_numeric(df["epochs"], errors="coerce").astype("float64").fillna(0.0).to_numpy()
        if "epochs" in df.columns
        else np.zeros(n)
    )
    samples = (
        pd.to_numeric(df["max_train_samples"], errors="coerce")
        .astype("float64")
        .fillna(np.inf)
        .to_numpy()
        if "max_train_samples" in df.columns
        else np.full(n, np.inf)
    )
    if "max_examples" in df.columns:
        capped = (
            pd.to_numeric(df["max_examples"], errors="coerce")
            .astype("float64")
            .fillna(np.inf)
            .to_numpy()
        )
        samples = np.minimum(samples, capped)
    return list(zip(epochs.tolist(), samples.tolist()))


def rungs(df: pd.DataFrame) -> pd.Series:
    """Each trial's rung: the index of its fidelity among the frame's distinct fidelities,
    ordered low to high (:func:`fidelity_levels`); 0 for every trial when there is one
    fidelity. An int64 Series on ``df``'s index."""
    levels = fidelity_levels(df)
    order = {level: i for i, level in enumerate(sorted(set(levels)))}
    return pd.Series([order[lv] for lv in levels], index=df.index, dtype="int64")


def annotate(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with ``rung`` (:func:`rungs`), ``n_evals`` (the trials of each row's
    architecture in ``df``, whatever their status) and ``stopped`` (bool: the trial was
    stopped by the search's deadline) set."""
    out = df.copy()
    out["rung"] = rungs(df)
    if "arch_id" in df.columns:
        out["n_evals"] = df["arch_id"].map(df["arch_id"].value_counts(dropna=False))
        out["n_evals"] = out["n_evals"].fillna(1).astype("int64")
    else:
        out["n_evals"] = pd.Series(1, index=df.index, dtype="int64")
    out["stopped"] = (
        (df["status"] == STOPPED).astype(bool)
        if "status" in df.columns
        else pd.Series(False, index=df.index, dtype=bool)
    )
    return out


def by_architecture(
    df: pd.DataFrame, keep: pd.Series | None = None, score: str = "val_score"
) -> pd.DataFrame:
    """One row per architecture: its evaluation at the highest fidelity it reached with its
    best score there.

    Args:
        df: a results frame (the search's trials; one ``arch_id`` per architecture).
        keep: a boolean mask over ``df``: the trials that may stand for their architecture
            (default: :func:`usable`). Kept trials with a finite ``score`` come first; then
            the highest fidelity; then the best ``score``; then the earliest trial.
        score: the column whose best value picks the trial.

    Returns:
        The chosen trials (their columns as in ``df``), one per architecture that has a kept
        trial, in ``trial_id`` order, with three columns added: ``n_evals`` (every trial of
        that architecture in ``df``, whatever its status), ``rung`` (:func:`rungs`, over all
        of ``df``) and ``stopped`` (the chosen trial was stopped by the search's deadline).
    """
    if keep is None:
        keep = usable(df)
    out = annotate(df)
    if isinstance(keep, pd.Series):
        keep = keep.reindex(df.index, fill_value=False)
    out = out[np.asarray(keep, dtype=bool)]
    value = pd.to_numeric(out[score], errors="coerce").astype("float64")
    out["_finite"] = np.isfinite(value.to_numpy())
    out["_value"] = value.fillna(-np.inf)
    chosen = out.sort_values(
        ["_finite", "rung", "_value", "trial_id"],
        ascending=[False, False, False, True],
        kind="stable",
    ).drop_duplicates("arch_id")
    chosen = chosen.drop(columns=["_finite", "_value"]).sort_values("trial_id", kind="stable")
    return chosen


def best_architectures(df: pd.DataFrame, n: int | None = None) -> pd.DataFrame:
    """:func:`by_architecture` of the usable trials, best validation score first (the earliest
    trial on ties); the first ``n`` rows (None: all)."""
    rows = by_architecture(df)
    ranked = rows.sort_values(["val_score", "trial_id"], ascending=[False, True], kind="stable")
    return ranked if n is None else ranked.head(int(n))
