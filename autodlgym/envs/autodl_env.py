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

import dataclasses
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
from gymnasium.envs.registration import EnvSpec

from autodlgym.errors import AutoDLError
from autodlgym.execution.local import Executor, LocalExecutor
from autodlgym.searchspace.constraints import resolve_budget
from autodlgym.searchspace.history import NO_SCORE as HISTORY_NO_SCORE
from autodlgym.searchspace.history import clip_score
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.tasks import Task, get_task
from autodlgym.trial import ERROR, OVER_BUDGET, WORKER_LOST, Fidelity, TrialJob, TrialResult

#: a step that trains logs what it trains and how it ended at INFO
log = logging.getLogger("autodlgym.envs")

#: Score written into observations where there is none: before the first evaluation and for a
#: failed one (-2.0). Observed scores are clipped to [-1, 1] (accuracies lie in [0, 1];
#: R^2 <= 1, an R^2 below -1 reads -1), so "no score" stays apart from every real score.
NO_SCORE = HISTORY_NO_SCORE

#: The lowest reward a scored trial can earn, per task metric: an accuracy is at least 0; an
#: R^2 is unbounded below, so its reward is ``max(R^2, -1)``. The default failure reward
#: (``failure_reward="auto"``) is the floor minus 1: -1.0 for accuracy, -2.0 for R^2, below
#: every real score (without a size penalty).
SCORE_FLOORS = {"accuracy": 0.0, "r2": -1.0}

#: TrialResult fields copied into ``info``, the same keys and types in every env: ``status``
#: and ``message`` are str, ``val_score`` and ``train_loss`` float, ``params``,
#: ``trainable_params``, ``flops`` and ``epochs_run`` int. A value the trial does not have (a
#: failed trial's ``val_score``) is a missing key, never None: Gymnasium's vector envs batch
#: the others and mark the gap in ``info["_val_score"]``. Timings, the worker name and peak memory differ
#: between two runs of the same trial, so they stay out: infos are deterministic for a seed.
#: Test scores are left out unless the env is made with ``report_test=True``: agents, like
#: searchers, see validation scores only.
INFO_FIELDS = (
    "status",
    "val_score",
    "train_loss",
    "params",
    "trainable_params",
    "flops",
    "epochs_run",
    "message",
)
_FLOAT_FIELDS = frozenset({"val_score", "train_loss", "test_score"})
_INT_FIELDS = frozenset({"params", "trainable_params", "flops", "epochs_run"})

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


def score_floor(task: Task) -> float:
    """The lowest reward a scored trial of ``task`` earns (see :data:`SCORE_FLOORS`)."""
    return SCORE_FLOORS.get(getattr(task, "metric", "accuracy"), 0.0)


def check_failure_reward(failure_reward: float | str, task: Task) -> float:
    """``"auto"``: the task's score floor minus 1 (below every real score); else the number."""
    if isinstance(failure_reward, str):
        if failure_reward != "auto":
            raise AutoDLError(f"failure_reward must be a number or 'auto', got {failure_reward!r}")
        return score_floor(task) - 1.0
    value = float(failure_reward)
    if not math.isfinite(value):
        raise AutoDLError(f"failure_reward must be a finite number, got {failure_reward!r}")
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
    # the log lines decode each spec: only when someone listens
    logging_info = log.isEnabledFor(logging.INFO)
    for job in jobs:
        if logging_info:
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
    for job in jobs if logging_info else ():
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


def reward_of(
    result: TrialResult, size_penalty: float, failure_reward: float, floor: float = -math.inf
) -> float:
    """``max(val_score, floor) - size_penalty * log10(params)`` for a scored trial, else
    ``failure_reward``."""
    if not result.ok or result.val_score is None or not math.isfinite(result.val_score):
        return float(failure_reward)
    reward = max(float(result.val_score), floor)
    if size_penalty:
        reward -= size_penalty * math.log10(max(int(result.params or 1), 1))
    return reward


def result_info(
    spec: ArchSpec, result: TrialResult, seed: int | None, report_test: bool = False
) -> dict[str, Any]:
    """The deterministic part of a trial for ``info``: ``spec`` (the ArchSpec), ``arch_id``,
    ``trial_seed`` (-1 when none was drawn), :data:`INFO_FIELDS` with fixed types (a missing
    value leaves its key out), and ``test_score`` only with ``report_test``."""
    info: dict[str, Any] = {
        "spec": spec,
        "arch_id": spec.arch_id,
        "trial_seed": -1 if seed is None else int(seed),
    }
    for name in INFO_FIELDS + (("test_score",) if report_test else ()):
        value = getattr(result, name)
        if name in _FLOAT_FIELDS:
            if value is not None and math.isfinite(value):
                info[name] = float(value)
        elif name in _INT_FIELDS:
            if value is not None:
                info[name] = int(value)
        else:
            info[name] = "" if value is None else str(value)
    info["over_budget"] = result.status == OVER_BUDGET
    return info


