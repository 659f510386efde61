"""The pandas frames of a run's trials, built from the rows a
:class:`~autodlgym.results.store.ResultStore` reads (the store keeps persistence only).

:func:`trials_frame` is one row per trial with flat columns, one per decision of the space it
is given; :func:`layers_frame` the per-layer diagnostics in long form. Both are reached
through ``ResultStore.to_dataframe`` and ``Run.frame``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from autodlgym.results.store import (
    _LAYER_DTYPES,
    BASE_COLUMNS,
    TAIL_COLUMNS,
    ResultStore,
    _is_scalar,
    _typed_series,
)
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import SEARCH


def trials_frame(store: ResultStore, space: Any, include_pending: bool = False) -> pd.DataFrame:
    """One row per finished trial, by trial id (columns: ``ResultStore.to_dataframe``);
    ``space`` names the decision columns (None: one column per spec key)."""
    rows = store.frame_rows(include_pending)

    columns: dict[str, list[Any]] = {name: [] for name in BASE_COLUMNS}
    # plain dicts: the stored spec text is already canonical JSON, and dict lookups are
    # much faster than ArchSpec's Mapping methods on large runs
    specs: list[dict[str, Any]] = []
    spec_texts: list[str] = []
    diags: list[dict[str, Any]] = []
    diag_texts: list[str] = []
    extras: list[dict[str, Any]] = []
    max_examples: list[int | None] = []
    for r in rows:
        (trial_id, arch_id, spec_json, fid_key, seed, status, val, test, loss, params,
         tparams, flops, tsec, esec, rss, gpu, epochs_run, message, worker, device, diag,
         reused, finished, extra_json) = r  # fmt: skip
        spec = json.loads(spec_json)
        fid = json.loads(fid_key)
        specs.append(spec)
        spec_texts.append(spec_json)
        record = {
            "trial_id": trial_id, "arch_id": arch_id or ArchSpec(spec).arch_id, "status": status,
            "val_score": val, "test_score": test, "train_loss": loss, "params": params,
            "trainable_params": tparams, "flops": flops, "train_seconds": tsec,
            "eval_seconds": esec, "peak_rss_mb": rss, "peak_gpu_mb": gpu, "epochs_run": epochs_run,
            "epochs": fid.get("epochs"), "max_train_samples": fid.get("max_train_samples"),
            "time_limit": fid.get("time_limit"), "phase": fid.get("phase", SEARCH),
            "seed": seed, "message": message,
            "worker": worker, "device": device, "reused_from": reused, "finished_at": finished,
        }  # fmt: skip
        for name in BASE_COLUMNS:
            columns[name].append(record[name])
        max_examples.append(fid.get("max_examples"))
        extras.append(json.loads(extra_json) if extra_json else {})
        d = json.loads(diag) if diag else {}
        diags.append(d)
        diag_texts.append(diag or "{}")

    frame: dict[str, Any] = {}
    for name, dtype in BASE_COLUMNS.items():
        if name == "finished_at":
            frame[name] = pd.to_datetime(
                pd.Series(columns[name], dtype="float64"), unit="s", utc=True
            ).astype(dtype)
        else:
            frame[name] = pd.Series(columns[name], dtype=dtype)

    if any(v is not None for v in max_examples):  # a first ASHA rung of the first batches
        at = list(frame).index("max_train_samples") + 1
        items = list(frame.items())
        items.insert(at, ("max_examples", pd.Series(max_examples, dtype="Int64")))
        frame = dict(items)

    # TrialResult fields without a column of their own (``latency``): one column each
    for name in sorted({k for e in extras for k, v in e.items() if v is not None}):
        if name not in frame and all(_is_scalar(e.get(name)) for e in extras):
            frame[name] = _typed_series([e.get(name) for e in extras])
    taken = set(frame) | set(TAIL_COLUMNS)
    if space is not None:
        choice_cols = [space.columns(s) for s in specs]
        names = [c.name for c in space.choices]
        choice_values = {n: [c[n] for c in choice_cols] for n in names}
        # keys outside the space (a spec from an older space) still get a column
        extra = sorted({k for s in specs for k in s} - set(names))
        choice_values.update({n: [s.get(n) for s in specs] for n in extra})
        names += extra
        # the options fix the dtype even when no trial has the decision active
        options = {c.name: list(c.options) for c in space.choices}
    else:
        names = sorted({k for s in specs for k in s})
        choice_values = {n: [s.get(n) for s in specs] for n in names}
        options = {}
    for n in names:
        col = n if n not in taken and not n.startswith("diag_") else f"choice_{n}"
        frame[col] = _typed_series(choice_values[n], options.get(n, ()))
        taken.add(col)

    diag_names = sorted({k for d in diags for k, v in d.items() if _is_scalar(v)})
    for n in diag_names:
        frame[f"diag_{n}"] = _typed_series(
            [d.get(n) if _is_scalar(d.get(n)) else None for d in diags]
        )
    frame["diagnostics"] = pd.Series(diag_texts, dtype="str")
    frame["spec"] = pd.Series(spec_texts, dtype="str")
    df = pd.DataFrame(frame)
    df.attrs["environment"] = store.environments()
    return df


def layers_frame(store: ResultStore) -> pd.DataFrame:
    """The per-layer diagnostics as a tidy frame (see :meth:`ResultStore.to_dataframe`)."""
    rows = store.diagnostics_rows()
    cols: dict[str, list[Any]] = {k: [] for k in _LAYER_DTYPES}
    for trial_id, text in rows:
        d = json.loads(text) if text else {}
        # version-1 stores kept the lists at the top level under other names
        layers = d.get("layers") or {
            "block": d.get("block_names", []),
            "gain": d.get("gains", []),
            "grad_norm": d.get("grad_norms", []),
        }
        for i, name in enumerate(layers.get("block", [])):
            cols["trial_id"].append(trial_id)
            cols["layer"].append(i)
            cols["block"].append(name)
            for key in ("gain", "grad_norm"):
                values = layers.get(key, [])
                cols[key].append(values[i] if i < len(values) else None)
    return pd.DataFrame(
        {
            k: pd.Series([math.nan if v is None else v for v in cols[k]], dtype=t)
            if t == "float64"
            else pd.Series(cols[k], dtype=t)
            for k, t in _LAYER_DTYPES.items()
        }
    )
