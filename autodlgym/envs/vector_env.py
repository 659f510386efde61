"""AutoDLVectorEnv: ``num_envs`` copies of :class:`~autodlgym.envs.autodl_env.AutoDLEnv` whose
trials of one step run in parallel on one executor.

Made directly or through Gymnasium:
``gymnasium.make_vec("autodlgym/MNIST1D-v0", num_envs=4, vectorization_mode="vector_entry_point")``
(the default mode for the whole-architecture ids).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from autodlgym.envs.autodl_env import (
    AutoDLEnv,
    FidelityLike,
    SpaceLike,
    as_space,
    as_task,
    lookup_now,
    over_budget_result,
    run_jobs,
)
from autodlgym.errors import AutoDLError
from autodlgym.execution.local import Executor, LocalExecutor
from autodlgym.searchspace.constraints import resolve_budget
from autodlgym.tasks import Task


def batch_infos(infos: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Gymnasium's vector info layout: ``info[k]`` an array over the copies, ``info["_k"]`` a
    bool mask of the copies that reported ``k``.

    Unlike ``VectorEnv._add_info``, a key whose values mix types or include None (a failed
    trial's ``val_score``) gets an object array instead of an error.
    """
    n = len(infos)
    keys = list(dict.fromkeys(k for info in infos if info for k in info))
    out: dict[str, Any] = {}
    for key in keys:
        present = np.array([info is not None and key in info for info in infos], dtype=bool)
        values = [info[key] for info in infos if info is not None and key in info]
        kinds = {type(v) for v in values}
        array: np.ndarray
        if len(kinds) == 1 and kinds <= {bool, int, float} | {np.bool_, np.int64, np.float64}:
            array = np.zeros(n, dtype=kinds.pop())
        elif (
            all(isinstance(v, np.ndarray) for v in values)
            and len({(v.shape, v.dtype) for v in values}) == 1
        ):
            array = np.zeros((n, *values[0].shape), dtype=values[0].dtype)
        else:
            array = np.full(n, None, dtype=object)
        for i, v in zip(np.flatnonzero(present), values):
            array[i] = v
        out[key], out[f"_{key}"] = array, present
    return out


