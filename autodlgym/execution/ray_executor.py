"""RayExecutor: trials on a pool of Ray actors (local cores, GPUs, or a whole cluster).

Each actor is one worker process holding a share of a machine (``cpus_per_trial`` CPUs and
``gpus_per_trial`` GPUs; 0.25 GPUs puts four workers on one GPU). It loads a task's data once
and keeps it for every later trial of that task, trains on ``cuda`` when Ray gave it a GPU and
on the CPU otherwise, and runs one trial at a time. The driver keeps a queue: a job is handed to
the first idle actor, and :meth:`RayExecutor.wait` returns as soon as any trial finishes, so a
slow candidate never holds the others back.

A worker that dies (killed, segfault, out of host memory, node lost) is replaced by a fresh
actor and its trial is run again, at most ``max_retries`` times; after that the trial comes back
with status ``worker_lost``. Every submitted job comes back exactly once.

Trials stop themselves at their time limit and at the search's deadline (the trainer checks
between batches and before every module's forward pass). Each worker measures its own
training speed (``warm_up`` calibrates it when the actor starts), so a job with
``adaptive_limit`` gets a limit that follows its own worker's load. A trial stuck inside one call (a hung kernel, a batch that never ends) is
ended from the driver: past ``HUNG_FACTOR`` times its time limit it comes back ``timeout``, and
``DEADLINE_GRACE`` seconds past the search's deadline ``stopped``; its worker is replaced.

This module imports ray, and is itself imported only when Ray is asked for.
"""

from __future__ import annotations

import collections
import functools
import inspect
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ray
import ray.exceptions

from autodlgym.errors import AutoDLError
from autodlgym.execution.local import Executor, PruningReporter, run_job
from autodlgym.registry import imported_modules
from autodlgym.trial import ERROR, STOPPED, TIMEOUT, WORKER_LOST, TrialJob, TrialResult

#: Errors meaning the worker process (or its node) is gone, not that the trial failed.
WORKER_DEATHS: tuple[type[BaseException], ...] = (
    ray.exceptions.RayActorError,  # ActorDiedError, ActorUnavailableError
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.OutOfMemoryError,  # Ray's memory monitor killed the worker
    ray.exceptions.NodeDiedError,
    ray.exceptions.LocalRayletDiedError,
    ray.exceptions.ObjectLostError,
    ray.exceptions.OwnerDiedError,
)

# A unix socket path must stay under 108 bytes; Ray puts
# "session_<date>_<time>_<usec>_<pid>/sockets/plasma_store" (up to 64 bytes) under its temp dir.
_MAX_RAY_TEMP_DIR = 43

#: a trial running this many times its time limit (plus the grace a trial cut at its limit has
#: to score what it learned) is ended from the driver
HUNG_FACTOR = 2.0


def _hung_after(limit: float) -> float:
    """Seconds after which the driver ends a trial of time limit ``limit``: ``HUNG_FACTOR``
    times it, plus the grace a cut trial has for scoring (:func:`training.limits.grace`)."""
    from autodlgym.training.limits import grace

    return HUNG_FACTOR * limit + grace(limit)


#: seconds past the search's deadline after which a trial still running is ended from the driver
DEADLINE_GRACE = 5.0
#: seconds between two polls of the workers' progress
PROGRESS_POLL = 1.0

JobFn = Callable[..., TrialResult]
TaskRef = str | tuple[str, Mapping[str, Any]]


def ray_temp_dir(base: str | os.PathLike[str] | None = None) -> str:
    """Make a fresh directory for Ray's session files with a path short enough for its sockets.

    Args:
        base: parent directory; None uses ``$RAY_TMPDIR``, else ``$TMPDIR``, else ``/tmp``.
            A parent whose path is too long for Ray's socket names is replaced by ``/tmp``.

    Returns:
        The new directory (the caller removes it when Ray is shut down).
    """
    parent = os.fspath(base or os.environ.get("RAY_TMPDIR") or tempfile.gettempdir())
    if len(os.path.abspath(parent)) + len("/ray-xxxxxxxx") > _MAX_RAY_TEMP_DIR:
        parent = "/tmp"
    os.makedirs(parent, exist_ok=True)
    return tempfile.mkdtemp(prefix="ray-", dir=parent)


