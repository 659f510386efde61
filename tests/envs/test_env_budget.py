"""Both Gym environments (and the vector env) flag over-budget candidates and never train them."""

from __future__ import annotations

import numpy as np

from autodlgym.envs.autodl_env import AutoDLEnv
from autodlgym.envs.sequential_env import SequentialAutoDLEnv
from autodlgym.envs.vector_env import AutoDLVectorEnv
from autodlgym.execution.local import Executor
from autodlgym.trial import OVER_BUDGET

TINY = {"task": "digits", "max_params": 3_000, "failure_reward": -1.0}


class _NoTraining(Executor):
    """An executor that fails the test if anything is submitted to it."""

    def submit(self, job):
        raise AssertionError(f"an over-budget candidate was sent to training: {job.spec_json}")

    def wait(self, timeout=None):
        return []

    @property
    def in_flight(self) -> int:
        return 0


def _widest_action(space) -> np.ndarray:
    """The encoding of the biggest choices: last option everywhere (widths 512, depth 4...)."""
    return space.nvec - 1


def test_whole_architecture_env_flags_an_over_budget_step():
    env = AutoDLEnv(executor=_NoTraining(), budget=2, **TINY)
    env.reset(seed=0)
    obs, reward, terminated, _, info = env.step(_widest_action(env.space))
    assert info["over_budget"] is True and info["status"] == OVER_BUDGET
    assert "max_params" in info["message"] and reward == -1.0
    assert info["evaluations"] == 1 and not terminated
    assert env.space.rejected == 1
    assert env.observation_space.contains(obs)


def test_vector_env_trains_only_the_copies_inside_the_budget():
    env = AutoDLVectorEnv(2, executor=_NoTraining(), budget=2, **TINY)
    env.reset(seed=0)
    actions = np.stack([_widest_action(env.space)] * 2)
    _, rewards, _, _, info = env.step(actions)
    assert list(info["over_budget"]) == [True, True] and list(rewards) == [-1.0, -1.0]
    assert env.space.rejected == 2
    env.close()


def test_sequential_env_flags_the_last_step_and_defers_nothing():
    env = SequentialAutoDLEnv(executor=_NoTraining(), **TINY)
    env.reset(seed=0)
    done, info, reward = False, {}, 0.0
    while not done:
        mask = env.action_masks()
        _, reward, done, _, info = env.step(int(np.flatnonzero(mask)[-1]))  # the last option
    assert info["over_budget"] is True and info["status"] == OVER_BUDGET
    assert reward == -1.0 and "deferred" not in info
    assert info["spec"]["stage1.width"] == 512


def test_sequential_env_inside_the_budget_is_not_flagged():
    env = SequentialAutoDLEnv(executor=_NoTraining(), evaluate=False, **TINY)
    env.reset(seed=0)
    done, info = False, {}
    while not done:
        _, _, done, _, info = env.step(0)  # the first option everywhere: one narrow stage
    assert info["over_budget"] is False and info["deferred"] is True
