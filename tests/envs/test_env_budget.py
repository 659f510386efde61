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


def test_sequential_masks_keep_every_choice_inside_the_budget():
    env = SequentialAutoDLEnv(executor=_NoTraining(), evaluate=False, **TINY)
    _, info = env.reset(seed=0)
    done, widest_masked = False, False
    while not done:
        mask = env.action_masks()
        name = info["decision"]
        n_options = len(env.space[name].options)
        widest_masked |= bool(name == "stage1.width" and not mask[n_options - 1])
        # the widest option that exists, whether or not the budget allows it
        _, _, done, _, info = env.step(n_options - 1)
    assert widest_masked, "the budget's mask should rule out width 512 under 3,000 parameters"
    assert info["remapped"] >= 1 and info["over_budget"] is False
    assert env.space.fits(info["spec"])


def test_whole_env_masks_rule_out_options_no_candidate_inside_the_budget_uses():
    env = AutoDLEnv(executor=_NoTraining(), budget=1, **TINY)
    _, info = env.reset(seed=0)
    masks = info["action_mask"]
    assert len(masks) == len(env.space) and all(m.dtype == np.int8 for m in masks)
    width = env.space.names.index("stage1.width")
    assert masks[width][-1] == 0 and masks[width][0] == 1
    assert env.action_masks().shape == (int(env.space.nvec.sum()),)
    # a draw under the mask stays in the space, and the cheapest widths stay allowed
    action = env.action_space.sample(mask=masks)
    assert action in env.action_space
    unbounded = AutoDLEnv(executor=_NoTraining(), budget=1, task="digits", max_params=None)
    assert all(m.all() for m in unbounded.reset(seed=0)[1]["action_mask"])


def test_sequential_env_inside_the_budget_is_not_flagged():
    env = SequentialAutoDLEnv(executor=_NoTraining(), evaluate=False, **TINY)
    env.reset(seed=0)
    done, info = False, {}
    while not done:
        _, _, done, _, info = env.step(0)  # the first option everywhere: one narrow stage
    assert info["over_budget"] is False and info["deferred"] is True
