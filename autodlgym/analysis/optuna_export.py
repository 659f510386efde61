"""Any run as an Optuna study, so ``optuna-dashboard`` and ``optuna.importance`` read it.

Each trial becomes a finished Optuna trial:

- parameters and distributions: what :meth:`SearchSpace.suggest` would have suggested for its
  spec (the encoding the Optuna searchers use, so a study exported from a ``tpe`` run matches
  the one it searched with);
- values: ``val_score`` (and the searcher's other objectives when it searched several), with
  the study's metric names set to the objectives' names and ``val_score`` maximised, the
  costs minimised;
- intermediate values: the per-epoch validation scores of the store's ``curves`` table, keyed
  by epoch (single-objective runs; Optuna keeps none for several objectives);
- start and completion times: the trial completed when the store recorded it
  (``finished_at``) and started its ``train_seconds + eval_seconds`` before that, so the
  dashboard's timeline shows when each trial ran and for how long. A trial reused from an
  earlier evaluation of the same spec ran for no time (it starts when it completes). Times
  are naive local times, as Optuna's own trials have;
- user attributes: ``trial_id``, ``arch_id``, ``status``, ``message``, ``test_score``,
  ``params``, ``flops``, ``train_seconds``, ``eval_seconds``, ``epochs``,
  ``max_train_samples`` and ``max_examples`` (its fidelity), ``epochs_run``, ``rung`` (the
  index of its fidelity among the run's rungs, for a run under ``--pruner asha``),
  ``latency`` (tasks that measure it), ``reused_from`` and ``stopped`` (see below). An attribute the trial has no value for is
  left out (``max_train_samples``: it trained on the whole training set; ``max_examples``:
  whole epochs).

Numbers are written at the precision they were measured with (:func:`measured`): the trainer
scores in float32, so a score that is exactly a float32 is written to the 6 significant digits
a float32 holds (0.56, not 0.5600000023841858; 0.0833333, not 0.0833333358168602); any other
score (a table's, an R^2 computed in float64) is written as stored. Seconds are written to the
microsecond; counts (params, FLOPs) exactly.

Statuses map as the Optuna searchers tell them: ``ok`` -> COMPLETE, ``pruned`` -> PRUNED,
every failure -> FAIL. A trial ``stopped`` by the search's time budget keeps the score it
reached: it is COMPLETE with that value and a ``stopped: True`` attribute (FAIL when it was
stopped before its first validation check).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodlgym.errors import AutoDLError
from autodlgym.results.ranking import fidelity_levels
from autodlgym.trial import OK, PRUNED, SEARCH, STOPPED

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


def measured(value: float) -> float:
    """``value`` at the precision it was measured with: a float32 (what the trainer scores
    in) rounded to the 6 significant decimal digits a float32 holds
    (``np.finfo(np.float32).precision``; 0.5600000023841858 is 0.56), any other value
    unchanged (a float64 measurement, such as a table's score)."""
    import numpy as np

    v = float(value)
    single = np.float32(v)
    if not np.isfinite(single) or float(single) != v:
        return v
    return float(f"{v:.{np.finfo(np.float32).precision}g}")


def rung_levels(df: pd.DataFrame) -> list[tuple[float, float]]:
    """The distinct fidelities of a run's trials as ``(epochs, examples)``, lowest
    first (:func:`autodlgym.results.ranking.fidelity_levels`). Under ``--pruner asha`` these
    are the rungs the trials reached; a trial's rung is the index of its own fidelity here."""
    return sorted(set(fidelity_levels(df)))


def frozen_trials(
    df: pd.DataFrame,
    space: SearchSpace,
    curves: pd.DataFrame | None = None,
    objectives: list[str] | None = None,
    encoding: str = "categorical",
    rungs: list[tuple[int, float]] | None = None,
) -> list[optuna.trial.FrozenTrial]:
    """The trials of a results frame as finished Optuna trials (see the module docstring).

    ``rungs`` (:func:`rung_levels` of the run's trials, for a run under ``--pruner asha``)
    gives each trial its ``rung`` attribute. Trials whose spec is not in ``space`` are left
    out. A trial ``ok`` or ``stopped`` but missing one of its objective values (a cost the
    trainer did not record) becomes FAIL. A frame without ``finished_at`` gives trials that
    start and complete now.
    """
    import datetime
    import json
    import math

    import numpy as np
    import optuna
    import pandas as pd
    from optuna.trial import TrialState

    objectives = objectives or ["val_score"]
    by_trial: dict[int, dict[int, float]] = {}
    if curves is not None and len(curves) and len(objectives) == 1:
        # steps are epochs (1-based), as the Optuna searchers and the pruning service report
        order = curves.groupby("trial_id").cumcount() + 1
        steps = curves["epoch"].fillna(order.astype("float64"))
        keep = np.isfinite(curves["val_score"].to_numpy(dtype="float64"))
        for tid, step, v in zip(curves["trial_id"][keep], steps[keep], curves["val_score"][keep]):
            by_trial.setdefault(int(tid), {})[int(step)] = measured(v)
    encode = _Encoder(space, encoding)
    cols = {o: df[o].astype("float64").to_numpy() for o in objectives if o in df.columns}
    rung_of = {level: i for i, level in enumerate(rungs or [])}
    now = datetime.datetime.now()
    out = []
    levels = fidelity_levels(df)
    for i, row in enumerate(df.to_dict("records")):
        pd_ = encode(json.loads(row["spec"]))
        if pd_ is None:
            continue
        params, dists = pd_
        status = str(row["status"])
        values = None
        state = TrialState.FAIL
        if status in (OK, STOPPED):
            vals = [_objective(o, cols[o][i]) if o in cols else math.nan for o in objectives]
            if all(math.isfinite(v) for v in vals):
                values, state = vals, TrialState.COMPLETE
        elif status == PRUNED:
            state = TrialState.PRUNED
        trial = optuna.trial.create_trial(
            state=state,
            values=values,
            params=params,
            distributions=dists,
            user_attrs=_attrs(row, rung_of.get(levels[i])),
            intermediate_values=by_trial.get(int(row["trial_id"]), {}),
        )
        finished = row.get("finished_at")
        if finished is None or pd.isna(finished):
            trial.datetime_start = trial.datetime_complete = now
        else:
            complete = datetime.datetime.fromtimestamp(pd.Timestamp(finished).timestamp())
            reused = not pd.isna(row.get("reused_from", None))
            seconds = 0.0 if reused else _seconds(row)
            trial.datetime_complete = complete
            trial.datetime_start = complete - datetime.timedelta(seconds=seconds)
        out.append(trial)
    return out


#: user attributes copied from the frame as they are (ints) or at their precision (floats)
_INT_ATTRS = (
    "params", "flops", "epochs", "max_train_samples", "max_examples", "epochs_run", "reused_from",
)  # fmt: skip
_SCORE_ATTRS = ("test_score", "latency")
_SECONDS_ATTRS = ("train_seconds", "eval_seconds")


def _objective(name: str, value: float) -> float:
    if name.endswith("_seconds"):
        return round(float(value), 6)
    if name in ("params", "trainable_params", "flops"):
        return float(value)  # counts: exact
    return measured(value)


def _seconds(row: Mapping[str, Any]) -> float:
    """The trial's training + evaluation seconds, to the microsecond (missing parts: 0)."""
    import math

    total = 0.0
    for col in _SECONDS_ATTRS:
        v = row.get(col)
        if v is not None and math.isfinite(float(v)):
            total += float(v)
    return round(max(total, 0.0), 6)


def _attrs(row: Mapping[str, Any], rung: int | None) -> dict[str, Any]:
    import pandas as pd

    attrs: dict[str, Any] = {
        "trial_id": int(row["trial_id"]),
        "arch_id": str(row["arch_id"]),
        "status": str(row["status"]),
    }
    if row.get("message"):
        attrs["message"] = str(row["message"])
    for name in _INT_ATTRS:
        v = row.get(name)
        if v is not None and not pd.isna(v):
            attrs[name] = int(v)
    for name in _SCORE_ATTRS:
        v = row.get(name)
        if v is not None and not pd.isna(v):
            attrs[name] = measured(v)
    for name in _SECONDS_ATTRS:
        v = row.get(name)
        if v is not None and not pd.isna(v):
            attrs[name] = round(float(v), 6)
    if rung is not None:
        attrs["rung"] = rung
    if row["status"] == STOPPED:
        attrs["stopped"] = True
    return attrs


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
    # rungs: under asha only (another run's fidelities are one, or a retrain's)
    rungs = rung_levels(df) if config.get("pruner") == "asha" else None
    trials = frozen_trials(df, space, curves, objectives, rungs=rungs)
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