class AutoDLVectorEnv(VectorEnv):
    """A batch of AutoDLEnv copies stepped together; see AutoDLEnv for actions, observations,
    rewards and infos of each copy.

    ``step(actions)`` checks every action first (an AutoDLError leaves nothing running), submits
    one trial per copy to the shared executor, waits for all of them, and batches the results:
    observations ``(num_envs, len(space) + 3)``, rewards, terminations and truncations
    ``(num_envs,)``, and infos as Gymnasium's dict of arrays (key ``k`` with mask ``_k``).

    **Autoreset** is Gymnasium's ``NEXT_STEP`` mode (``metadata["autoreset_mode"]``): the step
    on which a copy spends its budget returns its last observation with ``terminated=True``; on
    the next ``step`` that copy is reset instead of stepped (its action is ignored, its reward is
    0, it is not terminated, and no trial runs for it). Copies share the budget length, so they
    end episodes together.

    **Seeding**: ``reset(seed=s)`` seeds copy ``i`` with ``s + i`` (a list gives one seed per
    copy); each copy draws its trials' seeds from its own ``np_random``.

    Args:
        num_envs: number of copies.
        task, space, fidelity, budget, size_penalty, task_kwargs, failure_reward, max_params,
            max_flops, report_test: as for AutoDLEnv (the same for every copy; over-budget candidates are
            not trained).
        executor: runs the trials (default: a LocalExecutor, one trial at a time, closed by
            :meth:`close`; pass a Ray executor to train the batch in parallel). It must not run
            other jobs while a step waits.
    """

    metadata: dict[str, Any] = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int,
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
    ) -> None:
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise AutoDLError(f"num_envs must be a positive integer, got {num_envs!r}")
        self._owns_executor = executor is None
        self.executor: Executor = executor if executor is not None else LocalExecutor()
        # resolved once, so the copies share one space (and its count of rejections)
        the_task = as_task(task, task_kwargs)
        space = resolve_budget(as_space(space, the_task), the_task, max_params, max_flops)
        self.envs = [
            AutoDLEnv(
                task=task,
                space=space,
                fidelity=fidelity,
                budget=budget,
                size_penalty=size_penalty,
                executor=self.executor,
                task_kwargs=task_kwargs,
                failure_reward=failure_reward,
                report_test=report_test,
            )
            for _ in range(num_envs)
        ]
        self.num_envs = num_envs
        self.space = space
        self.task = the_task
        self.single_action_space = self.envs[0].action_space
        self.single_observation_space = self.envs[0].observation_space
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._needs_reset = np.zeros(num_envs, dtype=bool)

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every copy (``options={"reset_mask": mask}``: only those where mask is True)."""
        if seed is None or isinstance(seed, int):
            super().reset(seed=seed)
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise AutoDLError(f"give {self.num_envs} seeds, one per copy; got {len(seeds)}")
        options = dict(options or {})
        mask = np.asarray(options.pop("reset_mask", np.ones(self.num_envs, dtype=bool)), dtype=bool)
        obs = self._current_observations()
        infos: list[dict[str, Any] | None] = [None] * self.num_envs
        for i, env in enumerate(self.envs):
            if mask[i]:
                obs[i], infos[i] = env.reset(seed=seeds[i], options=options)
                self._needs_reset[i] = False
        return obs, batch_infos(infos)

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        if actions.shape[:1] != (self.num_envs,):
            raise AutoDLError(
                f"actions have shape {actions.shape}; give one action per copy, "
                f"shape ({self.num_envs}, {len(self.space)})"
            )
        obs = self._current_observations()
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: list[dict[str, Any] | None] = [None] * self.num_envs

        to_step = [i for i in range(self.num_envs) if not self._needs_reset[i]]
        for i in to_step:  # check every copy and action before any trial starts
            self.envs[i].check_running()
            self.envs[i].check_action(actions[i])
        prepared = {i: self.envs[i].prepare(actions[i]) for i in to_step}
        results = {i: over_budget_result(self.space, prepared[i][1]) for i in to_step}
        to_run = [i for i in to_step if results[i] is None]  # over budget: never trained
        if self.envs[0].task.kind == "lookup" and type(self.executor) is LocalExecutor:
            # a table answers at once: no JSON round trip through the executor
            for i in to_run:
                results[i] = lookup_now(self.executor, prepared[i][0], prepared[i][1], self.task)
        else:
            jobs = [prepared[i][0] for i in to_run]
            results.update(zip(to_run, run_jobs(self.executor, jobs)))

        for i in range(self.num_envs):
            if self._needs_reset[i]:
                obs[i], infos[i] = self.envs[i].reset()
                self._needs_reset[i] = False
            else:
                job, spec = prepared[i]
                obs[i], rewards[i], terminated[i], truncated[i], infos[i] = self.envs[i].finish(
                    job, spec, results[i]
                )
                self._needs_reset[i] = terminated[i] or truncated[i]
        return obs, rewards, terminated, truncated, batch_infos(infos)

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()
        if self._owns_executor:
            self.executor.close()

    def _current_observations(self) -> np.ndarray:
        return np.stack([env._observation() for env in self.envs]).astype(np.float32)


def sync_vector_env(num_envs: int, env_class: str, **kwargs: Any) -> VectorEnv:
    """``num_envs`` copies of ``env_class`` (``"module:Class"``) in Gymnasium's
    ``SyncVectorEnv``, sharing one executor: the vector entry point of the ids whose env has
    no batched implementation (``-Seq`` and ``-Search``). Copies reset with seeds ``s + i``."""
    from gymnasium.envs.registration import load_env_creator
    from gymnasium.vector import SyncVectorEnv

    if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
        raise AutoDLError(f"num_envs must be a positive integer, got {num_envs!r}")
    kwargs.pop("max_episode_steps", None)  # the env reports its own
    make = load_env_creator(env_class)
    executor = kwargs.pop("executor", None)
    shared = executor if executor is not None else LocalExecutor()

    def one() -> Any:
        return make(executor=shared, **kwargs)

    venv = SyncVectorEnv([one for _ in range(num_envs)])
    if executor is None:  # ours: closed with the vector env
        close_extras = venv.close_extras

        def close_all(**kw: Any) -> None:
            close_extras(**kw)
            shared.close()

        venv.close_extras = close_all  # type: ignore[method-assign]
    return venv


def sequential_vector_env(num_envs: int, **kwargs: Any) -> VectorEnv:
    """The vector entry point of the ``-Seq`` ids (see :func:`sync_vector_env`)."""
    return sync_vector_env(num_envs, "autodlgym.envs.sequential_env:SequentialAutoDLEnv", **kwargs)


def search_vector_env(num_envs: int, **kwargs: Any) -> VectorEnv:
    """The vector entry point of the ``-Search`` ids (see :func:`sync_vector_env`)."""
    return sync_vector_env(num_envs, "autodlgym.envs.search_env:SearchEpisodeEnv", **kwargs)
