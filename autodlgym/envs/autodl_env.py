"""AutoDLEnv: a Gymnasium environment where one step proposes, trains and scores one architecture.

The action is a whole architecture in the search space's integer encoding
(:meth:`~autodlgym.SearchSpace.gymnasium_space`); the environment decodes it, trains it on the
task at the given fidelity through an :class:`~autodlgym.execution.local.Executor`, and rewards
the validation score. An episode is a budget of evaluations.

This module also holds the pieces the sequential and vector environments share: argument
normalisation, building :class:`~autodlgym.trial.TrialJob` objects, running a batch of jobs on an
executor, and the reward.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from autodlgym.errors import AutoDLError
from autodlgym.execution.local import Executor, LocalExecutor
from autodlgym.searchspace.constraints import resolve_budget
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.tasks import Task, get_task
from autodlgym.trial import OVER_BUDGET, WORKER_LOST, Fidelity, TrialJob, TrialResult

#: a step that trains logs what it trains and how it ended at INFO
log = logging.getLogger("autodlgym.envs")

#: Score written into observations where there is none: before the first evaluation and for a
#: failed one. Observed scores are clipped to [-1, 1] (accuracies lie in [0, 1]; R^2 <= 1).
NO_SCORE = -1.0

#: TrialResult fields copied into ``info``. Timings, the worker name and peak memory differ
#: between two runs of the same trial, so they stay out: infos are deterministic for a seed.
INFO_FIELDS = (
    "status",
    "val_score",
    "test_score",
    "train_loss",
    "params",
    "trainable_params",
    "flops",
    "epochs_run",
    "message",
)

# Trial ids only need to be unique among the jobs on one executor; one counter per process
# keeps envs that share an executor (the vector env) apart.
_TRIAL_IDS = itertools.count()

SpaceLike = SearchSpace | Mapping[str, Any] | str | Path | None
FidelityLike = Fidelity | int | Mapping[str, Any]


def as_space(space: SpaceLike, task: Task | None = None) -> SearchSpace:
    """A SearchSpace from a space, a config mapping, a YAML/JSON path, or None (the space
    ``task`` brings: ``task.default_space()``, a lookup table's own or the default space)."""
    if space is None:
        return task.default_space() if task is not None else SearchSpace.default()
    if isinstance(space, SearchSpace):
        return space
    if isinstance(space, Mapping):
        return SearchSpace.from_config(space)
    if isinstance(space, str | Path):
        return SearchSpace.from_file(space)
    raise AutoDLError(
        f"space must be a SearchSpace, a config mapping or a file path, got {type(space).__name__}"
    )


def as_fidelity(fidelity: FidelityLike | None, task: Task | None = None) -> Fidelity:
    """A Fidelity from a Fidelity, a number of epochs, or a mapping of Fidelity's fields;
    None is the task's own full fidelity (a lookup table's), else one epoch."""
    if fidelity is None:
        default = task.default_fidelity() if task is not None else None
        return default if default is not None else Fidelity(epochs=1)
    if isinstance(fidelity, Fidelity):
        return fidelity
    if isinstance(fidelity, int) and not isinstance(fidelity, bool):
        return Fidelity(epochs=fidelity)
    if isinstance(fidelity, Mapping):
        try:
            return Fidelity(**fidelity)
        except TypeError:
            raise AutoDLError(
                f"fidelity {dict(fidelity)!r} has unknown fields; use epochs, "
                "max_train_samples, time_limit"
            ) from None
    raise AutoDLError(
        f"fidelity must be a Fidelity, a number of epochs or a mapping, got {fidelity!r}"
    )


def as_task(task: str | Task, task_kwargs: Mapping[str, Any] | None) -> Task:
    """The Task named ``task`` with options ``task_kwargs`` (checked now, loaded by workers)."""
    return get_task(task, **dict(task_kwargs or {}))


def over_budget_result(space: SearchSpace, spec: ArchSpec) -> TrialResult | None:
    """The result of a step whose candidate is over the space's budget (never trained), or
    None when it fits; counts the rejection in ``space.rejected``."""
    if space.fits(spec):
        return None
    return TrialResult.failure(OVER_BUDGET, f"over budget: {space.over_budget(spec)}")


def check_size_penalty(size_penalty: float) -> float:
    value = float(size_penalty)
    if not math.isfinite(value) or value < 0:
        raise AutoDLError(f"size_penalty must be a finite number >= 0, got {size_penalty!r}")
    return value


def make_job(spec: ArchSpec, task: Task, fidelity: Fidelity, seed: int) -> TrialJob:
    """A TrialJob for ``spec`` with a fresh trial id."""
    return TrialJob(
        trial_id=next(_TRIAL_IDS),
        spec_json=spec.to_json(),
        task=task.name,
        fidelity=fidelity,
        seed=int(seed),
        task_kwargs=task.kwargs,
    )


def run_jobs(executor: Executor, jobs: Sequence[TrialJob]) -> list[TrialResult]:
    """Submit every job, then wait until all are back; results in the order of ``jobs``.
    Each job is logged at INFO (``autodlgym.envs``) when it starts and when it ends.

    The executor must not hold jobs submitted by anyone else meanwhile: their results would be
    taken here and dropped. A job the executor no longer knows about ends as ``worker_lost``.
    """
    started = time.monotonic()
    for job in jobs:
        log.info(
            "training %s on %s for %d epoch(s)",
            ArchSpec.from_json(job.spec_json).summary(),
            job.task,
            job.fidelity.epochs,
        )
        executor.submit(job)
    results: dict[int, TrialResult] = {}
    wanted = {job.trial_id for job in jobs}
    while len(results) < len(wanted):
        finished = executor.wait()
        for job, result in finished:
            if job.trial_id in wanted:
                results[job.trial_id] = result
        if not finished and executor.in_flight == 0:
            for trial_id in wanted - set(results):
                results[trial_id] = TrialResult.failure(
                    WORKER_LOST, "the executor finished without returning this trial"
                )
    for job in jobs:
        r = results[job.trial_id]
        score = "none" if r.val_score is None else f"{r.val_score:.4f}"
        log.info(
            "trained %s: %s, val score %s, %d epoch(s) in %.1f s",
            ArchSpec.from_json(job.spec_json).summary(),
            r.status,
            score,
            r.epochs_run,
            time.monotonic() - started,
        )
    return [results[job.trial_id] for job in jobs]


def reward_of(result: TrialResult, size_penalty: float, failure_reward: float) -> float:
    """``val_score - size_penalty * log10(params)`` for a scored trial, else ``failure_reward``."""
    if not result.ok or result.val_score is None or not math.isfinite(result.val_score):
        return float(failure_reward)
    reward = float(result.val_score)
    if size_penalty:
        reward -= size_penalty * math.log10(max(int(result.params or 1), 1))
    return reward


def result_info(spec: ArchSpec, result: TrialResult, seed: int) -> dict[str, Any]:
    """The deterministic part of a trial for ``info``: spec JSON, arch_id, :data:`INFO_FIELDS`."""
    info: dict[str, Any] = {"spec": spec.to_json(), "arch_id": spec.arch_id, "trial_seed": seed}
    for name in INFO_FIELDS:
        info[name] = getattr(result, name)
    info["over_budget"] = result.status == OVER_BUDGET
    return info


def observed_score(result: TrialResult | None) -> float:
    if result is None or not result.ok or result.val_score is None:
        return NO_SCORE
    if not math.isfinite(result.val_score):
        return NO_SCORE
    return float(np.clip(result.val_score, -1.0, 1.0))


class AutoDLEnv(gymnasium.Env):
    """One step = one whole architecture, trained and scored.

    **Actions** lie in ``space.gymnasium_space()``, a ``MultiDiscrete`` with one entry per
    decision of the space (the option index). Every action inside those bounds decodes to a
    legal spec: entries of decisions that are inactive for the other values are ignored. An
    action outside the bounds (wrong length, non-integer, an index out of range) raises
    :class:`~autodlgym.errors.AutoDLError`.

    **Rewards**: ``val_score - size_penalty * log10(params)`` for a trial with status ``ok``
    (``val_score`` is the task's validation metric, higher is better: accuracy, or R^2 for
    regression); ``failure_reward`` (default 0.0) for a failed trial (status ``nan``, ``oom``,
    ``timeout``, ``error`` or ``worker_lost``; see ``info["status"]`` and ``info["message"]``).

    **Budget**: a candidate over the space's budget (``max_params`` / ``max_flops``, see
    :mod:`autodlgym.searchspace.constraints`; by default the task's) is not trained: the step
    returns ``failure_reward`` with ``info["over_budget"] = True``, ``info["status"]``
    ``"over_budget"`` and the reason in ``info["message"]``; it counts as one evaluation.

    **Observations** are a flat float32 ``Box`` of length ``len(space) + 3``:

    - ``obs[:len(space)]``: the last candidate's encoding, each option index divided by its
      number of options minus one (so in [0, 1]; inactive decisions and single-option
      decisions read 0; all zeros after ``reset``);
    - ``obs[-3]``: the last candidate's validation score clipped to [-1, 1], or -1 after
      ``reset`` and when the trial failed;
    - ``obs[-2]``: the best validation score of this episode, clipped likewise (-1 if none);
    - ``obs[-1]``: the fraction of the episode's budget left, in [0, 1].

    **Episodes** last ``budget`` evaluations: the step that spends the budget returns
    ``terminated=True``; the env never truncates. Stepping a finished episode raises
    AutoDLError.

    **Info** after each step: ``spec`` (canonical JSON), ``arch_id``, ``trial_seed``, the trial
    fields in :data:`INFO_FIELDS` (``status``, ``val_score``, ``test_score``, ``params``, ...),
    ``best_score`` (None until a trial succeeds) and ``evaluations`` (this episode so far).
    Timings are left out so that infos are deterministic; the full TrialResults of the episode
    are in :attr:`history`.

    **Randomness**: ``reset(seed=s)`` seeds ``np_random``; each step draws its training seed
    from it, so the same seed and actions give the same rollout (on CPU).

    Args:
        task: a task name (see ``autodlgym tasks``) or a Task.
        space: a SearchSpace, a space config mapping, a YAML/JSON path, or None (the task's
            own space for a tabular task, else the default space).
        fidelity: a Fidelity, a number of epochs, or a mapping of Fidelity's fields; None
            (default): a tabular task's full fidelity, else 1 epoch.
        budget: evaluations per episode.
        size_penalty: reward cost per decade of parameters (>= 0).
        executor: where trials run (default: a LocalExecutor on CPU, closed by :meth:`close`).
            An executor passed in is not closed here, and must not run other jobs while the
            env waits for its own.
        task_kwargs: options of the task (e.g. ``{"length": 100}`` for ``adding``).
        failure_reward: reward of a failed trial (and of an over-budget candidate).
        max_params, max_flops: the budget: a number, None to lift it, or ``"default"`` (the
            space's ``constraints``, else the task's default budget).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        task: str | Task = "mnist1d",
        space: SpaceLike = None,
        fidelity: FidelityLike | None = None,
        budget: int = 20,
        size_penalty: float = 0.0,
        executor: Executor | None = None,
        task_kwargs: Mapping[str, Any] | None = None,
        failure_reward: float = 0.0,
        max_params: int | str | None = "default",
        max_flops: int | str | None = "default",
    ) -> None:
        super().__init__()
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
            raise AutoDLError(f"budget must be a positive number of evaluations, got {budget!r}")
        self.task = as_task(task, task_kwargs)
        self.space = resolve_budget(as_space(space, self.task), self.task, max_params, max_flops)
        self.fidelity = as_fidelity(fidelity, self.task)
        self.budget = budget
        self.size_penalty = check_size_penalty(size_penalty)
        self.failure_reward = float(failure_reward)
        self._owns_executor = executor is None
        self.executor: Executor = executor if executor is not None else LocalExecutor()

        self.action_space = self.space.gymnasium_space()
        self._nvec = self.space.nvec
        # dividing by (n - 1) maps option indices onto [0, 1]; single-option decisions read 0
        self._scale = np.maximum(self._nvec - 1, 1).astype(np.float32)
        n = len(self.space)
        low = np.concatenate([np.zeros(n), [NO_SCORE, NO_SCORE, 0.0]]).astype(np.float32)
        self.observation_space = spaces.Box(low=low, high=np.ones(n + 3, dtype=np.float32))

        #: (spec, result) of every evaluation of the current episode, in order.
        self.history: list[tuple[ArchSpec, TrialResult]] = []
        self._encodings: dict[int, np.ndarray] = {}
        self._used = 0
        self._started = False
        self._last_encoding = np.zeros(n, dtype=np.float32)
        self._last_score = NO_SCORE
        self._best: float | None = None

    # Gymnasium API --------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.history = []
        self._encodings = {}
        self._used = 0
        self._started = True
        self._last_encoding = np.zeros(len(self.space), dtype=np.float32)
        self._last_score = NO_SCORE
        self._best = None
        return self._observation(), {"budget": self.budget}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        job, spec = self.prepare(action)
        result = over_budget_result(self.space, spec)
        if result is None:
            (result,) = run_jobs(self.executor, [job])
        return self.finish(job, spec, result)

    def close(self) -> None:
        if self._owns_executor:
            self.executor.close()
        super().close()

    # Steps in two halves, so the vector env can run a batch of trials at once ---------------
    def prepare(self, action: Any) -> tuple[TrialJob, ArchSpec]:
        """Check ``action``, decode it and draw its training seed: the job to run.

        Raises:
            AutoDLError: the action is outside the action space, or the episode is not running.
        """
        self.check_running()
        vector = self.check_action(action)
        spec = self.space.decode(vector)
        seed = int(self.np_random.integers(2**31 - 1))
        job = make_job(spec, self.task, self.fidelity, seed)
        # the spec's encoding is the action with inactive entries zeroed: no re-validation
        active = np.fromiter((c.name in spec for c in self.space.choices), dtype=bool)
        self._encodings[job.trial_id] = np.where(active, vector, 0)
        return job, spec

    def finish(
        self, job: TrialJob, spec: ArchSpec, result: TrialResult
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Record a finished trial: the step's (obs, reward, terminated, truncated, info)."""
        self._used += 1
        self.history.append((spec, result))
        encoding = self._encodings.pop(job.trial_id, None)
        if encoding is None:  # a job this env did not prepare
            encoding = self.space.encode(spec)
        self._last_encoding = encoding.astype(np.float32) / self._scale
        self._last_score = observed_score(result)
        if result.ok and result.val_score is not None and math.isfinite(result.val_score):
            self._best = (
                max(self._best, result.val_score) if self._best is not None else result.val_score
            )
        reward = reward_of(result, self.size_penalty, self.failure_reward)
        info = result_info(spec, result, job.seed)
        info["best_score"] = self._best
        info["evaluations"] = self._used
        return self._observation(), reward, self._used >= self.budget, False, info

    def check_running(self) -> None:
        """AutoDLError unless an episode is running (reset called, budget not spent)."""
        if not self._started:
            raise AutoDLError("call reset() before step(): the episode has not started")
        if self._used >= self.budget:
            raise AutoDLError(
                f"the episode spent its budget of {self.budget} evaluations; call reset()"
            )

    def check_action(self, action: Any) -> np.ndarray:
        """``action`` as an int64 vector, or AutoDLError naming the first entry out of bounds."""
        vec = np.asarray(action)
        n = len(self._nvec)
        if vec.shape != (n,):
            raise AutoDLError(
                f"action has shape {vec.shape}; give {n} option indices, one per decision"
            )
        if vec.dtype.kind not in "iu":
            if (
                vec.dtype.kind != "f"
                or not np.all(np.isfinite(vec))
                or np.any(vec != np.round(vec))
            ):
                raise AutoDLError(f"action entries must be integers, got dtype {vec.dtype}")
        vec = vec.astype(np.int64)
        bad = np.flatnonzero((vec < 0) | (vec >= self._nvec))
        if bad.size:
            i = int(bad[0])
            raise AutoDLError(
                f"action entry {i} ({self.space.choices[i].name}) is {vec[i]}; "
                f"it must lie in [0, {self._nvec[i] - 1}]"
            )
        return vec

    def _observation(self) -> np.ndarray:
        best = NO_SCORE if self._best is None else float(np.clip(self._best, -1.0, 1.0))
        left = (self.budget - self._used) / self.budget
        tail = np.array([self._last_score, best, left], dtype=np.float32)
        return np.concatenate([self._last_encoding, tail]).astype(np.float32)
