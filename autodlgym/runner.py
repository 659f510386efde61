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
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autodlgym.errors import AutoDLError, SpecError
from autodlgym.execution.pruning import PRUNERS
from autodlgym.registry import import_modules
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import ERROR, Fidelity, TrialJob, TrialResult

CONFIG_VERSION = 1
#: training seconds a trial may take per epoch when ``trial_time_limit="auto"``
AUTO_SECONDS_PER_EPOCH = 60.0


@dataclass
class RunConfig:
    """Everything that defines a search; stored in the run directory so ``--resume`` can
    continue it.

    Args:
        out: run directory (created if missing).
        task: task name (``autodlgym tasks``), e.g. ``"mnist1d"`` or ``"npz:data.npz"``.
        task_kwargs: task options, e.g. ``{"length": 100}`` for ``adding``.
        searcher: registry name, entry-point name or ``package.module:Class``.
        searcher_options: keyword options for the searcher.
        space: a search-space config (see :meth:`SearchSpace.from_config`); None for the
            task's own space (tabular tasks bring one) or else the default space.
        trials: evaluation budget (None: only ``time_budget`` stops the search).
        time_budget: seconds of search wall time over all sessions of the run (None: no limit).
        epochs, max_train_samples, trial_time_limit: the fidelity of every trial (on a
            tabular task, ``epochs`` picks the point of the stored learning curve). A trial
            that trains longer than ``trial_time_limit`` seconds ends with status ``timeout``;
            ``"auto"`` allows ``AUTO_SECONDS_PER_EPOCH`` per epoch (so one very wide candidate
            cannot stall a CPU search), None or ``"none"`` no limit.
        seed: seeds the searcher and every trial's training.
        workers: trials in flight at once; 1 with no ``ray_address`` trains in-process, more
            uses Ray. None: 1 locally, or one per GPU / CPU core when ``ray_address`` is given.
        cpus_per_trial, gpus_per_trial: Ray resources of each worker (0.25 GPUs: four per GPU).
        ray_address: join an existing Ray cluster (``"auto"`` or ``"host:port"``).
        device: torch device for in-process training (``"auto"``: CUDA if available).
        pruner: ``none``, ``median``, ``sha`` (successive halving) or ``hyperband``; stops
            poor trials early from their per-epoch validation scores.
        max_retries: times a trial is retried when its Ray worker dies.
        amp: mixed precision on CUDA.
        imports: modules imported before anything is looked up, here and on every Ray
            worker (``--import``): a user's blocks, tasks, init laws or searchers.
    """

    out: str
    task: str = "mnist1d"
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    searcher: str = "random"
    searcher_options: dict[str, Any] = field(default_factory=dict)
    space: dict[str, Any] | None = None
    trials: int | None = 20
    time_budget: float | None = None
    epochs: int = 2
    max_train_samples: int | None = None
    trial_time_limit: float | str | None = "auto"
    seed: int = 0
    workers: int | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    ray_address: str | None = None
    device: str = "cpu"
    pruner: str = "none"
    max_retries: int = 2
    amp: bool = False
    imports: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
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
        if self.pruner not in PRUNERS:
            raise AutoDLError(f"unknown pruner {self.pruner!r}; choose one of {', '.join(PRUNERS)}")
        if self.max_retries < 0:
            raise AutoDLError(f"--max-retries must be 0 or more, got {self.max_retries}")
        _ = self.fidelity  # validates epochs, max_train_samples, trial_time_limit

    @property
    def fidelity(self) -> Fidelity:
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
    def uses_ray(self) -> bool:
        return self.ray_address is not None or (self.workers or 1) > 1

    def to_dict(self) -> dict[str, Any]:
        return {"config_version": CONFIG_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class SearchSummary:
    """What a call of :func:`run_search` did."""

    run_dir: Path
    finished: int
    best_trial_id: int | None
    best_val_score: float | None
    stopped_by: str  # "trials", "time", "interrupt"
    seconds: float

    def results(self):
        """The run's trials as a pandas DataFrame (see :func:`autodlgym.load_results`)."""
        from autodlgym.results.store import load_results

        return load_results(self.run_dir)


def _takes(cls: type, name: str) -> bool:
    import inspect

    return name in inspect.signature(cls.__init__).parameters


def _make_space(config: RunConfig, task: Any) -> SearchSpace:
    if config.space:
        return SearchSpace.from_config(config.space)
    from autodlgym.tasks.tabular import space_of

    return space_of(task)  # a tabular task's own space, else the default space


def _make_executor(config: RunConfig, reporter: Any):
    if not config.uses_ray:
        from autodlgym.execution.local import LocalExecutor

        device = config.device
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        return LocalExecutor(device=device, reporter=reporter, amp=config.amp)
    from autodlgym.execution.ray_executor import RayExecutor

    return RayExecutor(
        workers=config.workers,
        cpus_per_trial=config.cpus_per_trial,
        gpus_per_trial=config.gpus_per_trial,
        address=config.ray_address,
        reporter=reporter,
        max_retries=config.max_retries,
        amp=config.amp,
        imports=config.imports,
    )


class _Progress:
    """A tqdm bar on stderr with the best score so far (silent when disabled)."""

    def __init__(self, enabled: bool, total: int | None, initial: int, best: float | None) -> None:
        self.bar = None
        self.best = best
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                initial=initial,
                unit="trial",
                file=sys.stderr,
                dynamic_ncols=True,
                leave=True,
            )
            self._post()

    def _post(self) -> None:
        if self.bar is not None and self.best is not None:
            self.bar.set_postfix_str(f"best val {self.best:.4f}")

    def update(self, result: TrialResult) -> None:
        if (
            result.ok
            and result.val_score is not None
            and (self.best is None or result.val_score > self.best)
        ):
            self.best = result.val_score
        if self.bar is not None:
            self.bar.update(1)
            self._post()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _save_searcher(store, searcher, told: set[int], elapsed: float) -> None:
    blob = pickle.dumps(
        {"searcher": searcher.state_dict(), "told": sorted(told), "elapsed": elapsed}
    )
    store.save_state("searcher", blob)


