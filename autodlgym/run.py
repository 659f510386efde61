"""Run: one run directory, opened once, read the same way by every command.

A run directory holds ``results.sqlite`` (:class:`~autodlgym.results.store.ResultStore`):
the settings the run was made with (a :class:`~autodlgym.runner.RunConfig`), the search space
it searched *as resolved when it started* (budget included, a table's own space for a lookup
task), and its trials. :class:`Run` is how everything reads it back, as Optuna's ``Study`` is
for a study::

    from autodlgym import Run

    with Run.open("runs/demo") as run:
        run.config.searcher, run.space.cardinality(), run.task.kind
        df = run.frame()               # one row per trial, one column per decision
        run.best(5)                    # the five best architectures by validation score

``Run.create(config)`` makes a new run directory (what ``run_search`` does first). Settling a
config for its task happens in one place, :func:`settle_config`: a lookup task's own
fidelities decide the epochs and whether a multi-fidelity pruner can run, and the stored
config says what actually ran.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodlgym.errors import AutoDLError
from autodlgym.registry import import_modules
from autodlgym.results.store import DB_NAME, SPACE_STATE, ResultStore
from autodlgym.runner import RunConfig
from autodlgym.searchspace.space import SearchSpace
from autodlgym.trial import BASELINE, SEARCH

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

    from autodlgym.tasks import Task


#: the named state that holds the fingerprint of a run's data file (see data_fingerprint)
DATA_STATE = "data"


def settle_config(config: RunConfig, task: Task) -> RunConfig:
    """``config`` settled for ``task``: what the task's fidelities allow, decided here only.

    - ``epochs`` left to its default: the task's full fidelity when it has one (a table's
      last epoch), else the config's own default.
    - epochs outside what the task can be evaluated at: a one-line error.
    - a multi-fidelity pruner on a task with one fidelity (a table without learning curves):
      ``--pruner auto`` becomes ``none``; an explicit pruner is refused with a one-line reason.

    Returns ``config`` itself when nothing changes.

    Raises:
        AutoDLError: epochs the task cannot evaluate at, or a pruner it cannot run.
    """
    changes: dict[str, Any] = {}
    auto_epochs = getattr(config, "_auto_epochs", False)
    auto_pruner = getattr(config, "_auto_pruner", False)
    default = task.default_fidelity()
    if auto_epochs and default is not None and default.epochs != config.epochs:
        changes["epochs"] = default.epochs
    epochs = changes.get("epochs", config.epochs)
    span = task.epoch_range()
    if span is not None and not span[0] <= epochs <= span[1]:
        raise AutoDLError(
            f"--epochs {epochs}: task {task.name!r} can be evaluated at {span[0]} to {span[1]} "
            f"epochs; give --epochs in that range or leave it out"
        )
    if config.pruner != "none":
        if span is not None and span[0] == span[1]:  # one fidelity: nothing to climb
            if auto_pruner:
                changes["pruner"] = "none"
                changes["checks_per_epoch"] = 1
            else:
                raise AutoDLError(
                    f"--pruner {config.pruner} needs lower fidelities, and task {task.name!r} "
                    f"has one only (its table holds no learning curves); use --pruner none"
                )
    return dataclasses.replace(config, **changes) if changes else config


def _absolute_task(config: RunConfig, task: Task) -> RunConfig:
    """``config`` naming its data by the absolute path its task resolved (``csv:data.csv`` ->
    ``csv:/home/me/data.csv``), so ``export``, ``retrain``, ``--resume`` and Ray workers find
    it from any working directory."""
    name = config.task
    if not isinstance(name, str) or ":" not in name or name == task.name:
        return config
    if task.name.partition(":")[0] != name.partition(":")[0]:
        return config  # a plugin task that names itself otherwise: keep what was given
    config = copy.copy(config)  # keeps the settled config's private flags
    config.task = task.name
    return config


def data_fingerprint(task: Task, now: bool = False) -> dict[str, str] | None:
    """``{"source", "sha256"}`` of the file or folder a user-data task reads (None for a
    task without one): what a run stores to notice its data changing. The task's own record
    of the bytes it read, or with ``now`` the file as it is on disk now."""
    pre = task.preprocessing or {}
    source = pre.get("source")
    if not source or not Path(source).exists():
        return None
    if not now and pre.get("sha256"):
        return {"source": str(source), "sha256": str(pre["sha256"])}
    from autodlgym.tasks.files import fingerprint

    return {"source": str(source), "sha256": fingerprint(source)}


def refuse_held(store: ResultStore) -> None:
    """Raise when ``store`` already holds a run (settings, finished or pending trials): a new
    run never writes into another one."""
    if store.load_config() is not None or store.n_finished() or store.pending():
        raise AutoDLError(
            f"{store.run_dir} already holds a run; continue it with --resume or choose another --out"
        )


def make_space(config: RunConfig, task: Task) -> SearchSpace:
    """The search space a run of ``config`` on ``task`` searches: the config's space, else
    the task's own (a lookup table's, or the default space), with the budget resolved (flag >
    space file > task) and bound to the task's inputs."""
    from autodlgym.searchspace.constraints import resolve_budget

    space = SearchSpace.from_config(config.space) if config.space else task.default_space()
    return resolve_budget(space, task, config.max_params, config.max_flops)


