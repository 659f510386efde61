"""Any run as an Optuna study, so ``optuna-dashboard`` and ``optuna.importance`` read it.

Each trial becomes a finished Optuna trial: its parameters and distributions are what
:meth:`SearchSpace.suggest` would have suggested for its spec (the encoding the Optuna
searchers use, so a study exported from a ``tpe`` run matches the one it searched with); its
values are ``val_score`` (and the searcher's other objectives when it searched several); its
intermediate values are the per-epoch validation scores of the store's ``curves`` table,
keyed by epoch (single-objective runs; Optuna keeps none for several objectives); its
user attributes carry ``arch_id``, ``status``, ``trial_id`` and the failure message.

Statuses map as the Optuna searchers tell them: ``ok`` -> COMPLETE, ``pruned`` -> PRUNED,
every failure -> FAIL.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodlgym.errors import AutoDLError
from autodlgym.trial import SEARCH

if TYPE_CHECKING:  # pragma: no cover
    import optuna
    import pandas as pd

    from autodlgym.searchspace.space import SearchSpace

STUDY_NAME = "autodlgym"


def run_space(config: Mapping[str, Any]) -> SearchSpace:
    """Deprecated (0.2.0): ``Run.open(run_dir).space``, the space stored with the run.

    The space a stored run config names: its space config, else its task's own space."""
    warnings.warn(
        "autodlgym.analysis.run_space(config) is deprecated and will be removed in 0.3.0; "
        "use autodlgym.Run.open(run_dir).space (the space stored with the run)",
        DeprecationWarning,
        stacklevel=2,
    )
    from autodlgym.searchspace.space import SearchSpace

    if config.get("space"):
        return SearchSpace.from_config(config["space"])
    task = _config_task(config)
    return task.default_space() if task is not None else SearchSpace.default()


def run_task(config: Mapping[str, Any]) -> Any:
    """Deprecated (0.2.0): ``Run.open(run_dir).task``."""
    warnings.warn(
        "autodlgym.analysis.optuna_export.run_task(config) is deprecated and will be removed "
        "in 0.3.0; use autodlgym.Run.open(run_dir).task",
        DeprecationWarning,
        stacklevel=2,
    )
    return _config_task(config)


def _config_task(config: Mapping[str, Any]) -> Any:
    if not config.get("task"):
        return None
    try:
        from autodlgym.tasks import get_task

        return get_task(config["task"], **(config.get("task_kwargs") or {}))
    except AutoDLError:
        return None


def spec_params(
    space: SearchSpace, spec: Mapping[str, Any], encoding: str = "categorical"
) -> tuple[dict[str, Any], dict[str, optuna.distributions.BaseDistribution]] | None:
    """Optuna ``(params, distributions)`` of a spec under ``space.suggest``; None when the spec
    is not in the space (a spec from an older space, a malformed one)."""
    from optuna.trial import FixedTrial

    trial = FixedTrial(dict(spec))
    try:
        space.suggest(trial, encoding)
    except (ValueError, KeyError, TypeError):
        return None
    return dict(trial.params), dict(trial.distributions)


class _Encoder:
    """:func:`spec_params` for many specs: a decision's distribution depends only on the
    decision, so once every decision of a spec has been seen the params are read off the spec
    (about 20x faster than replaying ``space.suggest`` for each of 10,000 trials)."""

    def __init__(self, space: SearchSpace, encoding: str = "categorical") -> None:
        if encoding not in ("categorical", "snap"):  # params must be the raw values
            raise ValueError(f"_Encoder reads params off the spec; {encoding!r} encodes them")
        self.space = space
        self.encoding = encoding
        self.dists: dict[str, optuna.distributions.BaseDistribution] = {}

    def __call__(
        self, spec: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, optuna.distributions.BaseDistribution]] | None:
        from optuna.distributions import FloatDistribution, IntDistribution

        if not all(k in self.dists for k in spec):
            out = spec_params(self.space, spec, self.encoding)
            if out is not None:
                self.dists.update(out[1])
            return out
        params: dict[str, Any] = {}
        for k, v in spec.items():
            d = self.dists[k]
            if isinstance(d, FloatDistribution):
                v = float(v)
            elif isinstance(d, IntDistribution):
                v = int(v)
            elif v not in d.choices:  # an option this space no longer has
                return spec_params(self.space, spec, self.encoding)
            params[k] = v
        return params, {k: self.dists[k] for k in spec}


def objectives_of(config: Mapping[str, Any]) -> list[str]:
    """The objectives a run searched: ``val_score`` first, then minimised costs (nsga2 or an
    ``objectives`` searcher option); just ``val_score`` for every other searcher."""
    opts = config.get("searcher_options") or {}
    objectives = opts.get("objectives")
    if objectives is None:
        return ["val_score", "params"] if config.get("searcher") == "nsga2" else ["val_score"]
    if isinstance(objectives, str):
        objectives = [o.strip() for o in objectives.split(",") if o.strip()]
    return [str(o) for o in objectives] or ["val_score"]


