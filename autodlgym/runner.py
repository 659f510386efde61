"""run_search: the loop that joins a searcher, an executor and the results store.

::

    searcher.ask(1) -> spec -> store.add_pending -> executor.submit
    executor.wait() -> result -> store.append (committed) -> searcher.tell -> store.save_state

A new candidate is asked for as soon as a worker is free (no batch barrier). Every finished trial
is committed before the searcher hears of it, and the searcher's state is saved after every tell,
so a run killed at any moment (Ctrl-C, SIGKILL, a lost machine) continues with
``run_search(..., resume=True)`` / ``autodlgym search --out DIR --resume``: finished trials are
kept, trials that were in flight run again under the same trial id, and the searcher continues
where it was.

A search limited by a time budget is multi-fidelity by default (``pruner="asha"``): a
:class:`~autodlgym.execution.rungs.RungScheduler` starts each new candidate on a third of an
epoch and promotes the best of each rung to longer training, up to the full ``epochs``, so many
candidates are tried cheaply and the best are trained long. When the budget runs out, the
trials still training stop at their next batch and are recorded with status ``stopped`` and the
scores they reached.

:func:`run_search` runs the steps of :class:`_Search` in order: :func:`resolve_config`, open the
store, make the searcher, make the executor, the ask / submit / collect loop until a stop
condition holds (trials, time, Ctrl-C), close, summary.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import shutil
import statistics
import warnings
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodlgym import clock
from autodlgym.errors import AutoDLError, SpecError
from autodlgym.execution.pruning import PRUNERS
from autodlgym.execution.rungs import RungScheduler
from autodlgym.progress import SearchProgress, wants_progress
from autodlgym.results.store import ResultStore
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import (
    BASELINE,
    ERROR,
    ONESHOT,
    SEARCH,
    Fidelity,
    TrialJob,
    TrialResult,
    can_continue,
    fidelity_level,
)

if TYPE_CHECKING:  # pragma: no cover
    from autodlgym.tasks import Task

CONFIG_VERSION = 1
#: training seconds a trial may take per epoch when ``trial_time_limit="auto"``
AUTO_SECONDS_PER_EPOCH = 60.0
#: epochs of a trial when ``epochs`` is not given: without multi-fidelity, and with it (the
#: most a promoted candidate trains)
DEFAULT_EPOCHS = 2
MULTI_FIDELITY_EPOCHS = 20
#: validation checks per epoch under Optuna's pruners: their rungs start below one epoch
MULTI_FIDELITY_CHECKS = 4
#: the pruner a search limited by ``time_budget`` gets when ``pruner="auto"``
TIME_BUDGET_PRUNER = "asha"
#: with ``pruner="asha"``, a time budget and ``trial_time_limit="auto"``, a first-rung trial
#: may take at most this share of the budget (1/6: 10 s of a minute), three times more per
#: rung up; its own limit follows the machine's measured speed below that
FIRST_RUNG_SHARE = 6
#: final selection (``final_seeds``): how many of the best candidates are retrained, the share
#: of ``time_budget`` kept for it, and below how many training rows it is on by default
FINAL_TOP = 3
FINAL_SHARE = 0.2
FINAL_AUTO_ROWS = 10_000
FINAL_AUTO_SEEDS = 3
#: the named state holding the final choice of a run (see ``_Search.finalise``)
FINAL_STATE = "final"
#: the searcher of ``searcher="auto"`` when a time budget runs ASHA (BOHB-style: TPE proposes
#: the candidates each rung starts; measured against random in RunConfig's docstring)
TIME_BUDGET_SEARCHER = "tpe"
#: ``promotions`` values: how an ASHA promotion trains (RunConfig's docstring)
PROMOTIONS = ("continue", "retrain")
#: the folder of a run that holds the training states promotions continue from
CHECKPOINTS = "checkpoints"
#: ``pruner`` values: ``asha`` is autodlgym's rung scheduler, the others Optuna's pruners
RUN_PRUNERS = ("auto", "asha", *PRUNERS)
#: ``oneshot`` values: the one-shot evaluators of :mod:`autodlgym.oneshot`
ONESHOT_EVALUATORS = ("supernet", "hypernet")
#: epochs per partition of training settings of a one-shot evaluator when none are given
ONESHOT_EPOCHS = 30


@dataclass
class RunConfig:
    """Everything that defines a search; stored in the run directory so ``--resume`` can
    continue it.

    Args:
        out: run directory (created if missing).
        task: task name (``autodlgym tasks``), e.g. ``"mnist1d"`` or ``"npz:data.npz"``, or a
            :class:`~autodlgym.tasks.Task` (its name and options are stored).
        task_kwargs: task options, e.g. ``{"length": 100}`` for ``adding``.
        searcher: registry name, entry-point name or ``package.module:Class``; ``"auto"``:
            ``TIME_BUDGET_SEARCHER`` (TPE) when a ``time_budget`` makes the search run ASHA,
            else ``random``. Measured with ``benchmarks/bench_asha_searchers.py`` on
            ``mnist1d-table`` inside ASHA, seeds 0-11: TPE's validation regret 0.0030 against
            random's 0.0110 at 100 trials (one-sided Mann-Whitney p = 0.006), 0.0127 against
            0.0460 at 40 (p = 0.055).
        searcher_options: keyword options for the searcher.
        space: a search-space config (see :meth:`SearchSpace.from_config`); None for the
            task's own space (tabular tasks bring one) or else the default space.
        trials: evaluation budget (None: only ``time_budget`` stops the search).
        time_budget: seconds of search wall time over all sessions of the run (None: no limit).
            Trials still training when it runs out stop at their next batch with status
            ``stopped``, keeping the scores they reached.
        epochs, max_train_samples, trial_time_limit: the full fidelity of every trial (on a
            tabular task, ``epochs`` picks the point of the stored learning curve). A trial
            that reaches ``trial_time_limit`` seconds is cut: it ends ``stopped`` with the
            epochs and scores it completed (``timeout`` when it trained nothing).
            ``"auto"``: each trial's limit follows its worker's measured speed (its FLOPs over
            the training FLOPs per second measured during the run, times a margin, with a
            floor: :mod:`autodlgym.training.limits`), at most ``AUTO_SECONDS_PER_EPOCH`` per
            epoch (so one very wide candidate cannot stall a CPU search); None or ``"none"``
            no limit. ``epochs=None``:
            ``MULTI_FIDELITY_EPOCHS`` when a pruner runs, else ``DEFAULT_EPOCHS``.
        checks_per_epoch: validation checks (and pruner reports) per epoch; None:
            ``MULTI_FIDELITY_CHECKS`` under Optuna's pruners, else 1.
        seed: seeds the searcher and every trial's training.
        workers: trials in flight at once; 1 with no ``ray_address`` trains in-process, more
            uses Ray. None: 1 locally, or one per GPU / CPU core when ``ray_address`` is given.
        cpus_per_trial, gpus_per_trial: Ray resources of each worker (0.25 GPUs: four per GPU);
            ``max(1, int(cpus_per_trial))`` is also torch's threads of each trial, in-process
            as on Ray (one count under any load: the same scores, and no threads waiting for
            each other on a busy machine).
        ray_address: join an existing Ray cluster (``"auto"`` or ``"host:port"``).
        device: torch device for in-process training (``"auto"``: CUDA if available).
        pruner: multi-fidelity, so many candidates are tried cheaply and the best train for
            the full ``epochs``. ``asha``: promotion-based successive halving over rungs from a
            third of an epoch up (:mod:`autodlgym.execution.rungs`); ``median``, ``sha``,
            ``hyperband``: Optuna's pruners, which stop poor trials at their validation checks;
            ``none``; ``auto``: ``asha`` when ``time_budget`` is given, else ``none``.
        max_retries: times a trial is retried when its Ray worker dies.
        amp: mixed precision on CUDA.
        imports: modules imported before anything is looked up, here and on every Ray
            worker (``--import``): a user's blocks, tasks, init laws or searchers.
        max_params, max_flops: the budget of every candidate (see
            :mod:`autodlgym.searchspace.constraints`): a number (``250000``, ``"250k"``),
            None / ``"none"`` for no limit, or ``"default"``: the space's ``constraints``,
            else the task's default budget. Over-budget candidates are never trained.
        final_seeds: choose the search's answer on the mean of this many seeds: the
            ``FINAL_TOP`` best candidates are trained again with seeds ``seed + 1`` ...
            (phase ``retrain``, at the fidelity they were ranked at; the search's own trial
            is the first seed) and the best mean validation score wins
            (``SearchSummary.best_*``, ``Run.final()``, export's default trial), reported
            with its standard deviation. With ``time_budget`` the search keeps
            ``FINAL_SHARE`` of it for this, and stops retraining when it runs out (a retrain
            the deadline stops part way is recorded but not averaged: its scores are of a
            shorter training than the candidate was ranked at). None:
            ``FINAL_AUTO_SEEDS`` on a task of fewer than ``FINAL_AUTO_ROWS`` training rows
            searched under a ``time_budget``, else 0 (off).
        baselines: fit scikit-learn yardsticks on the task's own split before the search
            (:mod:`autodlgym.training.baselines`; recorded as trials of phase ``baseline``,
            outside the time budget and never seen by the searcher); None: for tasks on a
            user's data (those with a ``preprocessing``).
        oneshot: None trains every candidate; ``"supernet"`` or ``"hypernet"`` scores them
            with that one-shot evaluator instead (``--fidelity oneshot``): trained once per
            run over the run's space (``epochs`` per partition of training settings, default
            ``ONESHOT_EPOCHS``), stored in ``RUN/oneshot/`` and reused on resume; its trials
            are recorded in the phase ``oneshot``, so rankings never mix them with trained
            ones. No pruner; scoring runs in the driver, also with Ray workers.
        promotions: under ``asha``, how a promoted candidate trains. ``"continue"``: a rung
            trial that may be promoted saves its training state (weights, optimiser, batch
            order, random state) in ``RUN/checkpoints/``, and its promotion loads it and
            trains only the batches it lacks, with the same result as training from scratch
            (:func:`~autodlgym.trial.can_continue`; the rung below one epoch is the first
            batches of the same training, ``max_examples``, so promotions from it continue
            too). A state is deleted once its
            promotion finished, once the trial budget leaves it no chance of promotion, and
            when the search ends; an interrupted run keeps them for ``--resume``. Ray workers
            on this machine share the run directory; on a cluster joined with
            ``ray_address``, whose workers on other nodes cannot see it, promotions retrain.
            ``"retrain"``: every promotion trains from scratch.

    ``auto`` and None settings are resolved when the config is made, so the stored config
    says what ran and a resume that extends the budget runs the same fidelity.
    """

    out: str
    task: str | Task = "mnist1d"
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    searcher: str = "auto"
    searcher_options: dict[str, Any] = field(default_factory=dict)
    space: dict[str, Any] | None = None
    trials: int | None = 20
    time_budget: float | None = None
    epochs: int | None = None
    max_train_samples: int | None = None
    trial_time_limit: float | str | None = "auto"
    checks_per_epoch: int | None = None
    seed: int = 0
    workers: int | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    ray_address: str | None = None
    device: str = "cpu"
    pruner: str = "auto"
    max_retries: int = 2
    amp: bool = False
    imports: list[str] = field(default_factory=list)
    max_params: int | str | None = "default"
    max_flops: int | str | None = "default"
    baselines: bool | None = None
    final_seeds: int | None = None
    oneshot: str | None = None
    promotions: str = "continue"

    def __post_init__(self) -> None:
        from autodlgym.searchspace.constraints import parse_limit

        self.max_params = parse_limit("--max-params", self.max_params)
        self.max_flops = parse_limit("--max-flops", self.max_flops)
        if not isinstance(self.task, str) and hasattr(self.task, "kwargs"):
            # a Task (e.g. from autodlgym.tasks.from_arrays): workers remake it by name
            self.task_kwargs = {**dict(self.task.kwargs), **dict(self.task_kwargs)}
            self.task = self.task.name
        if self.trials is not None and (not isinstance(self.trials, int) or self.trials < 1):
            raise AutoDLError(f"--trials must be a positive integer, got {self.trials!r}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise AutoDLError(
                f"--time-budget must be a positive number of seconds, got {self.time_budget!r}"
            )
        if self.trials is None and self.time_budget is None:
            raise AutoDLError("give a budget: --trials N and/or --time-budget SECONDS")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise AutoDLError(
                f"--workers must be a positive integer or 'auto', got {self.workers!r}"
            )
        if self.cpus_per_trial <= 0:
            raise AutoDLError(f"--cpus-per-trial must be positive, got {self.cpus_per_trial}")
        if self.gpus_per_trial < 0:
            raise AutoDLError(f"--gpus-per-trial must be 0 or positive, got {self.gpus_per_trial}")
        # settings left to their defaults may still be settled for the task (a lookup table's
        # own fidelities: autodlgym.run.settle_config); explicit ones are checked there
        self._auto_pruner = self.pruner == "auto"
        self._auto_epochs = self.epochs is None
        if self.oneshot is not None:
            if self.oneshot not in ONESHOT_EVALUATORS:
                raise AutoDLError(
                    f"unknown one-shot evaluator {self.oneshot!r}; choose one of "
                    f"{', '.join(ONESHOT_EVALUATORS)}"
                )
            if self.pruner not in ("auto", "none"):
                raise AutoDLError(
                    f"--fidelity oneshot scores candidates without training them: --pruner "
                    f"{self.pruner} has nothing to stop; drop it"
                )
            self.pruner = "none"
            if self.epochs is None:
                self.epochs = ONESHOT_EPOCHS
        if self.pruner == "auto":
            self.pruner = TIME_BUDGET_PRUNER if self.time_budget is not None else "none"
        if self.pruner not in RUN_PRUNERS:
            raise AutoDLError(
                f"unknown pruner {self.pruner!r}; choose one of {', '.join(RUN_PRUNERS)}"
            )
        if self.searcher == "auto":
            timed_asha = self.time_budget is not None and self.pruner == "asha"
            self.searcher = TIME_BUDGET_SEARCHER if timed_asha else "random"
        if self.final_seeds is not None and (
            not isinstance(self.final_seeds, int)
            or isinstance(self.final_seeds, bool)
            or self.final_seeds < 0
        ):
            raise AutoDLError(
                f"--final-seeds must be 0 (off) or a positive integer, got {self.final_seeds!r}"
            )
        if self.promotions not in PROMOTIONS:
            raise AutoDLError(
                f"--promotions must be one of {', '.join(PROMOTIONS)}, got {self.promotions!r}"
            )
        if self.max_retries < 0:
            raise AutoDLError(f"--max-retries must be 0 or more, got {self.max_retries}")
        multi_fidelity = self.pruner != "none"
        if self.epochs is None:
            self.epochs = MULTI_FIDELITY_EPOCHS if multi_fidelity else DEFAULT_EPOCHS
        if self.checks_per_epoch is None:
            self.checks_per_epoch = MULTI_FIDELITY_CHECKS if self.pruner in PRUNERS[1:] else 1
        if (
            not isinstance(self.checks_per_epoch, int)
            or isinstance(self.checks_per_epoch, bool)
            or self.checks_per_epoch < 1
        ):
            raise AutoDLError(
                f"--checks-per-epoch must be a positive integer, got {self.checks_per_epoch!r}"
            )
        _ = self.fidelity  # validates epochs, max_train_samples, trial_time_limit

    @property
    def fidelity(self) -> Fidelity:
        """The full fidelity of a trial (what an unpruned trial trains)."""
        if self.oneshot is not None:
            return Fidelity(int(self.epochs), phase=ONESHOT)
        limit = self.trial_time_limit
        if limit == "auto":
            limit = AUTO_SECONDS_PER_EPOCH * self.epochs if isinstance(self.epochs, int) else None
        elif limit == "none":
            limit = None
        elif isinstance(limit, str):
            raise AutoDLError(
                f"--trial-time-limit must be seconds, 'auto' or 'none', got {limit!r}"
            )
        return Fidelity(self.epochs, self.max_train_samples, limit)

    @property
    def checks(self) -> int:
        """Validation checks of a full trial: the pruner's largest resource."""
        return int(self.epochs) * int(self.checks_per_epoch or 1)

    @property
    def uses_ray(self) -> bool:
        return self.ray_address is not None or (self.workers or 1) > 1

    def to_dict(self) -> dict[str, Any]:
        return {"config_version": CONFIG_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        # runs stored before these settings existed ran with what their absence means now
        values.setdefault("pruner", "none")
        values.setdefault("epochs", DEFAULT_EPOCHS)
        values.setdefault("checks_per_epoch", 1)
        return cls(**values)


@dataclass
class SearchSummary:
    """What a call of :func:`run_search` did."""

    run_dir: Path
    finished: int
    #: the run's best architecture (``Run.best()``): its trial at the highest fidelity it
    #: reached with its best validation score there, of the trials with a usable score (``ok``,
    #: or ``stopped`` by the deadline with the score it reached); None before the first
    best_trial_id: int | None
    best_val_score: float | None
    stopped_by: str  # "trials", "time", "interrupt"
    seconds: float
    #: trials of this session by status
    statuses: dict[str, int] = field(default_factory=dict)
    #: candidates found over the budget and never trained, over all sessions of the run
    rejected: int = 0
    #: trials of this session cut at their time limit (ended ``stopped`` with their scores)
    cut: int = 0
    #: the training FLOPs per second the workers measured (the median of this session's
    #: trials' ``throughput``); None without adaptive time limits
    throughput: float | None = None
    #: the run's scikit-learn baselines: ``(name, status, val_score, test_score)`` each
    baselines: list[tuple[str, str, float | None, float | None]] = field(default_factory=list)
    #: the test score of the best trial (None when it has none); with final selection the
    #: mean over its seeds
    best_test_score: float | None = None
    #: final selection (``final_seeds``): the standard deviation of the best's validation
    #: scores over its seeds, how many seeds it has, and a line saying what was done
    best_val_sd: float | None = None
    final_seeds: int = 0
    final_note: str = ""

    def results(self):
        """The run's trials as a pandas DataFrame (see :func:`autodlgym.load_results`)."""
        from autodlgym.results.store import load_results

        return load_results(self.run_dir)


def _first_rung_of_run(first: Fidelity, fidelities: Iterable[Fidelity]) -> Fidelity:
    """The first rung a run climbs from: ``first`` (the first batches of an epoch,
    ``max_examples``), or the earlier form of it, one epoch on a fixed subset of as many
    examples (``max_train_samples``), where the run's trials were trained at that one (a run
    begun before the change resumes on the ladder it began with)."""
    if first.max_examples is None or first.epochs != 1:
        return first
    subset = dataclasses.replace(first, max_train_samples=first.max_examples, max_examples=None)
    level = fidelity_level(subset)
    if any(fidelity_level(f) == level for f in fidelities):
        return subset
    return first


def _best_architecture(
    store: ResultStore, phase: str = SEARCH
) -> tuple[int, float, float | None] | None:
    """``(trial_id, val_score, test_score)`` of the search's best architecture in ``phase``,
    as ``Run.best()`` ranks it, or None."""
    from autodlgym.results.ranking import best_architectures

    df = store.to_dataframe()
    best = best_architectures(df[df["phase"] == phase], 1)
    if best.empty:
        return None
    test = best["test_score"].iloc[0]
    test = None if test is None or test != test else float(test)
    return int(best["trial_id"].iloc[0]), float(best["val_score"].iloc[0]), test


def _scores(result: TrialResult) -> tuple[float, float | None] | None:
    """``(val, test)`` of a result with a usable score (ok, or stopped with a finite one)."""
    import math

    from autodlgym.trial import OK, STOPPED

    val = result.val_score
    if result.status not in (OK, STOPPED) or val is None or not math.isfinite(val):
        return None
    return float(val), result.test_score


def _seed_scores(result: TrialResult) -> tuple[float, float | None] | None:
    """``(val, test)`` of a final-selection retrain that trained its whole fidelity (``ok``);
    None for one the deadline stopped part way: its scores are of a shorter training than
    the candidate was ranked at, so they do not enter its mean over seeds."""
    from autodlgym.trial import OK

    return _scores(result) if result.status == OK else None


def _takes(cls: type, name: str) -> bool:
    import inspect

    return name in inspect.signature(cls.__init__).parameters


def resolve_config(
    config: RunConfig | None, resume: bool, out: str | Path | None
) -> tuple[RunConfig, Path]:
    """The config a call of :func:`run_search` runs with, and its run directory: the stored
    one when resuming (with a larger budget if ``config`` gives one), else ``config``."""
    run_dir = Path(out if out is not None else (config.out if config else ""))
    if not str(run_dir):
        raise AutoDLError("give a run directory: --out DIR")
    if not resume:
        if config is None:
            raise AutoDLError("run_search needs a RunConfig unless resume=True")
        return config, run_dir
    from autodlgym.run import Run

    with Run.open(run_dir) as run:
        if not run.settings:
            raise AutoDLError(
                f"{run_dir} holds no search settings to resume; start a run with autodlgym search --out {run_dir}"
            )
        base = run.config
    if config is not None:  # a resume may extend the budget, nothing else
        base.trials = config.trials if config.trials is not None else base.trials
        base.time_budget = (
            config.time_budget if config.time_budget is not None else base.time_budget
        )
    base.out = str(run_dir)
    return base, run_dir


def make_executor(config: RunConfig, reporter: Any = None):
    """The executor ``config`` asks for: in-process, or a pool of Ray workers. Either has the
    task's data loaded before it returns, so the search's clock does not count loading it."""
    if not config.uses_ray:
        from autodlgym.execution.local import LocalExecutor, torch_threads
        from autodlgym.tasks import get_task
        from autodlgym.training.trainer import warm_up  # torch is imported by warm_up only

        threads = max(1, int(config.cpus_per_trial))
        # the arrays (cached for every trial) and the trainer's one-off costs, the machine's
        # speed measured on the trials' threads; a lookup task needs neither torch nor data
        # and loads its table only
        task = get_task(config.task, **config.task_kwargs)
        with torch_threads(threads if task.kind != "lookup" else None):
            task.prepare(warm_up)

        device = config.device
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        return LocalExecutor(
            device=device,
            reporter=reporter,
            amp=config.amp,
            threads=threads,
        )
    from autodlgym.execution.ray_executor import RayExecutor

    return RayExecutor(
        workers=config.workers,
        cpus_per_trial=config.cpus_per_trial,
        gpus_per_trial=config.gpus_per_trial,
        address=config.ray_address,
        reporter=reporter,
        max_retries=config.max_retries,
        amp=config.amp,
        task_preload=[(config.task, dict(config.task_kwargs))],
        imports=config.imports,
    )


def make_pruner(config: RunConfig, run_dir: Path) -> Any:
    """The pruning service of ``config`` (None without a pruner). Its resource unit is one
    validation check; a fidelity with too few checks to prune anything gets one warning."""
    if config.pruner not in PRUNERS[1:]:
        return None  # none, or asha (a scheduler in the runner, not a pruner in the trial)
    from autodlgym.execution.pruning import PruningService

    if config.checks < 2:
        warnings.warn(
            f"--pruner {config.pruner} prunes nothing here: each trial is checked only once, "
            f"at its end ({config.epochs} epoch x {config.checks_per_epoch} check); give it "
            "more checks with --epochs 3 or more or --checks-per-epoch 4",
            UserWarning,
            stacklevel=3,
        )
    return PruningService(
        config.pruner, run_dir=run_dir, max_epochs=config.checks, seed=config.seed
    )


def _save_searcher(store, searcher, told: set[int], elapsed: float, rejected: int = 0) -> None:
    blob = pickle.dumps(
        {
            "searcher": searcher.state_dict(),
            "told": sorted(told),
            "elapsed": elapsed,
            "rejected": rejected,
        }
    )
    store.save_state("searcher", blob)


class _Search:
    """One session of a search: the steps of :func:`run_search`, in the order it calls them."""

    def __init__(
        self, config: RunConfig, run_dir: Path, resume: bool, allow_changed_data: bool = False
    ) -> None:
        self.config = config
        self.run_dir = run_dir
        self.resume = resume
        self.allow_changed_data = allow_changed_data
        self.fidelity = config.fidelity
        self.store: Any = None
        self.searcher: Any = None
        self.executor: Any = None
        self.reporter: Any = None
        self.told: set[int] = set()
        self.elapsed_before = 0.0
        self.rejected_before = 0
        self.in_flight: dict[int, tuple[ArchSpec, Fidelity]] = {}
        self.scheduler: RungScheduler | None = None
        self.resubmit: deque[Any] = deque()
        self.finished = 0
        self.statuses: Counter[str] = Counter()
        self.cut = 0
        self.throughputs: list[float] = []
        self.start = clock.now()
        self.bar: SearchProgress | None = None
        self.final: dict[str, Any] | None = None
        self.final_jobs: dict[int, tuple[ArchSpec, Fidelity, int]] = {}

    @property
    def phase(self) -> str:
        """The phase this run's trials are recorded in (``oneshot`` for one-shot scores)."""
        return ONESHOT if self.config.oneshot else SEARCH

    # set-up ---------------------------------------------------------------------------------
    def open_store(self, searcher: Any) -> None:
        """Check the task, space and searcher; open the run when resuming (a new run's
        directory is made once its searcher accepted its options, in :meth:`make_searcher`)."""
        from autodlgym.run import Run, plan, refuse_held
        from autodlgym.searchers.base import get_searcher
        from autodlgym.searchspace.constraints import cheapest, resolve_budget

        # unknown task, space or searcher: fail before a new run directory is created
        if self.resume:
            self.run = Run.open(self.run_dir, allow_changed_data=self.allow_changed_data)
            self.store = self.run.store
            self.task = self.run.task
            self.space = resolve_budget(self.run.space, self.task)  # bound to the task's io
            if self.space.constraints.active:
                cheapest(self.space)
        else:
            self.config, self.task, self.space = plan(self.config)
            self.fidelity = self.config.fidelity
            try:
                existing = ResultStore(self.run_dir, create=False)
            except AutoDLError:
                existing = None
            if existing is not None:
                with existing:
                    refuse_held(existing)
        self.searcher_cls = get_searcher(self.config.searcher) if searcher is None else None
        if self.config.oneshot and not self.resume:
            from autodlgym.execution.oneshot import check_space

            check_space(self.space, self.task)  # before the run directory is made

    def make_searcher(self, searcher: Any) -> None:
        """Build the searcher (unless given), store the config, restore the searcher's state
        and tell it the results it has not heard of."""
        config = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)  # a searcher may keep files there
        if searcher is None:
            from autodlgym.searchers.base import SearchContext, make_searcher

            options = dict(config.searcher_options)
            cls = self.searcher_cls
            if "task" not in options and _takes(cls, "task"):
                options["task"] = self.task.key  # a searcher that reads the run's task by name
            context = None
            if _takes(cls, "context"):
                # what a searcher may know of the run besides the space; specs are measured at
                # initialisation on the run's task, or on the one a task= option names (e.g.
                # for the zero-cost pre-screen)
                from autodlgym.tasks import Task
                from autodlgym.training.diagnostics import init_scorer

                measured = self.task
                if "task" in options and not _takes(cls, "task"):
                    measured = Task.from_key(str(options.pop("task")))
                context = SearchContext(
                    io=self.task.io, trials=config.trials, score_at_init=init_scorer(measured)
                )
            searcher = make_searcher(
                config.searcher,
                self.space,
                seed=config.seed,
                run_dir=self.run_dir,
                budget=config.trials,
                context=context,
                **options,
            )
        self.searcher = searcher
        if not self.resume:  # made only once the searcher accepted its options
            from autodlgym.run import Run

            self.run = Run.create(config, task=self.task, space=self.space)
            self.store = self.run.store
        store = self.store
        from autodlgym.results.environment import collect_environment

        store.record_environment(collect_environment())  # every session: a resume may differ
        blob = store.load_state("searcher")
        if blob is not None:
            saved = pickle.loads(blob)
            searcher.load_state_dict(saved["searcher"])
            self.told = set(saved["told"])
            self.elapsed_before = float(saved.get("elapsed", 0.0))
            self.rejected_before = int(saved.get("rejected", 0))
        # results committed but not told before a crash: tell them now (search trials only:
        # retrained evaluations share the store but not the search's budget)
        for trial_id, spec, result in store.results(phase=self.phase):
            if trial_id not in self.told:
                searcher.tell(spec, result)
                self.told.add(trial_id)
        self.resubmit = deque(store.pending())  # in flight when the last session stopped
        self.finished = store.n_finished(phase=self.phase)

    def make_scheduler(self) -> None:
        """With ``pruner="asha"``: the rungs, rebuilt from the trials already in the store."""
        if self.config.pruner != "asha":
            return
        budget = self.config.time_budget
        first_limit = None
        if budget is not None and self.config.trial_time_limit == "auto":
            first_limit = max(budget / FIRST_RUNG_SHARE, 1.0)
        # the task says which fidelities it has (a table: its epochs); settle_config refused
        # asha on a task with one fidelity before the run was made
        rungs = self.task.default_fidelities(self.fidelity, first_time_limit=first_limit)
        if len(rungs) < 2:
            return
        fidelities = self.store.fidelities()
        rungs[0] = _first_rung_of_run(
            rungs[0], [*fidelities.values(), *(p.fidelity for p in self.resubmit)]
        )
        self.scheduler = RungScheduler(rungs)
        self.scheduler.restore(
            [
                (spec, fidelities[t], result, t)
                for t, spec, result in self.store.results(phase=self.phase)
            ],
            [(p.spec, p.fidelity) for p in self.resubmit],
        )

    def record_baselines(self) -> None:
        """Fit and record the task's scikit-learn baselines (phase ``baseline``), once per
        run, before the search's clock starts."""
        wanted = self.config.baselines
        if wanted is None:
            wanted = self.task.kind == "trained" and self.task.preprocessing is not None
        if not wanted or self.task.kind != "trained" or self.store.n_finished(phase=BASELINE):
            return
        from autodlgym.training.baselines import fit_baselines

        for name, result in fit_baselines(self.task, self.config.seed):
            self.store.append(
                self.store.next_trial_id(),
                ArchSpec({"baseline": name}),
                Fidelity(phase=BASELINE),
                self.config.seed,
                result,
            )

    def make_executor(self, executor: Any) -> None:
        self.reporter = make_pruner(self.config, self.run_dir)
        if executor is None and self.config.oneshot:
            from autodlgym.execution.oneshot import make_oneshot_executor

            executor = make_oneshot_executor(self.config, self.task, self.space, self.run_dir)
        self.executor = (
            executor if executor is not None else make_executor(self.config, self.reporter)
        )

    def show_progress(self, enabled: bool) -> None:
        self.start = clock.now()  # the search's clock starts with the loop
        best = self.store.best(phase=self.phase)
        self.bar = SearchProgress(
            enabled,
            self.config.trials,
            self.config.time_budget,
            finished=self.finished,
            elapsed=self.elapsed_before,
            best=best[1] if best else None,
        )
        if enabled:
            try:
                self.executor.on_progress = self.bar.trained
            except AttributeError:  # an executor that cannot take it simply shows no epochs
                pass

    # stop conditions ------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.elapsed_before + clock.now() - self.start

    def rejected(self) -> int:
        """Candidates found over the budget, over all sessions of the run."""
        own = getattr(self.searcher, "space", self.space)  # a searcher passed in may hold its own
        extra = own.rejected if own is not self.space else 0
        return self.rejected_before + self.space.rejected + extra

    def search_budget(self) -> float | None:
        """Seconds the search loop may use: the time budget less the share kept for final
        selection."""
        budget = self.config.time_budget
        if budget is None or not self.final_seeds_wanted() or self.config.final_seeds == 0:
            return budget
        return budget * (1.0 - FINAL_SHARE)

    def final_seeds_wanted(self) -> int:
        """Seeds of final selection (0: off); None in the config is decided here (once)."""
        if getattr(self, "_final_k", None) is None:
            self._final_k = self._final_seeds()
        return self._final_k

    def _final_seeds(self) -> int:
        k = self.config.final_seeds
        if k is not None:
            return int(k)
        if self.config.time_budget is None or self.task.kind != "trained":
            return 0
        report = (self.task.preprocessing or {}).get("report") or {}
        rows = (report.get("splits") or {}).get("train")
        if rows is None:
            rows = self.task.load().sizes()[0]
        return FINAL_AUTO_SEEDS if rows < FINAL_AUTO_ROWS else 0

    def out_of_time(self) -> bool:
        budget = self.search_budget()
        return budget is not None and self.elapsed() >= budget

    def out_of_trials(self) -> bool:
        trials = self.config.trials
        return trials is not None and self.finished + len(self.in_flight) >= trials

    def deadline(self, whole: bool = False) -> float | None:
        """``clock.wall()`` at which the search's time runs out (``whole``: the whole time
        budget, final selection included; None: no time budget)."""
        budget = self.config.time_budget if whole else self.search_budget()
        return None if budget is None else clock.wall() + budget - self.elapsed()

    # final selection -------------------------------------------------------------------------
    def finalise(self) -> None:
        """Retrain the best candidates with more seeds and choose on the mean (see
        ``RunConfig.final_seeds``); the choice is stored as the named state ``final``."""
        import math

        import numpy as np
        import pandas as pd

        from autodlgym.results.ranking import best_architectures
        from autodlgym.trial import RETRAIN

        self.final: dict[str, Any] | None = None
        k = self.final_seeds_wanted()
        if k < 2:
            return
        df = self.store.to_dataframe()
        top = best_architectures(df[df["phase"] == SEARCH], FINAL_TOP)
        if len(top) < 1:
            return
        config = self.config
        jobs, evals = [], {}
        for row in top.itertuples(index=False):
            samples = None if pd.isna(row.max_train_samples) else int(row.max_train_samples)
            examples = getattr(row, "max_examples", None)
            examples = None if examples is None or pd.isna(examples) else int(examples)
            fidelity = Fidelity(
                int(row.epochs), samples, self.fidelity.time_limit, phase=RETRAIN,
                max_examples=examples,
            )  # fmt: skip
            evals[row.trial_id] = [(row.val_score, row.test_score)]  # the search's own seed
            for s in range(1, k):
                jobs.append((s, row.trial_id, ArchSpec.from_json(row.spec), fidelity))
        jobs.sort(key=lambda j: j[0])  # seed by seed over the candidates: fair when cut short
        deadline = self.deadline(whole=True)
        pending: dict[int, int] = {}
        skipped = 0
        for offset, source, spec, fidelity in jobs:
            seed = config.seed + offset
            hit = self.store.lookup(spec.arch_id, fidelity, seed)
            if hit is not None:
                evals[source].append(_seed_scores(hit[1]))
                continue
            if deadline is not None and clock.wall() >= deadline - 1.0:
                skipped += 1
                continue
            while len(pending) >= self.executor.capacity:
                self._collect_final(pending, evals)
            trial_id = self.store.next_trial_id()
            self.store.add_pending(trial_id, spec, fidelity, seed)
            job = TrialJob(
                trial_id, spec.to_json(), config.task, fidelity, seed,
                task_kwargs=tuple(sorted(config.task_kwargs.items())), prune=False,
                deadline=deadline, checks_per_epoch=int(config.checks_per_epoch or 1),
            )  # fmt: skip
            pending[trial_id] = source
            self.final_jobs[trial_id] = (spec, fidelity, seed)
            self.executor.submit(job)
        while pending:
            self._collect_final(pending, evals)
        rows = []
        for rank, row in enumerate(top.itertuples(index=False)):
            scores = [e for e in evals[row.trial_id] if e is not None and e[0] is not None]
            val = np.array([e[0] for e in scores], dtype=float)
            test = np.array([e[1] for e in scores if not pd.isna(e[1])], dtype=float)
            rows.append(
                {
                    "trial_id": int(row.trial_id),
                    "arch_id": row.arch_id,
                    "n": len(val),
                    "val_mean": float(val.mean()) if len(val) else None,
                    "val_sd": float(val.std(ddof=1)) if len(val) > 1 else None,
                    "test_mean": float(test.mean()) if len(test) else None,
                    "test_sd": float(test.std(ddof=1)) if len(test) > 1 else None,
                    "rank": rank,
                }
            )
        ranked = [r for r in rows if r["val_mean"] is not None and math.isfinite(r["val_mean"])]
        if not ranked:
            return
        best = max(ranked, key=lambda r: (r["val_mean"], -r["rank"]))
        note = (
            f"final choice: trial {best['trial_id']}, mean val {best['val_mean']:.4f}"
            + (f" +- {best['val_sd']:.4f}" if best["val_sd"] is not None else "")
            + f" over {best['n']} seed{'s' if best['n'] != 1 else ''} (top {len(rows)} "
            f"candidates, {k} seeds each"
            + (f"; {skipped} retrains skipped: no time left" if skipped else "")
            + ")"
        )
        self.final = {**best, "seeds": k, "candidates": rows, "note": note, "skipped": skipped}
        self.store.save_state(FINAL_STATE, json.dumps(self.final).encode())

    def _collect_final(self, pending: dict[int, int], evals: dict[int, list]) -> None:
        for job, result in self.executor.wait(timeout=1.0):
            source = pending.pop(job.trial_id)
            spec, fidelity, seed = self.final_jobs.pop(job.trial_id)
            self.store.append(job.trial_id, spec, fidelity, seed, result)
            evals[source].append(_seed_scores(result))

    # the ask / submit / collect loop ------------------------------------------------------
    def record(
        self,
        trial_id: int,
        spec: ArchSpec,
        fidelity: Fidelity,
        result: TrialResult,
        reused_from: int | None = None,
    ) -> None:
        """Commit a finished trial, then tell the scheduler and the searcher and save the
        searcher's state."""
        config = self.config
        if self.store.append(
            trial_id, spec, fidelity, config.seed, result, reused_from=reused_from
        ):
            if self.scheduler is not None:
                self.scheduler.finished(spec, fidelity, result, trial_id)
                self.drop_checkpoints(spec, fidelity)
            self.finished += 1
            self.statuses[result.status] += 1
            self.cut += bool(result.cut)
            if result.throughput is not None:
                self.throughputs.append(result.throughput)
            self.searcher.tell(spec, result)
            self.told.add(trial_id)
            _save_searcher(self.store, self.searcher, self.told, self.elapsed(), self.rejected())
            self.bar.ended(trial_id, result)

    def next_candidate(self) -> tuple[int, ArchSpec, Fidelity] | None:
        """A trial to run: one left in flight by the last session, a promotion to a higher
        rung, or a new candidate from the searcher (at the first rung under ``asha``). None
        when the candidate needs no training (recorded at once)."""
        config, store = self.config, self.store
        if self.resubmit:
            p = self.resubmit.popleft()
            return p.trial_id, p.spec, p.fidelity
        promoted = self.scheduler.promotion() if self.scheduler is not None else None
        if promoted is not None:
            spec, fidelity = promoted
        else:
            spec = self.searcher.propose(1, self.space)[0]  # only candidates inside the budget
            fidelity = self.scheduler.first if self.scheduler is not None else self.fidelity
        trial_id = store.next_trial_id()
        try:
            spec = self.space.validate(spec)
        except SpecError as exc:
            bad = ArchSpec(dict(spec))
            store.add_pending(trial_id, bad, fidelity, config.seed)
            msg = f"searcher proposed a spec outside the space: {exc}"
            self.record(trial_id, bad, fidelity, TrialResult.failure(ERROR, msg))
            return None
        store.add_pending(trial_id, spec, fidelity, config.seed)
        hit = store.lookup(spec.arch_id, fidelity, config.seed)
        if hit is not None:  # evaluated before at this fidelity and seed: not trained twice
            self.record(trial_id, spec, fidelity, hit[1], reused_from=hit[0])
            return None
        if self.scheduler is not None:
            self.scheduler.started(spec, fidelity)
        return trial_id, spec, fidelity

    def launch(self) -> bool:
        """Start one trial (or record a reused one); False when the budget allows no more."""
        if self.out_of_trials() or self.out_of_time():
            return False
        candidate = self.next_candidate()
        if candidate is None:
            return True
        trial_id, spec, fidelity = candidate
        config = self.config
        checkpoint, resume_from, continued_from = self.continuation(trial_id, spec, fidelity)
        job = TrialJob(
            trial_id,
            spec.to_json(),
            config.task,
            fidelity,
            config.seed,
            task_kwargs=tuple(sorted(config.task_kwargs.items())),
            prune=self.reporter is not None,
            deadline=self.deadline(),
            checks_per_epoch=int(config.checks_per_epoch or 1),
            adaptive_limit=config.trial_time_limit == "auto",
            checkpoint=checkpoint,
            resume_from=resume_from,
            continued_from=continued_from,
        )
        self.in_flight[trial_id] = (spec, fidelity)
        self.bar.started(trial_id, spec.summary(), fidelity.epochs)
        self.executor.submit(job)
        return True

    # promotions that continue from a lower rung's saved state -------------------------
    def checkpoint_path(self, trial_id: int) -> Path:
        """Where trial ``trial_id`` saves its training state (absolute: Ray workers on this
        machine write it there)."""
        return self.run_dir.resolve() / CHECKPOINTS / f"{int(trial_id)}.pt"

    def continuation(
        self, trial_id: int, spec: ArchSpec, fidelity: Fidelity
    ) -> tuple[str | None, str | None, int | None]:
        """A trial's ``(checkpoint, resume_from, continued_from)``: where it saves its state
        (a rung trial that may be promoted to a rung that can continue from it), and the
        saved state of the lower rung's trial it continues from (a promotion)."""
        sched = self.scheduler
        if (
            sched is None
            or self.config.promotions != "continue"
            or self.task.kind == "lookup"  # nothing is trained
            # workers on other nodes of a cluster cannot see the run directory: a state they
            # wrote would land on their own disk, out of the driver's reach
            or self.config.ray_address is not None
        ):
            return None, None, None
        checkpoint = None
        k = sched.rung_of(fidelity)
        if (
            k is not None
            and sched.promotable(fidelity)
            and can_continue(fidelity, sched.rungs[k + 1])
        ):
            checkpoint = str(self.checkpoint_path(trial_id))
        source = sched.source(spec, fidelity)
        if source is not None and can_continue(source[1], fidelity):
            path = self.checkpoint_path(source[0])
            if path.exists():
                return checkpoint, str(path), source[0]
        return checkpoint, None, None

    def drop_checkpoints(self, spec: ArchSpec, fidelity: Fidelity) -> None:
        """Delete the saved states no trial will continue from: the one this finished
        promotion of ``spec`` continued from (or could have), and, when the trial budget is
        known, those of trials it leaves no chance of promotion."""
        sched = self.scheduler
        if sched is None or not (self.run_dir / CHECKPOINTS).is_dir():
            return
        done = []
        source = sched.source(spec, fidelity)
        if source is not None:
            done.append(source[0])
        if self.config.trials is not None:
            more = max(0, self.config.trials - self.finished) + len(self.in_flight)
            done += sched.hopeless(more)
        for trial_id in done:
            self.checkpoint_path(trial_id).unlink(missing_ok=True)

    def drop_all_checkpoints(self) -> None:
        """The search ended: no saved state will be continued from."""
        shutil.rmtree(self.run_dir / CHECKPOINTS, ignore_errors=True)

    def collect(self) -> None:
        """Record every trial that finished within a second."""
        for job, result in self.executor.wait(timeout=1.0):
            spec, fidelity = self.in_flight.pop(job.trial_id)
            self.record(job.trial_id, spec, fidelity, result)
        self.bar.refresh()

    def loop(self) -> str:
        """Keep every worker busy until the budget is spent; returns what stopped it. Trials
        in flight when the time budget runs out stop themselves at their next batch."""
        while True:
            while len(self.in_flight) < self.executor.capacity and self.launch():
                pass
            if not self.in_flight:
                return "time" if self.out_of_time() else "trials"
            self.collect()

    # tear-down ------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the workers, save the searcher's state and close the store (each step runs
        even when an earlier one fails)."""
        try:
            if self.bar is not None:
                self.bar.close()
        finally:
            try:
                if self.executor is not None:
                    self.executor.close()
            finally:
                try:
                    if self.searcher is not None:
                        _save_searcher(
                            self.store, self.searcher, self.told, self.elapsed(), self.rejected()
                        )
                        self.searcher.close()
                finally:
                    if self.store is not None:
                        self.best = _best_architecture(self.store, self.phase)
                        self.baselines = [
                            (str(spec.get("baseline")), r.status, r.val_score, r.test_score)
                            for _, spec, r in self.store.results(phase=BASELINE)
                        ]
                        self.store.close()

    def summary(self, stopped_by: str) -> SearchSummary:
        best = getattr(self, "best", None)
        final = self.final
        if final is not None:  # chosen on the mean over seeds
            best = (final["trial_id"], final["val_mean"], final["test_mean"])
        return SearchSummary(
            self.run_dir,
            self.finished,
            best[0] if best else None,
            best[1] if best else None,
            stopped_by,
            clock.now() - self.start,
            dict(self.statuses),
            self.rejected() if self.searcher is not None else self.rejected_before,
            self.cut,
            statistics.median(self.throughputs) if self.throughputs else None,
            list(getattr(self, "baselines", [])),
            best[2] if best else None,
            final["val_sd"] if final else None,
            final["n"] if final else 0,
            final["note"] if final else "",
        )


def run_search(
    config: RunConfig | None = None,
    *,
    resume: bool = False,
    out: str | Path | None = None,
    progress: bool | None = None,
    searcher: Any = None,
    executor: Any = None,
    allow_changed_data: bool = False,
) -> SearchSummary:
    """Run (or continue) a search and record every trial in ``config.out``.

    Args:
        config: the search settings; with ``resume=True`` it may be None (the stored settings
            are used) or carry a larger ``trials`` / ``time_budget`` to extend the budget.
        resume: continue the run stored in ``out`` (or ``config.out``).
        out: the run directory when resuming without a config.
        progress: show a progress bar (time or trials, the best score, the trials in flight)
            on stderr or in the notebook; None: when run in a terminal or a notebook.
        searcher: a Searcher instance to use instead of building one from the config
            (its state is still saved; resuming needs the config's searcher name to resolve).
        executor: an Executor instance to use instead of building one from the config.
        allow_changed_data: resume although the run's data file changed since it was made
            (by default a one-line error: the splits would differ; see ``Run.open``).

    Returns:
        A :class:`SearchSummary`; the trials are in the run directory's store.

    Raises:
        AutoDLError: bad settings, an unknown task or searcher, a run directory that already
            holds a different run, or a resume of a directory that holds none.
        SearchInterrupted: after Ctrl-C, once everything finished is recorded.
    """
    config, run_dir = resolve_config(config, resume, out)
    search = _Search(config, run_dir, resume, allow_changed_data)
    try:
        search.open_store(searcher)
        search.make_searcher(searcher)
        search.make_scheduler()
        search.make_executor(executor)
        search.record_baselines()
    except BaseException:
        search.executor = None  # nothing ran: only the store needs closing
        search.searcher = None
        search.close()
        raise
    stopped_by = "trials"
    try:
        search.show_progress(wants_progress() if progress is None else bool(progress))
        stopped_by = search.loop()
        search.drop_all_checkpoints()  # kept only for a resume of an interrupted run
        search.finalise()
    except KeyboardInterrupt:
        stopped_by = "interrupt"
    finally:
        search.close()
    summary = search.summary(stopped_by)
    if stopped_by == "interrupt":
        raise SearchInterrupted(summary)
    return summary


class SearchInterrupted(KeyboardInterrupt):
    """Raised by :func:`run_search` after Ctrl-C, once everything finished is recorded."""

    def __init__(self, summary: SearchSummary) -> None:
        super().__init__(f"search interrupted after {summary.finished} finished trials")
        self.summary = summary


def config_json(config: RunConfig) -> str:
    return json.dumps(config.to_dict(), indent=2, sort_keys=True)