class Run:
    """A run directory (see the module docstring). Use :meth:`open` or :meth:`create`.

    Attributes:
        dir: the run directory.
        store: its :class:`~autodlgym.results.store.ResultStore` (open until :meth:`close`).
    """

    def __init__(
        self,
        store: ResultStore,
        settings: dict[str, Any] | None,
        *,
        allow_changed_data: bool = False,
    ) -> None:
        self.store = store
        self.dir = store.run_dir
        self._settings = settings
        self.allow_changed_data = allow_changed_data

    # Opening ----------------------------------------------------------------------------
    @classmethod
    def open(cls, run_dir: str | Path, *, allow_changed_data: bool = False) -> Run:
        """The run in ``run_dir``; writes nothing (an older store's schema is upgraded).

        ``allow_changed_data``: make :attr:`task` from its data file even when the file
        changed since the run was made (by default that is an error: the splits, and so every
        score, would no longer be those of the run).

        Raises:
            AutoDLError: no run there, or a file that is not a results store.
        """
        path = Path(run_dir)
        if path.is_file() and path.name == DB_NAME:
            path = path.parent  # the store file itself names its run
        store = ResultStore(path, create=False)
        try:
            settings = store.load_config()
            import_modules((settings or {}).get("imports") or [])  # its blocks, tasks, ...
        except BaseException:
            store.close()
            raise
        return cls(store, settings, allow_changed_data=allow_changed_data)

    @classmethod
    def create(
        cls, config: RunConfig, *, task: Task | None = None, space: SearchSpace | None = None
    ) -> Run:
        """A new run directory for ``config``: its settings (settled for the task, see
        :func:`settle_config`) and its resolved space are stored at once.

        ``task`` and ``space``, given together, are what :func:`plan` returned for
        ``config`` (so a caller that checked the run before making it does not plan twice).

        Raises:
            AutoDLError: an unknown task or space, a budget nothing fits, or a directory that
                already holds a run.
        """
        if task is None or space is None:
            config, task, space = plan(config, task)
        run_dir = Path(config.out)
        store = ResultStore(run_dir, create=True)
        try:
            refuse_held(store)
            store.save_config(config.to_dict())
            store.save_space(space.to_config())
            data = data_fingerprint(task)
            if data is not None:
                store.save_state(DATA_STATE, json.dumps(data).encode())
        except BaseException:
            store.close()
            raise
        run = cls(store, config.to_dict())
        run.__dict__["task"] = task
        run.__dict__["space"] = space
        return run

    # What the run is ---------------------------------------------------------------------
    @property
    def settings(self) -> dict[str, Any]:
        """The stored settings as a plain dict ({} for a store written without settings)."""
        return dict(self._settings or {})

    @functools.cached_property
    def config(self) -> RunConfig:
        """The run's :class:`~autodlgym.runner.RunConfig`, as stored.

        Raises:
            AutoDLError: the store holds no settings (not made by a search).
        """
        if not self._settings:
            raise AutoDLError(
                f"{self.dir} holds no search settings; start a run with autodlgym search --out {self.dir}"
            )
        return RunConfig.from_dict({**self._settings, "out": str(self.dir)})

    @functools.cached_property
    def task(self) -> Task:
        """The run's task, made from its stored name and options.

        Raises:
            AutoDLError: no settings, or the task cannot be made here (a data file moved or
                changed since the run was made, a plugin not installed); the message says
                which.
        """
        from autodlgym.tasks import get_task
        from autodlgym.tasks.base import clear_task_cache

        config = self.config
        task = get_task(config.task, **dict(config.task_kwargs))
        blob = self.store.load_state(DATA_STATE)
        if blob is None:
            return task
        stored = json.loads(blob)
        now = data_fingerprint(task, now=True)
        if now is None:
            return task
        made = (task.preprocessing or {}).get("sha256")
        if made is not None and made != now["sha256"]:
            clear_task_cache()  # made in this process from the file as it was: make it again
            task = get_task(config.task, **dict(config.task_kwargs))
        if now["sha256"] == stored["sha256"]:
            return task
        what = f"{stored['source']} changed since the run {self.dir} was made"
        if not self.allow_changed_data:
            raise AutoDLError(
                f"{what} (SHA-256 {stored['sha256'][:12]}, now {now['sha256'][:12]}): its "
                "splits and scores would not be the run's; restore the file, or pass "
                "--allow-changed-data to use it as it is now"
            )
        warnings.warn(f"{what}; using it as it is now (--allow-changed-data)", stacklevel=2)
        return task

    @functools.cached_property
    def space(self) -> SearchSpace:
        """The search space the run searched: the one stored when it started; for a run made
        before spaces were stored (0.1), rebuilt once here from its settings and task."""
        if self.store.load_state(SPACE_STATE) is not None:
            stored = self.store.load_space()
            if stored is not None:
                return stored
        if self._settings and (self._settings.get("space") or self._settings.get("task")):
            try:
                return make_space(self.config, self.task)
            except AutoDLError:
                fallback = self.store.load_space()  # the settings' space, unbound to a task
                if fallback is None:
                    raise
                return fallback
        return SearchSpace.default()

    def task_or_none(self) -> Task | None:
        """:attr:`task`, or None when it cannot be made here (what analysis falls back on)."""
        try:
            return self.task
        except AutoDLError:
            return None

    # Reading trials ----------------------------------------------------------------------
    def frame(self, include_pending: bool = False, diagnostics: str = "columns") -> pd.DataFrame:
        """The trials as a DataFrame, one column per decision of :attr:`space` (see
        :meth:`ResultStore.to_dataframe <autodlgym.results.store.ResultStore.to_dataframe>`):
        the networks trained (search and retrain phases); the scikit-learn baselines are
        :meth:`baselines`."""
        space = self._space_or_none() if diagnostics == "columns" else None
        df = self.store.to_dataframe(include_pending, diagnostics, space=space)
        if diagnostics == "columns" and "phase" in df.columns:
            df = df[df["phase"] != BASELINE].reset_index(drop=True)
        return df

    def baselines(self) -> pd.DataFrame:
        """The run's scikit-learn baselines (see :mod:`autodlgym.training.baselines`), one
        row each in the order they were fitted: ``baseline`` (its name), ``status``,
        ``val_score``, ``test_score``, ``train_seconds``, ``trial_id``, ``message``. Empty
        for a run without them."""
        import pandas as pd

        cols = ["baseline", "status", "val_score", "test_score", "train_seconds", "trial_id"]
        rows = []
        fidelities = self.store.fidelities()
        for trial_id, spec, result in self.store.results(phase=BASELINE):
            if fidelities[trial_id].phase != BASELINE:
                continue
            rows.append(
                [spec.get("baseline"), result.status, result.val_score, result.test_score,
                 result.train_seconds, trial_id, result.message]
            )  # fmt: skip
        return pd.DataFrame(rows, columns=[*cols, "message"])

    def curves(self) -> pd.DataFrame:
        """Learning curves in long form (``trial_id, epoch, train_loss, val_score,
        seconds``)."""
        return self.store.curves()

    def best(self, n: int = 1, phase: str = SEARCH) -> pd.DataFrame:
        """The ``n`` best architectures by validation score, best first: one row each, its
        trial of ``phase`` at the highest fidelity it reached with its best score there (the
        earliest on ties), of the trials with a usable score (``ok``, or ``stopped`` by the
        search's deadline with the score it reached). Columns: the frame's, and ``n_evals``,
        ``rung`` and ``stopped`` (see :func:`autodlgym.results.ranking.by_architecture`)."""
        from autodlgym.results.ranking import best_architectures

        df = self.frame()
        return best_architectures(df[df["phase"] == phase], n)

    def final(self) -> dict[str, Any] | None:
        """The search's final choice when it ran final selection (``RunConfig.final_seeds``):
        ``trial_id`` (the search trial of the chosen architecture), ``arch_id``, ``n``
        (seeds), ``val_mean``, ``val_sd``, ``test_mean``, ``test_sd``, ``candidates`` (the
        same for each candidate retrained) and ``note``; None otherwise."""
        blob = self.store.load_state("final")
        return None if blob is None else json.loads(blob)

    def answer(self) -> int | None:
        """The trial id that stands for the run's answer: the final choice, else the best
        architecture's trial (:meth:`best`); None without a usable trial."""
        final = self.final()
        if final is not None:
            return int(final["trial_id"])
        best = self.best()
        return None if best.empty else int(best["trial_id"].iloc[0])

    def table_scores(self) -> np.ndarray | None:
        """Every validation score of a lookup task's table at the run's fidelity (what random
        search's expectation is drawn from); None for a task that trains."""
        task = self.task_or_none()
        if task is None or task.kind != "lookup":
            return None
        epochs = self.config.epochs if self._settings else None
        try:
            return task.outcomes(epochs).val
        except AutoDLError:
            return task.outcomes().val

    def _space_or_none(self) -> SearchSpace | None:
        try:
            return self.space
        except AutoDLError:
            return None  # the frame then has one column per spec key

    # Lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r})"


