"""Executors run TrialJobs and hand back TrialResults.

An executor keeps up to ``capacity`` trials in flight. ``submit`` hands it a job; ``wait``
blocks until at least one job has finished and returns every finished ``(job, result)`` pair.
The runner asks its searcher for a new candidate as soon as a slot frees: there is no batch
barrier.

:class:`LocalExecutor` trains in this process, one trial at a time. The Ray executor lives in
:mod:`autodlgym.execution.ray_executor` and is imported only when asked for.
"""

from __future__ import annotations

import collections
import contextlib
import os
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from autodlgym import clock
from autodlgym.trial import ERROR, TrialJob, TrialResult


class PruningReporter(Protocol):
    """What a worker calls after each epoch of a job with ``prune=True``."""

    def report(self, trial_id: int, epoch: int, value: float) -> bool:
        """Record an intermediate validation score; return True when the trial should stop."""

    def finish(self, trial_id: int, result: TrialResult) -> None:
        """The trial ended (executors call this for every finished job with ``prune=True``)."""


def run_job(
    job: TrialJob,
    device: str = "cpu",
    reporter: PruningReporter | None = None,
    worker: str = "",
    amp: bool = False,
    progress: Callable[[float, int], None] | None = None,
) -> TrialResult:
    """Train and score one job (the same function runs in-process and on Ray workers).

    The job's task evaluates it (``Task.evaluate``): a trained task trains the candidate with
    :func:`~autodlgym.training.trainer.train_and_score`, a lookup task reads its table (no
    model is built and torch is not imported).
    ``progress(epochs_done, steps_done)`` is called about twice a second while it trains.
    """
    start = clock.now()
    try:
        from autodlgym.searchspace.spec import ArchSpec
        from autodlgym.tasks import get_task

        spec = ArchSpec.from_json(job.spec_json)
        task = get_task(job.task, **dict(job.task_kwargs))
        callback: Callable[[int, float], bool] | None = None
        if job.prune and reporter is not None:

            def callback(epoch: int, value: float) -> bool:
                return not reporter.report(job.trial_id, epoch, value)

        kwargs: dict[str, Any] = {"amp": True} if amp else {}
        if job.adaptive_limit:
            kwargs["adaptive_limit"] = True
        if job.checkpoint is not None:
            kwargs["checkpoint"] = job.checkpoint
        if job.resume_from is not None:
            kwargs["resume_from"] = job.resume_from
        # the task decides: a trained task calls the trainer, a lookup task reads its table
        # (and never imports torch)
        result = task.evaluate(
            spec,
            job.fidelity,
            job.seed,
            callback=callback,
            train=_train,
            device=device,
            checks_per_epoch=job.checks_per_epoch,
            deadline=job.deadline,
            progress=progress,
            **kwargs,
        )
    except Exception as exc:  # noqa: BLE001 - a failing candidate never stops a search
        result = TrialResult.failure(
            ERROR,
            f"{type(exc).__name__}: {exc}\n" + traceback.format_exc(limit=1),
            train_seconds=clock.now() - start,  # what it ran before failing
        )
    result.worker = worker or f"pid{os.getpid()}"
    if result.continued_epochs is not None:  # it loaded the state the job pointed it to
        result.continued_from = job.continued_from
    return result


def _train(*args: Any, **kwargs: Any) -> TrialResult:
    """:func:`~autodlgym.training.trainer.train_and_score`, imported on first use (a lookup
    task never calls it, so a lookup never imports torch)."""
    from autodlgym.training.trainer import train_and_score

    return train_and_score(*args, **kwargs)


class Executor(ABC):
    """Runs trials; see the module docstring."""

    capacity: int = 1
    #: set by the caller to hear ``on_progress(trial_id, epochs_done, steps_done)`` while
    #: trials train (for progress displays; executors that cannot tell never call it)
    on_progress: Callable[[int, float, int], None] | None = None

    @abstractmethod
    def submit(self, job: TrialJob) -> None: ...

    @abstractmethod
    def wait(self, timeout: float | None = None) -> list[tuple[TrialJob, TrialResult]]:
        """Block until at least one job finished (or ``timeout`` seconds passed); return the
        finished ones."""

    @property
    @abstractmethod
    def in_flight(self) -> int: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers. Jobs still in flight are abandoned."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class InProcessExecutor(Executor):
    """An executor that works in this process, one job at a time: ``submit`` queues a job,
    ``wait`` runs the oldest with :meth:`run` and hands back its result. Subclasses say how a
    job is run (:class:`LocalExecutor` trains it; the one-shot executor scores it)."""

    capacity = 1

    def __init__(self) -> None:
        self._queue: collections.deque[TrialJob] = collections.deque()

    def submit(self, job: TrialJob) -> None:
        self._queue.append(job)

    def wait(self, timeout: float | None = None) -> list[tuple[TrialJob, TrialResult]]:
        if not self._queue:
            return []
        job = self._queue.popleft()
        return [(job, self.run(job))]

    @abstractmethod
    def run(self, job: TrialJob) -> TrialResult:
        """The result of ``job``."""

    @property
    def in_flight(self) -> int:
        return len(self._queue)


class LocalExecutor(InProcessExecutor):
    """Trains one trial at a time in this process (``wait`` runs the oldest submitted job).

    Args:
        device: torch device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        reporter: where jobs with ``prune=True`` report their epochs.
        amp: mixed precision (CUDA only).
        threads: torch's threads while a trial trains (the process's setting is restored
            after each); None leaves torch's setting alone. The runner gives
            ``max(1, int(cpus_per_trial))``, as Ray workers have: on a machine busy with
            other work, threads that wait for each other make small models many times
            slower (measured: 4.3 ms a step on one thread, 40-390 ms on two, load 8 on 2
            cores), and one count for every trial keeps scores the same under any load.
    """

    def __init__(
        self,
        device: str = "cpu",
        reporter: PruningReporter | None = None,
        amp: bool = False,
        threads: int | None = None,
    ) -> None:
        super().__init__()
        self.device = device
        self.reporter = reporter
        self.amp = amp
        self.threads = threads

    def run(self, job: TrialJob) -> TrialResult:
        notify = self.on_progress
        progress = None
        if notify is not None:

            def progress(epochs: float, steps: int) -> None:
                notify(job.trial_id, epochs, steps)

        with torch_threads(self.threads):
            result = run_job(
                job, self.device, self.reporter, worker="local", amp=self.amp, progress=progress
            )
        if job.prune and self.reporter is not None:
            self.reporter.finish(job.trial_id, result)
        return result


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``threads`` inside the block (None: unchanged)."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
