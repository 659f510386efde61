"""Every trial of a run in one table, and each trial's detail (spec, curve, diagnostics).

:func:`trials_table` is what the report's table of all trials shows, one row per trial;
:func:`trial_details` what its drill-down shows when a row is opened (the page draws it from
JSON embedded in the page, with the small script in ``report.js``); :func:`trials_html`
renders both.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from autodlgym.analysis.compute import trial_seconds
from autodlgym.analysis.leaderboard import _require
from autodlgym.results.ranking import rungs

#: Columns of :func:`trials_table`, in order.
TABLE_COLUMNS = (
    "trial_id", "status", "val_score", "test_score", "rung", "epochs", "epochs_run", "params",
    "flops", "seconds", "worker", "arch", "arch_id",
)  # fmt: skip


def trials_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per trial, by trial id: :data:`TABLE_COLUMNS` (``seconds``: training +
    evaluation, failures included; ``rung``: see :func:`~autodlgym.results.ranking.rungs`;
    ``arch``: the spec's one-line summary). Columns the frame lacks are left out."""
    from autodlgym.searchspace.spec import ArchSpec

    _require(df, "trial_id", "status")
    d = df.sort_values("trial_id", kind="stable")
    out = pd.DataFrame(index=d.index)
    for c in TABLE_COLUMNS:
        if c == "seconds":
            out[c] = trial_seconds(d)
        elif c == "rung":
            out[c] = rungs(d)
        elif c == "arch":
            if "spec" in d.columns:
                out[c] = [ArchSpec(json.loads(s)).summary() for s in d["spec"]]
        elif c in d.columns:
            out[c] = d[c]
    return out.reset_index(drop=True)


def _number(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    # 6 significant digits: what the drill-down shows, at a third of the page's bytes
    return float(f"{f:.6g}") if math.isfinite(f) else None


#: the fidelity's columns a trial's drill-down shows (``max_examples`` where the run has it)
_FIDELITY_KEYS = ("epochs", "epochs_run", "max_train_samples", "max_examples", "time_limit", "seed")


def trial_details(df: pd.DataFrame, curves: pd.DataFrame | None = None) -> dict[int, dict]:
    """What the drill-down of each trial shows, by trial id: ``summary`` (status, scores),
    ``message``, ``fidelity`` (epochs, max_train_samples, max_examples where set, time_limit,
    seed, epochs_run), ``spec`` (the decisions), ``curve`` (``epoch``, ``val_score``,
    ``train_loss`` lists from ``curves``), ``diagnostics`` (the scalar diagnostics at
    initialisation) and ``layers`` (per-layer ``block``, ``gain``, ``grad_norm`` where
    recorded). Non-finite numbers are None."""
    _require(df, "trial_id", "status")
    by_trial: dict[int, dict[str, list]] = {}
    if curves is not None and len(curves):
        c = curves.sort_values(["trial_id", "epoch"], kind="stable")
        order = c.groupby("trial_id", sort=False).cumcount() + 1
        epoch = c["epoch"].astype("float64").fillna(order.astype("float64")).to_numpy()
        val = c["val_score"].astype("float64").to_numpy()
        loss = c["train_loss"].astype("float64").to_numpy()
        ids = c["trial_id"].to_numpy()
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        ends = np.r_[starts[1:], len(ids)]
        for s, e in zip(starts, ends):
            by_trial[int(ids[s])] = {
                "epoch": [_number(x) for x in epoch[s:e]],
                "val_score": [_number(x) for x in val[s:e]],
                "train_loss": [_number(x) for x in loss[s:e]],
            }
    out: dict[int, dict] = {}
    for row in df.to_dict("records"):
        tid = int(row["trial_id"])
        diag_text = row.get("diagnostics") or "{}"
        diag = json.loads(diag_text) if isinstance(diag_text, str) else {}
        layers = diag.get("layers") if isinstance(diag.get("layers"), dict) else None
        if layers is None and isinstance(diag.get("gains"), list):  # version-1 stores
            layers = {
                "block": diag.get("block_names") or [],
                "gain": diag.get("gains") or [],
                "grad_norm": diag.get("grad_norms") or [],
            }
        scalars = {
            k: _number(v)
            for k, v in sorted(diag.items())
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        parts = [str(row["status"])]
        for key, name in (("val_score", "validation"), ("test_score", "test")):
            v = _number(row.get(key))
            if v is not None:
                parts.append(f"{name} {v:.4f}")
        fidelity = {
            k: (None if pd.isna(row.get(k)) else row.get(k)) for k in _FIDELITY_KEYS if k in row
        }
        out[tid] = {
            "summary": ", ".join(parts),
            "message": str(row.get("message") or ""),
            "fidelity": {k: _plain(v) for k, v in fidelity.items()},
            "spec": json.loads(row["spec"]) if isinstance(row.get("spec"), str) else {},
            "curve": by_trial.get(tid),
            "diagnostics": scalars,
            "layers": {
                k: [_number(x) if k != "block" else x for x in layers.get(k, [])]
                for k in ("block", "gain", "grad_norm")
                if layers.get(k)
            }
            if layers
            else None,
        }
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return _number(v)
    return v


#: how each column's cells read (the data-v attribute keeps the exact value for sorting)
def _cell(col: str, v: Any) -> tuple[str, str]:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return "", ""
    if col in ("val_score", "test_score"):
        return f"{float(v):.4f}", repr(float(v))
    if col == "seconds":
        s = float(v)
        return (f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"), repr(s)
    if col in ("params", "flops"):
        return f"{int(v):,}", str(int(v))
    if col in ("trial_id", "rung", "epochs", "epochs_run"):
        f = float(v)
        text = f"{f:g}"
        return text, text
    return str(v), ""


def trials_html(df: pd.DataFrame, curves: pd.DataFrame | None = None) -> str:
    """The table of all trials (``<table id="all-trials">``, one ``<tr class="trial"
    data-trial="ID">`` per trial, sortable by any column, a filter box) and the JSON of
    :func:`trial_details` for its drill-down (``<script type="application/json"
    id="trial-data">``)."""
    table = trials_table(df)
    if table.empty:
        return '<p class="empty">No trials yet.</p>'
    cols = list(table.columns)
    first = {"val_score", "test_score"}  # a first click on a score sorts best first
    head = "".join(
        f'<th data-first="{"desc" if c in first else "asc"}">{html.escape(c)}</th>' for c in cols
    )
    body = []
    columns = {c: table[c].tolist() for c in cols}
    for i in range(len(table)):
        tid = int(columns["trial_id"][i])
        cells = []
        for c in cols:
            text, value = _cell(c, columns[c][i])
            attr = f' data-v="{html.escape(value)}"' if value else ""
            cells.append(f"<td{attr}>{html.escape(text)}</td>")
        status = html.escape(str(columns["status"][i]))
        body.append(
            f'<tr class="trial st-{status}" id="trial-{tid}" data-trial="{tid}">'
            + "".join(cells)
            + "</tr>"
        )
    payload = json.dumps(
        {str(k): v for k, v in trial_details(df, curves).items()}, separators=(",", ":")
    ).replace("</", "<\\/")  # no "</script>" inside the script element
    return (
        '<p><input id="trial-filter" type="search" placeholder="filter: status, arch, ..." '
        f'aria-label="filter trials"> <span id="trial-count">{len(table)} shown</span></p>'
        '<div class="scroll"><table id="all-trials" class="trials">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
        f'<script type="application/json" id="trial-data">{payload}</script>'
    )
