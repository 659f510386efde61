"""SequentialAutoDLEnv: build an architecture one decision per step, scored at the end.

Each step picks the option of one decision of the search space, in the space's order, skipping
decisions that are inactive for the values chosen so far (a kernel size only for conv-like
blocks): the steps of a :class:`~autodlgym.searchspace.sequential.DecisionSequence`. When the
last active decision is made the spec is complete: it is trained and scored (or handed back
unscored with ``evaluate=False``) and the episode ends.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec

from autodlgym.envs.autodl_env import (
    FidelityLike,
    SpaceLike,
    as_fidelity,
    as_space,
    as_task,
    check_failure_reward,
    check_render_mode,
    check_size_penalty,
    lookup_now,
    make_job,
    over_budget_result,
    result_info,
    reward_of,
    score_floor,
)
from autodlgym.errors import AutoDLError
from autodlgym.execution.local import Executor, LocalExecutor
from autodlgym.searchspace.constraints import budget_mask, resolve_budget
from autodlgym.searchspace.sequential import NOT_MADE, DecisionSequence
from autodlgym.tasks import Task


class SequentialAutoDLEnv(gymnasium.Env):
    """One step = one decision; the finished architecture is trained on the last step.

    **Actions**: ``Discrete(space.max_options)``, the index of an option of the decision to make
    now. Only the first ``len(options)`` indices are valid for that decision, and under a
    budget only the options some candidate inside the budget still reaches (judged by
    completing the choices so far with the cheapest candidate's values; see
    :func:`~autodlgym.searchspace.constraints.budget_mask`): :meth:`action_masks` (bool, the
    method sb3-contrib's ``MaskablePPO`` calls) and ``info["action_mask"]`` (int8, the form
    ``action_space.sample(mask=...)`` takes) give the mask, ``info["decision"]`` the
    decision's name. A masked action ``a`` is not an error: it is mapped deterministically
    onto the valid option number ``a % n_valid`` (counting valid options in order) and
    flagged with ``info["invalid_action"] = True`` (False otherwise); ``info["remapped"]``
    counts the remapped decisions of the episode so far. So agents that ignore masks and
    Gymnasium's checker still work. An action outside ``[0, max_options)`` raises
    :class:`~autodlgym.errors.AutoDLError`.

    **Observations**: a float32 ``Box`` of length ``len(space) + 1``. ``obs[i]`` is the option
    index chosen for decision ``i`` (the space's order), or -1 while not made and for inactive
    decisions; ``obs[-1]`` is the position (index in ``space.choices``) of the decision to make
    now, ``len(space)`` once the spec is complete. Bounds: ``[-1, max_options - 1]`` for the
    choices and ``[-1, len(space)]`` for the position.

    **Rewards**: 0.0 on every step but the last. On the last step, with ``evaluate=True``, the
    spec is trained and the reward is ``max(val_score, floor) - size_penalty * log10(params)``,
    or ``failure_reward`` when the trial failed (see ``info["status"]``; the default
    ``"auto"`` is below every real score, as in
    :class:`~autodlgym.envs.autodl_env.AutoDLEnv`); with ``evaluate=False``
    nothing is trained, the reward is 0.0 and ``info["deferred"] = True``: the caller scores
    ``info["spec"]`` itself.

    **Budget**: a finished spec over the space's budget (``max_params`` / ``max_flops``; by
    default the task's) is never trained, even with ``evaluate=True``: the last step returns
    ``failure_reward`` with ``info["over_budget"] = True``, ``info["status"]`` ``"over_budget"``
    and the reason in ``info["message"]``. ``info["over_budget"]`` is False on other last steps.

    **Episodes** end (``terminated=True``) on the step that makes the last active decision; the
    env never truncates. Episode length depends on the choices (more stages, more decisions);
    ``spec.max_episode_steps`` (under ``gymnasium.make``) is ``len(space)``, the most.

    **Info**: on reset and every step, ``action_mask`` (int8, ``max_options`` long; all 0
    once the spec is complete), ``decision`` (name of the next decision, "" once complete),
    ``position``, ``remapped``; on steps also ``invalid_action`` and ``chosen`` (the option
    index applied). On the last step ``spec`` is the :class:`~autodlgym.ArchSpec`,
    ``over_budget`` says whether it was rejected; evaluated, it also carries ``arch_id``,
    ``trial_seed`` and the trial fields of :data:`~autodlgym.envs.autodl_env.INFO_FIELDS`
    (the same keys and types as the whole-architecture env). With ``report_test=True`` the
    last step also has ``test_score`` and ``result`` (the TrialResult).

    **Rendering**: ``render_mode="ansi"``: :meth:`render` returns the decisions so far.

    **Randomness**: the training seed of the last step is drawn from ``np_random``, seeded by
    ``reset(seed=...)``.

    Args:
        task: a task name or a Task.
        space: a SearchSpace, a space config mapping, a YAML/JSON path, or None (default space).
        fidelity: a Fidelity, a number of epochs, or a mapping of Fidelity's fields; None
            (default): a tabular task's full fidelity, else 1 epoch.
        size_penalty: reward cost per decade of parameters (>= 0).
        executor: where trials run (default: a LocalExecutor on CPU, closed by :meth:`close`).
        task_kwargs: options of the task.
        evaluate: train the finished spec on the last step (False: defer scoring to the caller).
        failure_reward: reward of a failed trial (and of an over-budget spec); ``"auto"``
            (default): below every real score.
        max_params, max_flops: the budget: a number, None to lift it, or ``"default"`` (the
            space's ``constraints``, else the task's default budget).
        report_test: put the test score (and the TrialResult) in the last step's ``info``.
        render_mode: None or ``"ansi"``.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        task: str | Task = "mnist1d",
        space: SpaceLike = None,
        fidelity: FidelityLike | None = None,
        size_penalty: float = 0.0,
        executor: Executor | None = None,
        task_kwargs: Mapping[str, Any] | None = None,
        evaluate: bool = True,
        failure_reward: float | str = "auto",
        max_params: int | str | None = "default",
        max_flops: int | str | None = "default",
        report_test: bool = False,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        self.render_mode = check_render_mode(render_mode, self.metadata)
        self.task = as_task(task, task_kwargs)
        self.space = resolve_budget(as_space(space, self.task), self.task, max_params, max_flops)
        self.fidelity = as_fidelity(fidelity, self.task)
        self.size_penalty = check_size_penalty(size_penalty)
        self.evaluate = bool(evaluate)
        self.failure_reward = check_failure_reward(failure_reward, self.task)
        self.floor = score_floor(self.task)
        self.report_test = bool(report_test)
        self._owns_executor = executor is None
        self._executor = executor

        n, k = len(self.space), self.space.max_options
        self.action_space = spaces.Discrete(k)
        low = np.full(n + 1, NOT_MADE, dtype=np.float32)
        high = np.append(np.full(n, k - 1), n).astype(np.float32)
        self.observation_space = spaces.Box(low=low, high=high, dtype=np.float32)

        #: the decisions of the current episode (None before the first reset)
        self._sequence: DecisionSequence | None = None
        self._remapped = 0
        self._mask: np.ndarray | None = None

    @property
    def spec(self) -> EnvSpec | None:
        return self._env_spec

    @spec.setter
    def spec(self, value: EnvSpec | None) -> None:
        if value is not None and value.max_episode_steps is None:
            value = dataclasses.replace(value, max_episode_steps=len(self.space))
        self._env_spec = value

    _env_spec: EnvSpec | None = None

    @property
    def executor(self) -> Executor:
        """Where trials run; the default LocalExecutor is made on first use (only if evaluating)."""
        if self._executor is None:
            self._executor = LocalExecutor()
        return self._executor

    # Gymnasium API --------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._sequence = DecisionSequence(self.space)
        self._remapped = 0
        self._mask = None
        return self._observation(), self._decision_info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        sequence = self._sequence
        if sequence is None or sequence.done:
            raise AutoDLError(
                "the architecture is complete (or reset() was not called); call reset()"
            )
        index, invalid = sequence.choose(self._check_action(action), mask=self.action_masks())
        self._remapped += invalid
        self._mask = None

        info = self._decision_info()
        info["invalid_action"] = invalid
        info["chosen"] = index
        if not sequence.done:
            return self._observation(), 0.0, False, False, info

        spec = sequence.spec()
        reward = 0.0
        rejected = over_budget_result(self.space, spec)
        info["over_budget"] = rejected is not None
        if rejected is not None:
            # drawn as an evaluation would, so rollouts stay in step with an unconstrained run
            seed = int(self.np_random.integers(2**31 - 1)) if self.evaluate else None
            reward = float(self.failure_reward)
            info.update(result_info(spec, rejected, seed, self.report_test))
            if self.report_test:
                info["result"] = rejected
        elif self.evaluate:
            seed = int(self.np_random.integers(2**31 - 1))
            job = make_job(spec, self.task, self.fidelity, seed)
            result = lookup_now(self.executor, job, spec, self.task)
            reward = reward_of(result, self.size_penalty, self.failure_reward, self.floor)
            info.update(result_info(spec, result, seed, self.report_test))
            if self.report_test:
                info["result"] = result
        else:
            info["deferred"] = True
        info["spec"] = spec
        return self._observation(), reward, True, False, info

    def action_masks(self) -> np.ndarray:
        """Valid actions for the decision to make now (bool, ``max_options`` long); all False
        once the spec is complete or before ``reset``."""
        sequence = self._sequence
        if sequence is None or sequence.done:
            return np.zeros(self.space.max_options, dtype=bool)
        if self._mask is None:  # the budget's verdict on the decision to make now
            self._mask = budget_mask(self.space, sequence.values, sequence.current)
        return self._mask.copy()

    def render(self) -> str | None:
        """The decisions made so far as one line (``render_mode="ansi"``); None otherwise."""
        if self.render_mode != "ansi" or self._sequence is None:
            return None
        sequence = self._sequence
        made = ", ".join(f"{k}={v}" for k, v in sequence.values.items()) or "nothing chosen"
        nxt = "complete" if sequence.done else f"next: {sequence.current.choice.name}"
        return f"{made} ({nxt})"

    def close(self) -> None:
        if self._owns_executor and self._executor is not None:
            self._executor.close()
        super().close()

    # Helpers ----------------------------------------------------------------------------------
    def _check_action(self, action: Any) -> int:
        a = np.asarray(action)
        k = self.space.max_options
        if a.shape not in ((), (1,)) or a.dtype.kind not in "iu":
            raise AutoDLError(
                f"action must be one integer option index in [0, {k - 1}], got {action!r}"
            )
        a = int(a.reshape(()))
        if not 0 <= a < k:
            raise AutoDLError(
                f"action {a} is outside the action space; give an index in [0, {k - 1}]"
            )
        return a

    def _observation(self) -> np.ndarray:
        sequence = self._sequence
        return np.append(sequence.chosen, sequence.position).astype(np.float32)

    def _decision_info(self) -> dict[str, Any]:
        sequence = self._sequence
        return {
            "action_mask": self.action_masks().astype(np.int8),
            "decision": "" if sequence.done else sequence.current.choice.name,
            "position": sequence.position,
            "remapped": self._remapped,
        }