def run_search(
    config: RunConfig | None = None,
    *,
    resume: bool = False,
    out: str | Path | None = None,
    progress: bool = False,
    searcher: Any = None,
    executor: Any = None,
) -> SearchSummary:
    """Run (or continue) a search and record every trial in ``config.out``.

    Args:
        config: the search settings; with ``resume=True`` it may be None (the stored settings
            are used) or carry a larger ``trials`` / ``time_budget`` to extend the budget.
        resume: continue the run stored in ``out`` (or ``config.out``).
        out: the run directory when resuming without a config.
        progress: show a progress bar with the best score so far on stderr.
        searcher: a Searcher instance to use instead of building one from the config
            (its state is still saved; resuming needs the config's searcher name to resolve).
        executor: an Executor instance to use instead of building one from the config.

    Returns:
        A :class:`SearchSummary`; the trials are in the run directory's store.

    Raises:
        AutoDLError: bad settings, an unknown task or searcher, a run directory that already
            holds a different run, or a resume of a directory that holds none.
    """
    from autodlgym.results.store import ResultStore
    from autodlgym.searchers.base import get_searcher, make_searcher
    from autodlgym.tasks import get_task

    run_dir = Path(out if out is not None else (config.out if config else ""))
    if not str(run_dir):
        raise AutoDLError("give a run directory: --out DIR")
    if resume:
        store = ResultStore(run_dir, create=False)
        stored = store.load_config()
        if stored is None:
            store.close()
            raise AutoDLError(
                f"{run_dir} holds no search settings to resume; start a run with autodlgym search --out {run_dir}"
            )
        base = RunConfig.from_dict(stored)
        if config is not None:  # a resume may extend the budget, nothing else
            base.trials = config.trials if config.trials is not None else base.trials
            base.time_budget = (
                config.time_budget if config.time_budget is not None else base.time_budget
            )
        config = base
        config.out = str(run_dir)
    elif config is None:
        raise AutoDLError("run_search needs a RunConfig unless resume=True")
    try:
        # unknown task, space or searcher: fail before a new run directory is created
        import_modules(config.imports)  # the user's registrations come first
        task = get_task(config.task, **config.task_kwargs)
        space = _make_space(config, task)
        searcher_cls = get_searcher(config.searcher) if searcher is None else None
    except BaseException:
        if resume:
            store.close()
        raise
    if not resume:
        store = ResultStore(run_dir, create=True)
        if store.load_config() is not None or store.n_finished() or store.pending():
            store.close()
            raise AutoDLError(
                f"{run_dir} already holds a run; continue it with --resume or choose another --out"
            )
    fidelity = config.fidelity

    try:
        if searcher is None:
            options = dict(config.searcher_options)
            if "task" not in options and _takes(searcher_cls, "task"):
                # e.g. the zero-cost pre-screen measures candidates on the run's task
                options["task"] = task.key
            searcher = make_searcher(
                config.searcher,
                space,
                seed=config.seed,
                run_dir=run_dir,
                budget=config.trials,
                **options,
            )
        if not resume:  # stored only once the searcher accepted its options
            store.save_config(config.to_dict())
        told: set[int] = set()
        elapsed_before = 0.0
        blob = store.load_state("searcher")
        if blob is not None:
            saved = pickle.loads(blob)
            searcher.load_state_dict(saved["searcher"])
            told = set(saved["told"])
            elapsed_before = float(saved.get("elapsed", 0.0))
        # results committed but not told before a crash: tell them now
        for trial_id, spec, result in store.results():
            if trial_id not in told:
                searcher.tell(spec, result)
                told.add(trial_id)

        reporter = None
        if config.pruner != "none":
            from autodlgym.execution.pruning import PruningService

            reporter = PruningService(
                config.pruner, run_dir=run_dir, max_epochs=config.epochs, seed=config.seed
            )
        if executor is None:
            executor = _make_executor(config, reporter)
    except BaseException:
        store.close()
        raise

    resubmit = deque(store.pending())  # in flight when the last session stopped
    start = time.monotonic()
    finished = store.n_finished()
    best = store.best()
    bar = _Progress(progress, config.trials, finished, best[1] if best else None)
    stopped_by = "trials"
    in_flight: dict[int, ArchSpec] = {}

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - start

    def out_of_time() -> bool:
        return config.time_budget is not None and elapsed() >= config.time_budget

    def record(
        trial_id: int, spec: ArchSpec, result: TrialResult, reused_from: int | None = None
    ) -> None:
        nonlocal finished
        if store.append(trial_id, spec, fidelity, config.seed, result, reused_from=reused_from):
            finished += 1
            searcher.tell(spec, result)
            told.add(trial_id)
            _save_searcher(store, searcher, told, elapsed())
            bar.update(result)

    def launch() -> bool:
        """Start one trial (or record a reused one); False when the budget allows no more."""
        if config.trials is not None and finished + len(in_flight) >= config.trials:
            return False
        if out_of_time():
            return False
        if resubmit:
            p = resubmit.popleft()
            trial_id, spec = p.trial_id, p.spec
        else:
            spec = searcher.ask(1)[0]
            trial_id = store.next_trial_id()
            try:
                spec = space.validate(spec)
            except SpecError as exc:
                store.add_pending(trial_id, ArchSpec(dict(spec)), fidelity, config.seed)
                record(
                    trial_id,
                    ArchSpec(dict(spec)),
                    TrialResult.failure(
                        ERROR, f"searcher proposed a spec outside the space: {exc}"
                    ),
                )
                return True
            hit = store.lookup(spec.arch_id, fidelity, config.seed)
            if hit is not None:  # evaluated before at this fidelity and seed: not trained twice
                store.add_pending(trial_id, spec, fidelity, config.seed)
                record(trial_id, spec, hit[1], reused_from=hit[0])
                return True
            store.add_pending(trial_id, spec, fidelity, config.seed)
        job = TrialJob(
            trial_id,
            spec.to_json(),
            config.task,
            fidelity,
            config.seed,
            task_kwargs=tuple(sorted(config.task_kwargs.items())),
            prune=reporter is not None,
        )
        in_flight[trial_id] = spec
        executor.submit(job)
        return True

    try:
        while True:
            while len(in_flight) < executor.capacity and launch():
                pass
            if not in_flight:
                if out_of_time():
                    stopped_by = "time"
                break
            for job, result in executor.wait(timeout=1.0):
                spec = in_flight.pop(job.trial_id)
                record(job.trial_id, spec, result)
    except KeyboardInterrupt:
        stopped_by = "interrupt"
    finally:
        bar.close()
        try:
            executor.close()
        finally:
            try:
                _save_searcher(store, searcher, told, elapsed())
                searcher.close()
            finally:
                best = store.best()
                store.close()
    summary = SearchSummary(
        run_dir,
        finished,
        best[0] if best else None,
        best[1] if best else None,
        stopped_by,
        time.monotonic() - start,
    )
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