def frozen_trials(
    df: pd.DataFrame,
    space: SearchSpace,
    curves: pd.DataFrame | None = None,
    objectives: list[str] | None = None,
    encoding: str = "categorical",
) -> list[optuna.trial.FrozenTrial]:
    """The trials of a results frame as finished Optuna trials (see the module docstring).

    Trials whose spec is not in ``space`` are left out. A trial ``ok`` but missing one of its
    objective values (a cost the trainer did not record) becomes FAIL.
    """
    import json
    import math

    import numpy as np
    import optuna
    from optuna.trial import TrialState

    objectives = objectives or ["val_score"]
    by_trial: dict[int, dict[int, float]] = {}
    if curves is not None and len(curves) and len(objectives) == 1:
        # steps are epochs (1-based), as the Optuna searchers and the pruning service report
        order = curves.groupby("trial_id").cumcount() + 1
        steps = curves["epoch"].fillna(order.astype("float64"))
        keep = np.isfinite(curves["val_score"].to_numpy(dtype="float64"))
        for tid, step, v in zip(curves["trial_id"][keep], steps[keep], curves["val_score"][keep]):
            by_trial.setdefault(int(tid), {})[int(step)] = float(v)
    encode = _Encoder(space, encoding)
    cols = {o: df[o].astype("float64").to_numpy() for o in objectives if o in df.columns}
    out = []
    for i, (tid, status, arch_id, spec_text, message) in enumerate(
        zip(df["trial_id"], df["status"], df["arch_id"], df["spec"], df["message"])
    ):
        pd_ = encode(json.loads(spec_text))
        if pd_ is None:
            continue
        params, dists = pd_
        values = None
        state = TrialState.FAIL
        if status == "ok":
            vals = [cols[o][i] if o in cols else math.nan for o in objectives]
            if all(math.isfinite(v) for v in vals):
                values, state = vals, TrialState.COMPLETE
        elif status == "pruned":
            state = TrialState.PRUNED
        attrs = {"trial_id": int(tid), "arch_id": str(arch_id), "status": str(status)}
        if message:
            attrs["message"] = str(message)
        out.append(
            optuna.trial.create_trial(
                state=state,
                values=values,
                params=params,
                distributions=dists,
                user_attrs=attrs,
                intermediate_values=by_trial.get(int(tid), {}),
            )
        )
    return out


def export_optuna(
    run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
) -> Path:
    """Write a run as an Optuna study in a SQLite file; return the file's path.

    Args:
        run_dir: the run directory.
        out: the database file (default ``RUN_DIR/optuna-export.db``). It must not exist:
            an export never overwrites.

    Open it with ``optuna-dashboard sqlite:///PATH`` or
    ``optuna.load_study(study_name="autodlgym", storage="sqlite:///PATH")``.

    Raises:
        AutoDLError: no run in ``run_dir``; ``out`` already exists.
    """
    import optuna

    from autodlgym.optuna_utils import quiet_optuna
    from autodlgym.run import Run

    with Run.open(run_dir) as run:
        df = run.frame()
        curves = run.curves()
        config = run.settings
        space = run.space
    # the search's trials only: retrained evaluations (autodlgym retrain) are not search trials
    df = df[df["phase"] == SEARCH].reset_index(drop=True)
    curves = curves[curves["trial_id"].isin(df["trial_id"])].reset_index(drop=True)
    path = Path(out) if out is not None else Path(run_dir) / "optuna-export.db"
    if path.exists():
        raise AutoDLError(f"{str(path)!r} already exists; remove it or give another --out")
    objectives = objectives_of(config)
    trials = frozen_trials(df, space, curves, objectives)
    left_out = len(df) - len(trials)
    if left_out:
        warnings.warn(
            f"{left_out} of {len(df)} trials left out of the study: their specs are not in "
            "the run's search space (a spec from an older space, or one the searcher "
            "proposed outside it)",
            UserWarning,
            stacklevel=2,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    quiet_optuna()
    storage = optuna.storages.RDBStorage(f"sqlite:///{path.resolve()}")
    directions = ["maximize"] + ["minimize"] * (len(objectives) - 1)
    study = optuna.create_study(storage=storage, study_name=STUDY_NAME, directions=directions)
    if len(objectives) > 1:
        study.set_metric_names(objectives)
    study.set_user_attr("task", str(config.get("task", "")))
    study.set_user_attr("searcher", str(config.get("searcher", "")))
    study.set_user_attr("run_dir", str(Path(run_dir).resolve()))
    study.add_trials(trials)
    storage.engine.dispose()
    return path


def export_optuna_command(args: Any) -> int:
    """``autodlgym export-optuna RUN [--out FILE]``."""
    if not Path(args.run).is_dir():
        raise AutoDLError(f"run directory {args.run!r} does not exist")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        path = export_optuna(args.run, args.out)
    for w in caught:
        if issubclass(w.category, UserWarning):
            print(f"warning: {w.message}", file=sys.stderr)
    import optuna

    n = len(optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{path.resolve()}").trials)
    print(f"study {STUDY_NAME!r} written to {path}: {n} trials")
    print(f"open it with: optuna-dashboard sqlite:///{path.resolve()}")
    return 0
