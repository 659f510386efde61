"""SearchEpisodeEnv: one episode is one search of ``budget`` evaluations on one task.

The ids ``autodlgym/<Name>-Search-v0``. Each step proposes a whole architecture (as in
:class:`~autodlgym.envs.autodl_env.AutoDLEnv`), the observation carries the search's history
(:class:`~autodlgym.searchspace.history.SearchHistory`), and the reward pays for what a search
is judged on, the best found, rather than for each score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from autodlgym.envs.autodl_env import AutoDLEnv, FidelityLike, SpaceLike
from autodlgym.errors import AutoDLError
from autodlgym.execution.local import Executor
from autodlgym.searchspace.history import SearchHistory
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.tasks import Task
from autodlgym.trial import TrialJob, TrialResult

#: reward options of :class:`SearchEpisodeEnv`
REWARDS = ("improvement", "regret", "rank")


_TABLES: dict[tuple[str, tuple, int], tuple[np.ndarray, float]] = {}


def _table_scores(task: Task, epochs: int) -> tuple[np.ndarray, float]:
    """A lookup's validation scores, sorted, and their mean under the space's sampling law;
    kept per process (many envs of one table share them)."""
    key = (task.name, tuple(sorted(task.kwargs)), int(epochs))
    if key not in _TABLES:
        outcomes = task.outcomes(epochs)
        mass = max(float(outcomes.mass.sum()), 1e-12)
        _TABLES[key] = (
            np.sort(np.asarray(outcomes.val, dtype=float)),
            float((outcomes.val * outcomes.mass).sum() / mass),
        )
    return _TABLES[key]


class SearchEpisodeEnv(AutoDLEnv):
    """One episode = one search of ``budget`` evaluations; one step = one architecture.

    **Actions**, **budget** (over-budget candidates are not trained; budget-aware
    ``info["action_mask"]`` and :meth:`action_masks`), the trial fields of **info** and
    **rendering** are those of :class:`~autodlgym.envs.autodl_env.AutoDLEnv`.

    **Observations**: a float32 ``Box``, :meth:`SearchHistory.vector
    <autodlgym.searchspace.history.SearchHistory.vector>`: the last candidate's encoding, its
    validation score, the best so far, the fraction of evaluations left, the last score's rank
    among this search's earlier scores, whether it raised the best, whether it failed, and with
    ``top_k > 0`` the encodings and scores of the ``top_k`` best so far.

    **Rewards** (``reward=``), all zero for a step that does not raise the best so far, so a
    repeated architecture earns nothing:

    - ``"improvement"`` (default, any task): the rise of the best validation score so far,
      counted from the task's score floor (0 for accuracy, -1 for R^2, see
      :data:`~autodlgym.envs.autodl_env.SCORE_FLOORS`): the return is the final best minus
      the floor, the final best itself for accuracy.
    - ``"rank"`` (tabular tasks): the rise of ``F(best so far)``, F the fraction of the
      table's architectures whose validation score is below it: the return is the final
      best's quantile in the table, in [0, 1], comparable across tables.
    - ``"regret"`` (tabular tasks): ``-(optimum - best so far) / (optimum - mean)`` after every
      step (mean: what one uniform draw from the space scores on average; before the first
      success the table's worst counts as the best): the return is minus the area under the
      normalised regret curve, which pays for finding good architectures early.

    Failures (and over-budget candidates) raise nothing: they earn 0 under every option.

    **Info**: as AutoDLEnv's, plus ``regret`` (the table's optimum minus the best so far) for
    tabular tasks once a step succeeded.

    Args:
        task, space, fidelity, size_penalty, executor, task_kwargs, failure_reward,
            max_params, max_flops, report_test, render_mode: as for AutoDLEnv
            (``size_penalty`` and ``failure_reward`` only enter ``info``-free bookkeeping:
            the reward is one of the options above).
        budget: evaluations per episode (default 100).
        reward: ``"improvement"``, ``"rank"`` or ``"regret"``.
        top_k: the number of best candidates the observation carries.
    """

    def __init__(
        self,
        task: str | Task = "mnist1d",
        space: SpaceLike = None,
        fidelity: FidelityLike | None = None,
        budget: int = 100,
        reward: str = "improvement",
        top_k: int = 0,
        executor: Executor | None = None,
        task_kwargs: Mapping[str, Any] | None = None,
        failure_reward: float | str = "auto",
        max_params: int | str | None = "default",
        max_flops: int | str | None = "default",
        report_test: bool = False,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            task=task,
            space=space,
            fidelity=fidelity,
            budget=budget,
            executor=executor,
            task_kwargs=task_kwargs,
            failure_reward=failure_reward,
            max_params=max_params,
            max_flops=max_flops,
            report_test=report_test,
            render_mode=render_mode,
        )
        if reward not in REWARDS:
            raise AutoDLError(f"reward must be one of {', '.join(REWARDS)}; got {reward!r}")
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0:
            raise AutoDLError(f"top_k must be an integer >= 0, got {top_k!r}")
        self.reward_kind = reward
        self.top_k = top_k
        self._table: np.ndarray | None = None  # sorted validation scores of a lookup's table
        if self.task.kind == "lookup":
            self._table, mean = _table_scores(self.task, self.fidelity.epochs)
            self._optimum = float(self._table[-1])
            self._spread = max(self._optimum - mean, 1e-12)
        elif reward != "improvement":
            raise AutoDLError(
                f"reward={reward!r} needs a table's scores; {self.task.name!r} trains its "
                "candidates: use reward='improvement'"
            )
        self.search = SearchHistory(self.space, budget, top_k)
        low, high = self.search.bounds()
        self.observation_space = spaces.Box(low=low, high=high, dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        self.search = SearchHistory(self.space, self.budget, self.top_k)
        _, info = super().reset(seed=seed, options=options)
        return self._observation(), info

    def finish(
        self, job: TrialJob, spec: ArchSpec, result: TrialResult
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        encoding = self._encodings.get(job.trial_id)
        before = self.search.best
        score = result.val_score if result.ok else None
        self.search.add(spec, score, encoding)
        obs, _, terminated, truncated, info = super().finish(job, spec, result)
        after = self.search.best
        reward = self.reward_for(before, after)
        if self._table is not None and after is not None:
            info["regret"] = self._optimum - after
        return obs, reward, terminated, truncated, info

    def reward_for(self, before: float | None, after: float | None) -> float:
        """The step's reward when the best so far goes from ``before`` to ``after``."""
        if self.reward_kind == "regret":
            best = after if after is not None else float(self._table[0])
            return -(self._optimum - best) / self._spread
        if after is None or (before is not None and after <= before):
            return 0.0
        if self.reward_kind == "rank":
            return self.quantile(after) - (0.0 if before is None else self.quantile(before))
        start = self.floor if before is None else max(before, self.floor)
        return max(after, self.floor) - start

    def quantile(self, score: float) -> float:
        """The fraction of the table's architectures whose validation score is below ``score``."""
        return float(np.searchsorted(self._table, score, side="left") / len(self._table))

    def _observation(self) -> np.ndarray:
        search = getattr(self, "search", None)
        if search is None:  # during AutoDLEnv's constructor
            return super()._observation()
        return search.vector()


