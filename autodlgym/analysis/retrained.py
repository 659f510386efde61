"""The retrained view of a run: each re-evaluated spec's mean and spread over seeds.

``autodlgym retrain`` records its evaluations under the ``"retrain"`` fidelity phase;
:func:`retrained` groups them per architecture and final fidelity and ranks them by mean
validation score (never by test score). ``autodlgym leaderboard RUN --retrained`` prints it.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from autodlgym.analysis.leaderboard import _frame, _require
from autodlgym.trial import OK, RETRAIN, SEARCH

#: columns of :func:`retrained`, in order
COLUMNS = (
    "rank", "arch_id", "epochs", "n_seeds", "n_failed", "val_mean", "val_sd", "test_mean",
    "test_sd", "search_trial_id", "search_val_score", "trial_ids", "best_trial_id", "spec",
)  # fmt: skip


def retrained(
    df_or_run_dir: pd.DataFrame | str | os.PathLike[str], epochs: int | None = None
) -> pd.DataFrame:
    """One row per retrained spec and final fidelity, best mean validation score first.

    Args:
        df_or_run_dir: a results frame, or a run directory to load one from.
        epochs: keep only retraining at this many epochs (None: all).

    Returns:
        Columns :data:`COLUMNS`: ``n_seeds`` ``ok`` evaluations (``n_failed`` others),
        ``val_mean``/``val_sd`` and ``test_mean``/``test_sd`` over the ``ok`` ones (sample
        standard deviation, ddof 1: NaN for a single seed), the best search trial of the same
        architecture and its score, the retrained trial ids (comma-separated) and the one with
        the best validation score (what ``autodlgym export`` reuses). Empty when nothing was
        retrained.
    """
    df = _frame(df_or_run_dir)
    _require(df, "phase", "arch_id", "status", "val_score", "test_score", "epochs")
    done = df[df["phase"] == RETRAIN]
    if epochs is not None:
        done = done[done["epochs"] == epochs]
    search = df[(df["phase"] == SEARCH) & (df["status"] == OK)]
    search = search.sort_values(["val_score", "trial_id"], ascending=[False, True], kind="stable")
    best_search = search.drop_duplicates("arch_id").set_index("arch_id")
    rows = []
    for (arch_id, n_epochs), group in done.groupby(["arch_id", "epochs"], sort=False):
        ok = group[group["status"] == OK]
        val = ok["val_score"].astype("float64")
        test = ok["test_score"].astype("float64")
        found = arch_id in best_search.index
        best_row = ok.loc[val.idxmax()] if len(ok) else None
        rows.append(
            {
                "arch_id": arch_id,
                "epochs": int(n_epochs),
                "n_seeds": len(ok),
                "n_failed": len(group) - len(ok),
                "val_mean": val.mean(),
                "val_sd": val.std(ddof=1),
                "test_mean": test.mean(),
                "test_sd": test.std(ddof=1),
                "search_trial_id": int(best_search.at[arch_id, "trial_id"]) if found else None,
                "search_val_score": best_search.at[arch_id, "val_score"] if found else np.nan,
                "trial_ids": ",".join(str(int(t)) for t in group["trial_id"]),
                "best_trial_id": None if best_row is None else int(best_row["trial_id"]),
                "spec": group["spec"].iloc[0],
            }
        )
    out = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "rank"])
    out = out.sort_values(
        ["val_mean", "arch_id"], ascending=[False, True], na_position="last", kind="stable"
    ).reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1, dtype=np.int64))
    dtypes = {
        "epochs": "int64", "n_seeds": "int64", "n_failed": "int64", "val_mean": "float64",
        "val_sd": "float64", "test_mean": "float64", "test_sd": "float64",
        "search_trial_id": "Int64", "search_val_score": "float64", "best_trial_id": "Int64",
        "arch_id": "str", "trial_ids": "str", "spec": "str",
    }  # fmt: skip
    return out.astype(dtypes)


def format_retrained(view: pd.DataFrame) -> str:
    """The retrained view as a text table: ``mean +- sd`` of validation and test scores."""
    from autodlgym.searchspace.spec import ArchSpec

    def pm(mean: float, sd: float) -> str:
        if pd.isna(mean):
            return "-"
        return f"{mean:.4f} +- {sd:.4f}" if not pd.isna(sd) else f"{mean:.4f}"

    table = pd.DataFrame(
        {
            "rank": view["rank"],
            "search_trial": view["search_trial_id"],
            "epochs": view["epochs"],
            "seeds": view["n_seeds"],
            "val (mean +- sd)": [pm(m, s) for m, s in zip(view["val_mean"], view["val_sd"])],
            "test (mean +- sd)": [pm(m, s) for m, s in zip(view["test_mean"], view["test_sd"])],
            "search_val": view["search_val_score"].round(4),
            "best_trial": view["best_trial_id"],
            "arch": [ArchSpec.from_json(s).summary() for s in view["spec"]],
        }
    )
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        return table.to_string(index=False)