class _ActorReporter:
    """A PruningReporter that forwards to the reporter actor (picklable: holds a handle)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def report(self, trial_id: int, epoch: int, value: float) -> bool:
        return bool(ray.get(self.handle.call.remote("report", trial_id, epoch, value)))

    def finish(self, trial_id: int, result: TrialResult) -> None:
        ray.get(self.handle.call.remote("finish", trial_id, result))


class _Delegate:
    """Holds one object (the user's reporter) and runs its methods on request."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.obj, method)(*args, **kwargs)


class _TrialWorker:
    """Body of a worker actor (made a Ray actor class by :func:`_remote`)."""

    def __init__(
        self,
        index: int,
        threads: int,
        amp: bool,
        reporter: PruningReporter | None,
        job_fn: JobFn,
        task_preload: Sequence[TaskRef],
        imports: Sequence[str] = (),
        search_path: Sequence[str] = (),
    ) -> None:
        import torch

        from autodlgym.registry import import_modules

        # the driver's --import modules first: a user's blocks, tasks and init laws are then
        # found by name here as they are there (entry-point plugins load on first use)
        import_modules(imports, search_path)

        torch.set_num_threads(threads)
        # Ray sets CUDA_VISIBLE_DEVICES to the GPU it assigned, so "cuda" is ours (shared with
        # the other fractional workers on that GPU).
        self.device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
        self.amp = amp
        self.reporter = reporter
        self.job_fn = job_fn
        self.name = f"w{index}/pid{os.getpid()}@{ray.util.get_node_ip_address()}"
        self.tasks: dict[str, Any] = {}
        self.threads = threads
        self._amp_kwargs = {"amp": True} if amp and _accepts(job_fn, "amp") else {}
        self._takes_progress = _accepts(job_fn, "progress")
        self._progress: tuple[int, float, int] | None = None
        for ref in task_preload:
            name, kwargs = (ref, {}) if isinstance(ref, str) else (ref[0], dict(ref[1]))
            self._load_task(name, kwargs)
        from autodlgym.training.trainer import warm_up

        warm_up()  # before the first trial's time limit runs

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": os.getpid(),
            "device": self.device,
            "node_id": ray.get_runtime_context().get_node_id(),
            "tasks": sorted(self.tasks),
        }

    def _load_task(self, name: str, kwargs: Mapping[str, Any]) -> Any:
        """Load a task's arrays once per actor. The trainer keeps their copy on this worker's
        device for the life of the process, so only the first trial of a task moves data."""
        from autodlgym.tasks import get_task

        task = get_task(name, **dict(kwargs))
        if task.key not in self.tasks:
            task.load()  # cached in this process by autodlgym.tasks for later trials
            self.tasks[task.key] = task
        return self.tasks[task.key]

    def run(self, job: TrialJob) -> TrialResult:
        """Train one job. The trainer records the trial's peak GPU memory and turns a CUDA
        out-of-memory error into status ``oom`` after emptying the cache, so this worker
        stays usable."""
        import torch

        torch.set_num_threads(self.threads)  # this actor runs calls on a pool of threads
        try:
            self._load_task(job.task, dict(job.task_kwargs))
        except Exception:  # noqa: BLE001 - the job itself reports the failure as its status
            pass
        kwargs = dict(self._amp_kwargs)
        self._progress = (job.trial_id, 0.0, 0)
        if self._takes_progress:

            def progress(epochs: float, steps: int) -> None:
                self._progress = (job.trial_id, epochs, steps)

            kwargs["progress"] = progress
        try:
            result = self.job_fn(job, self.device, self.reporter, self.name, **kwargs)
        finally:
            self._progress = None
        if self.device != "cpu" and result.device == "cpu":
            result.device = self.device  # a failure made before the trainer chose a device
        return result

    def where(self) -> tuple[int, float, int] | None:
        """``(trial_id, epochs_done, steps_done)`` of the running trial (None when idle);
        answered by a second thread while :meth:`run` trains."""
        return self._progress


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