def lookup_now(executor: Executor, job: TrialJob, spec: ArchSpec, task: Task) -> TrialResult:
    """A lookup task's answer read in this process (no JSON round trip through the executor)
    when the env's executor is an in-process one; otherwise the executor runs the job."""
    if task.kind == "lookup" and type(executor) is LocalExecutor:
        try:
            return task.evaluate(spec, job.fidelity, job.seed)
        except Exception as exc:  # noqa: BLE001 - as run_job: a failing lookup is a result
            return TrialResult.failure(ERROR, f"{type(exc).__name__}: {exc}")
    (result,) = run_jobs(executor, [job])
    return result


def budget_masks(space: SearchSpace) -> tuple[np.ndarray, ...]:
    """Per decision of ``space``, the options (int8, 1 = allowed) that some candidate inside
    the budget uses, judged by completing each option with the cheapest candidate's other
    values; all ones without a budget (or when nothing fits, then every step fails anyway)."""
    from autodlgym.searchspace.constraints import option_fits

    masks = []
    for c in space.choices:
        allowed = [option_fits(space, {}, c, option) for option in c.options]
        masks.append(np.asarray(allowed, dtype=np.int8))
    return tuple(masks)


def check_render_mode(render_mode: str | None, metadata: Mapping[str, Any]) -> str | None:
    if render_mode is not None and render_mode not in metadata["render_modes"]:
        raise AutoDLError(
            f"render_mode {render_mode!r} is not offered; use one of "
            f"{', '.join(metadata['render_modes'])} or None"
        )
    return render_mode


def observed_score(result: TrialResult | None) -> float:
    if result is None or not result.ok:
        return NO_SCORE
    return clip_score(result.val_score)