class TaskSamplingEnv(gymnasium.Env):
    """Search episodes on tasks drawn from ``tasks``, one task per episode (from
    ``np_random``): the training env of a suite's fold (:mod:`autodlgym.rl.suites`).

    The tasks' spaces must have the same decisions in the same order (NAS-Bench-Graph's
    tables do; proteins offers 5 operations where the others offer 9). The action space is a
    ``MultiDiscrete`` of the largest option counts; an index a task does not have is mapped
    onto ``index % n_options`` and reported (``info["invalid_action"]``, and
    ``info["remapped"]``, the entries remapped this step). ``info["task"]`` names the
    episode's task; ``info["action_mask"]`` is the task's mask, padded with zeros. The rest
    is :class:`SearchEpisodeEnv`'s (``kwargs`` reach every task's env).
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, tasks: Sequence[str], **kwargs: Any) -> None:
        super().__init__()
        if not tasks:
            raise AutoDLError("give at least one training task")
        self.render_mode = kwargs.get("render_mode")
        self.envs = [SearchEpisodeEnv(task, **kwargs) for task in tasks]
        names = [tuple(env.space.names) for env in self.envs]
        if len(set(names)) != 1:
            raise AutoDLError(
                "the tasks' spaces differ in their decisions; a task-sampling env needs one "
                f"list of decisions (got {sorted(set(names))[:2]})"
            )
        self._nvecs = np.stack([env.space.nvec for env in self.envs])
        self.action_space = spaces.MultiDiscrete(self._nvecs.max(0))
        self.observation_space = self.envs[0].observation_space
        self.current = self.envs[0]

    @property
    def task_names(self) -> list[str]:
        return [env.task.name for env in self.envs]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        i = int(self.np_random.integers(len(self.envs)))
        self.current = self.envs[i]
        obs, info = self.current.reset(seed=int(self.np_random.integers(2**31 - 1)))
        info["action_mask"] = self._padded(info["action_mask"])
        info["task"] = self.current.task.name
        return obs, info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        vec = np.asarray(action, dtype=np.int64)
        nvec = self.current.space.nvec
        if vec.shape != nvec.shape:
            raise AutoDLError(f"action has shape {vec.shape}; give {len(nvec)} option indices")
        wrapped = vec % nvec
        remapped = int((wrapped != vec).sum())
        obs, reward, terminated, truncated, info = self.current.step(wrapped)
        info["invalid_action"] = remapped > 0
        info["remapped"] = remapped
        info["action_mask"] = self._padded(info["action_mask"])
        info["task"] = self.current.task.name
        return obs, reward, terminated, truncated, info

    def render(self) -> str | None:
        return self.current.render()

    def close(self) -> None:
        for env in self.envs:
            env.close()
        super().close()

    def _padded(self, masks: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        out = []
        for m, n in zip(masks, self.action_space.nvec):
            padded = np.zeros(int(n), dtype=np.int8)
            padded[: len(m)] = m
            out.append(padded)
        return tuple(out)