def plan(config: RunConfig, task: Task | None = None) -> tuple[RunConfig, Task, SearchSpace]:
    """What a new run of ``config`` will be, checked before anything is written: the
    settled config, its task and its resolved space.

    Raises:
        AutoDLError: an unknown task or space, a setting the task does not allow, a budget
            nothing fits.
    """
    from autodlgym.searchspace.constraints import cheapest
    from autodlgym.tasks import get_task

    import_modules(config.imports)  # the user's registrations come first
    if task is None:
        task = get_task(config.task, **config.task_kwargs)
    config = settle_config(config, task)
    config = _absolute_task(config, task)
    if _wants_data_budget(config, task):
        task = with_data_budget(task, max(1, int(config.cpus_per_trial)))
    space = make_space(config, task)
    if space.constraints.active:
        cheapest(space)  # a budget nothing fits: one line, before anything is written
    return config, task, space


def _wants_data_budget(config: RunConfig, task: Task) -> bool:
    """A user's data without a budget of its own, and a limit left to the defaults."""
    from autodlgym.searchspace.constraints import DEFAULT

    return (
        task.kind == "trained"
        and task.preprocessing is not None
        and not task.budget.active
        and (config.max_params == DEFAULT or config.max_flops == DEFAULT)
        and not (config.space or {}).get("constraints")
    )