class AutoDLEnv(gymnasium.Env):
    """One step = one whole architecture, trained and scored.

    **Actions** lie in ``space.gymnasium_space()``, a ``MultiDiscrete`` with one entry per
    decision of the space (the option index). Every action inside those bounds decodes to a
    legal spec: entries of decisions that are inactive for the other values are ignored. An
    action outside the bounds (wrong length, non-integer, an index out of range) raises
    :class:`~autodlgym.errors.AutoDLError`.

    **Rewards**: ``max(val_score, floor) - size_penalty * log10(params)`` for a trial with
    status ``ok`` (``val_score`` is the task's validation metric, higher is better: accuracy,
    or R^2 for regression; ``floor`` is 0 for accuracy and -1 for R^2, see
    :data:`SCORE_FLOORS`); ``failure_reward`` for a failed trial (status ``nan``, ``oom``,
    ``timeout``, ``error`` or ``worker_lost``; see ``info["status"]`` and ``info["message"]``).
    The default ``"auto"`` is the floor minus 1 (-1.0 for accuracy, -2.0 for R^2): failing
    never pays more than a trained architecture.

    **Budget**: a candidate over the space's budget (``max_params`` / ``max_flops``, see
    :mod:`autodlgym.searchspace.constraints`; by default the task's) is not trained: the step
    returns ``failure_reward`` with ``info["over_budget"] = True``, ``info["status"]``
    ``"over_budget"`` and the reason in ``info["message"]``; it counts as one evaluation.
    ``info["action_mask"]`` (and :meth:`action_masks`, flattened, for sb3-contrib) masks the
    options that no candidate inside the budget uses (a tuple of int8 arrays, one per
    decision, the form ``action_space.sample(mask=...)`` takes); the mask is per decision, so
    a masked-in action can still be over budget.

    **Observations** are a flat float32 ``Box`` of length ``len(space) + 3``:

    - ``obs[:len(space)]``: the last candidate's encoding, each option index divided by its
      number of options minus one (so in [0, 1]; inactive decisions and single-option
      decisions read 0; all zeros after ``reset``);
    - ``obs[-3]``: the last candidate's validation score clipped to [-1, 1], or
      :data:`NO_SCORE` (-2) after ``reset`` and when the trial failed;
    - ``obs[-2]``: the best validation score of this episode, clipped likewise (-2 if none);
    - ``obs[-1]``: the fraction of the episode's budget left, in [0, 1].

    **Episodes** last ``budget`` evaluations: the step that spends the budget returns
    ``terminated=True``; the env never truncates; ``spec.max_episode_steps`` (under
    ``gymnasium.make``) is the budget. Stepping a finished episode raises AutoDLError.

    **Info** after each step: ``spec`` (the :class:`~autodlgym.ArchSpec`), ``arch_id``,
    ``trial_seed``, the trial fields in :data:`INFO_FIELDS` (fixed types; a value that is
    missing leaves its key out), ``over_budget``, ``best_score`` (left out until a trial
    succeeds), ``evaluations``
    (this episode so far), ``action_mask`` and ``invalid_action`` (always False here: no
    action is remapped); ``test_score`` only with ``report_test=True``. Reset's info has
    ``budget`` and ``action_mask``. Timings are left out so that infos are deterministic; the
    full TrialResults of the episode are in :attr:`history`.

    **Rendering**: ``render_mode="ansi"``: :meth:`render` returns the last evaluation as text.

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
        failure_reward: reward of a failed trial (and of an over-budget candidate); ``"auto"``
            (default): below every real score, see above.
        max_params, max_flops: the budget: a number, None to lift it, or ``"default"`` (the
            space's ``constraints``, else the task's default budget).
        report_test: put the trial's ``test_score`` in ``info`` (for reporting; an agent that
            reads it is tuned on the test set).
        render_mode: None or ``"ansi"``.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        task: str | Task = "mnist1d",
        space: SpaceLike = None,
        fidelity: FidelityLike | None = None,
        budget: int = 20,
        size_penalty: float = 0.0,
        executor: Executor | None = None,
        task_kwargs: Mapping[str, Any] | None = None,
        failure_reward: float | str = "auto",
        max_params: int | str | None = "default",
        max_flops: int | str | None = "default",
        report_test: bool = False,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
            raise AutoDLError(f"budget must be a positive number of evaluations, got {budget!r}")
        self.render_mode = check_render_mode(render_mode, self.metadata)
        self.task = as_task(task, task_kwargs)
        self.space = resolve_budget(as_space(space, self.task), self.task, max_params, max_flops)
        self.fidelity = as_fidelity(fidelity, self.task)
        self.budget = budget
        self.size_penalty = check_size_penalty(size_penalty)
        self.failure_reward = check_failure_reward(failure_reward, self.task)
        self.floor = score_floor(self.task)
        self.report_test = bool(report_test)
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
        self._masks: tuple[np.ndarray, ...] | None = None

    # EnvSpec: gymnasium.make sets it; the episode length is known, so it is filled in
    @property
    def spec(self) -> EnvSpec | None:
        return self._env_spec

    @spec.setter
    def spec(self, value: EnvSpec | None) -> None:
        if value is not None and value.max_episode_steps is None:
            value = dataclasses.replace(value, max_episode_steps=self.max_episode_steps)
        self._env_spec = value

    _env_spec: EnvSpec | None = None

    @property
    def max_episode_steps(self) -> int:
        """Steps per episode: the budget of evaluations."""
        return self.budget

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
        return self._observation(), {"budget": self.budget, "action_mask": self.action_mask()}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        job, spec = self.prepare(action)
        result = over_budget_result(self.space, spec)
        if result is None:
            result = lookup_now(self.executor, job, spec, self.task)
        return self.finish(job, spec, result)

    def action_mask(self) -> tuple[np.ndarray, ...]:
        """Per decision, the options some candidate inside the budget uses (int8 arrays, a
        fresh copy; see :func:`budget_masks`)."""
        if self._masks is None:
            self._masks = budget_masks(self.space)
        return tuple(m.copy() for m in self._masks)

    def action_masks(self) -> np.ndarray:
        """:meth:`action_mask` flattened to one bool array (sb3-contrib's MaskablePPO form)."""
        return np.concatenate(self.action_mask()).astype(bool)

    def render(self) -> str | None:
        """The last evaluation as one line of text (``render_mode="ansi"``); None otherwise."""
        if self.render_mode != "ansi":
            return None
        head = f"evaluation {self._used}/{self.budget}"
        if not self.history:
            return f"{head}: nothing evaluated yet"
        spec, result = self.history[-1]
        score = "none" if result.val_score is None else f"{result.val_score:.4f}"
        best = "none" if self._best is None else f"{self._best:.4f}"
        return f"{head}: {spec.summary()} -> {result.status}, val {score} (best {best})"

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
        reward = reward_of(result, self.size_penalty, self.failure_reward, self.floor)
        info = result_info(spec, result, job.seed, self.report_test)
        if self._best is not None:
            info["best_score"] = float(self._best)
        info["evaluations"] = self._used
        info["action_mask"] = self.action_mask()
        info["invalid_action"] = False
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
        best = clip_score(self._best)
        left = (self.budget - self._used) / self.budget
        tail = np.array([self._last_score, best, left], dtype=np.float32)
        return np.concatenate([self._last_encoding, tail]).astype(np.float32)