@dataclass
class _Slot:
    """One worker actor as the driver sees it."""

    index: int
    actor: Any
    info_ref: Any
    job: TrialJob | None = None
    started: float = 0.0  # time.monotonic() when the job was handed to the actor
    progress: tuple[float, int] = (0.0, 0)  # the last (epochs_done, steps_done) polled


class RayExecutor(Executor):
    """Runs trials on a pool of Ray actors; see the module docstring.

    Args:
        workers: number of worker actors (= :attr:`capacity`). None: as many as the cluster
            fits, ``GPUs / gpus_per_trial`` when GPUs are asked for, else
            ``CPUs / cpus_per_trial``.
        cpus_per_trial: Ray CPUs per worker; its torch thread count is ``max(1, int(...))``.
        gpus_per_trial: Ray GPUs per worker; fractions share a GPU (0.25: four workers each).
        address: None starts a private local Ray (or uses the one this process already
            started); ``"auto"`` or ``"host:port"`` joins an existing cluster.
        reporter: where jobs with ``prune=True`` report their epochs. It is pickled into one
            actor on this machine, so its state lives there (keep shared state on disk).
        max_retries: times a trial is run again on a fresh worker when its worker dies.
        temp_dir: parent of Ray's session directory when a local Ray is started (default
            ``$RAY_TMPDIR`` or ``$TMPDIR``; kept short for Ray's socket paths).
        amp: mixed-precision training on GPU workers.
        task_preload: tasks (names, or ``(name, options)``) every worker loads when it starts.
        imports: modules every worker imports when it starts, before anything is looked up
            by name (None: those this process imported with ``--import`` /
            :func:`~autodlgym.registry.import_modules`). The driver's working folder is put
            on the workers' ``sys.path`` for them.
        job_fn: what a worker calls per job, with run_job's signature (default
            :func:`~autodlgym.execution.local.run_job`); must be importable or picklable.
        startup_timeout: seconds to wait for the workers to start before giving up.

    Raises:
        AutoDLError: Ray cannot start or be reached, or the workers do not fit the cluster.
    """

    def __init__(
        self,
        workers: int | None = None,
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
        address: str | None = None,
        reporter: PruningReporter | None = None,
        max_retries: int = 2,
        temp_dir: str | os.PathLike[str] | None = None,
        amp: bool = False,
        task_preload: Iterable[TaskRef] | None = None,
        imports: Iterable[str] | None = None,
        *,
        job_fn: JobFn = run_job,
        startup_timeout: float = 300.0,
    ) -> None:
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise AutoDLError(f"workers must be a positive integer, got {workers!r}")
        if not cpus_per_trial > 0:
            raise AutoDLError(f"cpus_per_trial must be positive, got {cpus_per_trial!r}")
        if gpus_per_trial < 0 or (gpus_per_trial > 1 and not float(gpus_per_trial).is_integer()):
            raise AutoDLError(
                f"gpus_per_trial must be a fraction of one GPU or a whole number, got {gpus_per_trial!r}"
            )
        if not isinstance(max_retries, int) or max_retries < 0:
            raise AutoDLError(f"max_retries must be a non-negative integer, got {max_retries!r}")
        self.cpus_per_trial = float(cpus_per_trial)
        self.gpus_per_trial = float(gpus_per_trial)
        self.max_retries = max_retries
        self.amp = amp
        self.address = address
        self._job_fn = job_fn
        self._task_preload = list(task_preload or ())
        self._imports = list(imported_modules() if imports is None else imports)
        self._search_path = [os.getcwd()]
        self._threads = max(1, int(cpus_per_trial))
        self._queue: collections.deque[TrialJob] = collections.deque()
        self._idle: collections.deque[_Slot] = collections.deque()
        self._running: dict[Any, _Slot] = {}  # ObjectRef of a run -> slot running it
        self._deaths: collections.Counter[int] = collections.Counter()  # trial_id -> deaths
        # trial_id -> seconds its dead workers ran it, over every attempt
        self._lost_seconds: collections.Counter[int] = collections.Counter()
        self._next_poll = 0.0
        self._slots: list[_Slot] = []
        self._next_index = 0
        self._owns_ray = False
        self._temp_dir: str | None = None
        self._closed = False
        self._reporter_actor: Any = None
        self._worker_reporter: _ActorReporter | None = None
        try:
            self._start_ray(workers, temp_dir)
            n = workers if workers is not None else self._default_workers()
            if reporter is not None:
                self._start_reporter(reporter)
            self._slots = [self._new_slot() for _ in range(n)]
            self._await_workers(startup_timeout)
        except BaseException:
            self.close()
            raise
        self.capacity = n
        self._idle.extend(self._slots)

    # Setup ---------------------------------------------------------------------------------
    def _start_ray(self, workers: int | None, temp_dir: str | os.PathLike[str] | None) -> None:
        import logging

        if self.address is None and ray.is_initialized():
            return  # this process already runs Ray (a test fixture, a notebook): share it
        if self.address is not None:
            try:
                ray.init(
                    address=self.address,
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                    ignore_reinit_error=True,
                )
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise AutoDLError(
                    f"cannot join the Ray cluster at {self.address!r} ({exc}); start one with "
                    "`ray start --head` or give its address as host:port"
                ) from None
            return  # never shut down a cluster we only joined
        cores = os.cpu_count() or 1
        # an explicit worker count may oversubscribe the cores: make Ray admit that many
        num_cpus = max(cores, math.ceil((workers or 0) * self.cpus_per_trial))
        self._temp_dir = ray_temp_dir(temp_dir)
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            _temp_dir=self._temp_dir,
            logging_level=logging.WARNING,
            log_to_driver=False,
            ignore_reinit_error=True,
        )
        self._owns_ray = True

    def _default_workers(self) -> int:
        resources = ray.available_resources() or ray.cluster_resources()
        cpus = resources.get("CPU", 0.0)
        n = int(cpus / self.cpus_per_trial + 1e-9)
        if self.gpus_per_trial > 0:
            gpus = resources.get("GPU", 0.0)
            if gpus <= 0:
                raise AutoDLError(
                    f"gpus_per_trial={self.gpus_per_trial} but Ray sees no GPU; drop "
                    "--gpus-per-trial or join a cluster with GPUs (--ray-address)"
                )
            n = min(n, int(gpus / self.gpus_per_trial + 1e-9))
        if n < 1:
            raise AutoDLError(
                f"Ray has {dict(resources)} free; one worker needs {self.cpus_per_trial} CPUs "
                f"and {self.gpus_per_trial} GPUs; lower --cpus-per-trial/--gpus-per-trial"
            )
        return n

    def _start_reporter(self, reporter: PruningReporter) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = ray.get_runtime_context().get_node_id()
        try:
            self._reporter_actor = (
                _remote(_Delegate)
                .options(
                    num_cpus=0,
                    max_concurrency=1,  # reports are handled one at a time, as in-process
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False),
                )
                .remote(reporter)
            )
        except (TypeError, ValueError) as exc:
            raise AutoDLError(f"the pruning reporter cannot be sent to Ray: {exc}") from None
        self._worker_reporter = _ActorReporter(self._reporter_actor)

    def _new_slot(self) -> _Slot:
        index = self._next_index
        self._next_index += 1
        actor = (
            _remote(_TrialWorker)
            .options(
                num_cpus=self.cpus_per_trial,
                num_gpus=self.gpus_per_trial,
                max_concurrency=2,  # `where` answers while `run` trains
                max_restarts=0,  # a dead worker is replaced here, where the retry is counted
                max_task_retries=0,
            )
            .remote(
                index,
                self._threads,
                self.amp,
                self._worker_reporter,
                self._job_fn,
                self._task_preload,
                self._imports,
                self._search_path,
            )
        )
        return _Slot(index, actor, actor.info.remote())

    def _await_workers(self, timeout: float) -> None:
        refs = [slot.info_ref for slot in self._slots]
        ready, pending = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        if pending:
            raise AutoDLError(
                f"only {len(ready)} of {len(refs)} Ray workers started within {timeout:.0f} s; "
                f"each needs {self.cpus_per_trial} CPUs and {self.gpus_per_trial} GPUs and the "
                f"cluster has {ray.cluster_resources()}; ask for fewer --workers"
            )
        try:
            ray.get(ready)
        except ray.exceptions.RayError as exc:
            raise AutoDLError(f"a Ray worker failed to start: {_first_line(exc)}") from None

    # Executor ------------------------------------------------------------------------------
    def submit(self, job: TrialJob) -> None:
        if self._closed:
            raise AutoDLError("this RayExecutor is closed; make a new one")
        self._queue.append(job)
        self._dispatch()

    def wait(self, timeout: float | None = None) -> list[tuple[TrialJob, TrialResult]]:
        self._dispatch()
        if not self._running:
            return []
        refs = list(self._running)
        # wake up in time to end a hung trial or to poll progress
        wake = min((self._overdue_at(slot) for slot in self._running.values()), default=math.inf)
        if math.isfinite(wake):
            wake = max(0.0, wake - time.monotonic())
            timeout = wake if timeout is None else min(timeout, wake)
        if self.on_progress is not None:
            timeout = PROGRESS_POLL if timeout is None else min(timeout, PROGRESS_POLL)
        ready, rest = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready and rest:  # collect everything else that has finished too, without blocking
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        finished: list[tuple[TrialJob, TrialResult]] = self._end_overdue(set(ready))
        self._poll_progress()
        for ref in ready:
            slot = self._running.pop(ref)
            job = slot.job
            assert job is not None
            slot.job = None
            result = self._collect(ref, slot, job)
            if result is None:
                continue  # worker died; the job went back to the front of the queue
            self._deaths.pop(job.trial_id, None)
            self._lost_seconds.pop(job.trial_id, None)
            if job.prune and self._worker_reporter is not None:
                self._worker_reporter.finish(job.trial_id, result)
            finished.append((job, result))
        self._dispatch()
        return finished

    @property
    def in_flight(self) -> int:
        return len(self._queue) + len(self._running)

    def close(self) -> None:
        """Kill the workers (in-flight trials are abandoned) and stop the Ray this executor
        started; a cluster it joined keeps running."""
        if self._closed:
            return
        self._closed = True
        if ray.is_initialized():
            for slot in self._slots:
                _kill(slot.actor)
            if self._reporter_actor is not None:
                _kill(self._reporter_actor)
            if self._owns_ray:
                ray.shutdown()
        self._slots, self._running = [], {}
        self._idle.clear()
        self._queue.clear()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    # Introspection -------------------------------------------------------------------------
    def workers(self, timeout: float | None = 60.0) -> list[dict[str, Any]]:
        """One dict per live worker: name, pid, device, node_id, loaded task keys, and the
        ``trial_id`` it is running (None when idle). Waits for workers still starting."""
        out = []
        for slot in list(self._slots):
            try:
                info = dict(ray.get(slot.info_ref, timeout=timeout))
            except ray.exceptions.RayError:
                continue  # dead or not started in time
            info["trial_id"] = slot.job.trial_id if slot.job is not None else None
            out.append(info)
        return out

    # Internals -----------------------------------------------------------------------------
    def _dispatch(self) -> None:
        while self._queue and self._idle:
            slot = self._idle.popleft()
            job = self._queue.popleft()
            slot.job = job
            slot.started = time.monotonic()
            slot.progress = (0.0, 0)
            self._running[slot.actor.run.remote(job)] = slot

    def _overdue_at(self, slot: _Slot) -> float:
        """``time.monotonic()`` at which the driver ends the slot's trial (inf: never)."""
        job = slot.job
        at = math.inf
        if job is None:
            return at
        if job.fidelity.time_limit is not None:
            at = slot.started + _hung_after(job.fidelity.time_limit)
        if job.deadline is not None:
            at = min(at, time.monotonic() + job.deadline + DEADLINE_GRACE - time.time())
        return at

    def _end_overdue(self, finishing: set[Any]) -> list[tuple[TrialJob, TrialResult]]:
        """End the trials running past ``HUNG_FACTOR`` times their time limit (``timeout``) or
        past the search's deadline and its grace (``stopped``); replace their workers."""
        ended = []
        now = time.monotonic()
        for ref, slot in list(self._running.items()):
            if ref in finishing or self._overdue_at(slot) > now:
                continue
            job = slot.job
            assert job is not None
            seconds = now - slot.started
            limit = job.fidelity.time_limit
            epochs, steps = slot.progress
            if limit is not None and seconds >= _hung_after(limit):
                result = TrialResult.failure(
                    TIMEOUT,
                    f"ended from the driver after {seconds:.0f} s, over {HUNG_FACTOR:g} times "
                    f"its time limit of {limit:g} s and a grace to score; its worker was replaced",
                )
            else:
                result = TrialResult.failure(
                    STOPPED,
                    f"ended from the driver {DEADLINE_GRACE:g} s after the search's time "
                    "budget ran out; its worker was replaced",
                )
            # the seconds it ran (and ran before on workers that died)
            result.train_seconds = seconds + self._lost_seconds.pop(job.trial_id, 0.0)
            self._deaths.pop(job.trial_id, None)
            result.epochs_run = int(epochs)
            result.steps_run = steps
            result.worker = f"w{slot.index}"
            del self._running[ref]
            slot.job = None
            self._replace(slot)
            if job.prune and self._worker_reporter is not None:
                self._worker_reporter.finish(job.trial_id, result)
            ended.append((job, result))
        return ended

    def _poll_progress(self) -> None:
        """Hand the workers' progress to ``on_progress`` (at most every ``PROGRESS_POLL`` s)."""
        notify = self.on_progress
        if notify is None or not self._running or time.monotonic() < self._next_poll:
            return
        self._next_poll = time.monotonic() + PROGRESS_POLL
        slots = list(self._running.values())
        refs = [slot.actor.where.remote() for slot in slots]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0.5)
        ready_set = set(ready)
        for slot, ref in zip(slots, refs):
            if ref not in ready_set:
                continue
            try:
                where = ray.get(ref)
            except ray.exceptions.RayError:
                continue  # dying; wait() hears of it
            if where is not None and slot.job is not None and where[0] == slot.job.trial_id:
                slot.progress = (where[1], where[2])
                notify(where[0], where[1], where[2])

    def _collect(self, ref: Any, slot: _Slot, job: TrialJob) -> TrialResult | None:
        """The result of a finished run, or None after requeueing the job of a dead worker.

        A failure made here records the seconds the driver saw the trial run (every attempt
        of a ``worker_lost`` one) as its ``train_seconds``."""
        try:
            result = ray.get(ref)
        except WORKER_DEATHS as exc:
            self._replace(slot)
            self._deaths[job.trial_id] += 1
            self._lost_seconds[job.trial_id] += time.monotonic() - slot.started
            deaths = self._deaths[job.trial_id]
            if deaths <= self.max_retries:
                self._queue.appendleft(job)
                return None
            self._deaths.pop(job.trial_id, None)
            return TrialResult.failure(
                WORKER_LOST,
                f"the worker died {deaths} time(s) running this trial, the last time with "
                f"{type(exc).__name__}: {_first_line(exc, last=False)}",
                worker=f"w{slot.index}",
                train_seconds=self._lost_seconds.pop(job.trial_id),
            )
        except ray.exceptions.RayError as exc:  # the call failed, the worker lives on
            self._idle.append(slot)
            return TrialResult.failure(
                ERROR,
                f"{type(exc).__name__}: {_first_line(exc)}",
                train_seconds=time.monotonic() - slot.started,
            )
        self._idle.append(slot)
        return result

    def _replace(self, dead: _Slot) -> None:
        _kill(dead.actor)
        fresh = self._new_slot()
        self._slots[self._slots.index(dead)] = fresh
        self._idle.append(fresh)


def _kill(actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001, S110 - already gone
        pass


@functools.cache
def _remote(cls: type) -> Any:
    """The Ray actor class of ``cls`` (made once per process; the module imports no Ray
    state at import time)."""
    return ray.remote(cls)


def _first_line(exc: BaseException, last: bool = True) -> str:
    """One line of a Ray error: the last (the user exception) or the first (Ray's summary)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return (lines[-1] if last else lines[0])[:300]