def with_data_budget(task: Task, threads: int = 1) -> Task:
    """``task`` with a default budget sized from its data and this machine
    (:func:`~autodlgym.searchspace.constraints.data_budget`): its training rows and input
    size, and the training speed measured here on ``threads`` torch threads (the speed the
    trials' limits start from, :mod:`autodlgym.training.limits`)."""
    import dataclasses
    import math

    from autodlgym.execution.local import torch_threads
    from autodlgym.searchspace.constraints import data_budget
    from autodlgym.training.limits import process_throughput

    data = task.load()
    with torch_threads(threads):
        speed = process_throughput().flops_per_second_now
    budget = data_budget(len(data.y_train), math.prod(task.io.shape), speed)
    return dataclasses.replace(task, budget=budget)


def load_results(
    run_dir: str | Path, include_pending: bool = False, diagnostics: str = "columns"
) -> pd.DataFrame:
    """The trials of a run as a DataFrame: ``Run.open(run_dir).frame(...)`` (see
    :meth:`ResultStore.to_dataframe <autodlgym.results.store.ResultStore.to_dataframe>`); with
    ``diagnostics="layers"`` the per-layer diagnostics as a tidy frame instead.

    Safe to call while a search is writing to ``run_dir``. Writes nothing, unless the store
    has an older schema version, which is upgraded first.

    Raises:
        AutoDLError: ``run_dir`` holds no autodlgym run.
    """
    with Run.open(run_dir) as run:
        return run.frame(include_pending=include_pending, diagnostics=diagnostics)
