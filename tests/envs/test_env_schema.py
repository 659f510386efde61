"""The defects an RL user meets first: vector entry points with missing values, a failure reward
below every score, one info schema without test scores, ansi rendering, episode lengths."""

from __future__ import annotations

import logging

import gymnasium
import numpy as np
import pytest

import autodlgym  # noqa: F401 - registers the ids
from autodlgym.envs.autodl_env import (
    INFO_FIELDS,
    NO_SCORE,
    AutoDLEnv,
    check_failure_reward,
    observed_score,
    reward_of,
)
from autodlgym.envs.sequential_env import SequentialAutoDLEnv
from autodlgym.errors import AutoDLError
from autodlgym.tasks import get_task
from autodlgym.trial import TrialResult

CORA = "nasbench-graph:cora"
#: an all-skip architecture: not in NAS-Bench-Graph's table, so its trial fails (params None)
ALL_SKIP = {"links": "0-0-0-0", "op1": "skip", "op2": "skip", "op3": "skip", "op4": "skip"}
KINDS = ["", "-Seq", "-Search"]


def _all_skip_action(space) -> np.ndarray:
    return space.encode(space.validate(ALL_SKIP))


@pytest.mark.parametrize("mode", ["sync", "async", "vector_entry_point"])
@pytest.mark.parametrize("kind", KINDS)
def test_make_vec_batches_a_failed_trial_beside_a_scored_one(kind, mode):
    venv = gymnasium.make_vec(
        f"autodlgym/NASBenchGraphCora{kind}-v0", num_envs=2, vectorization_mode=mode
    )
    space = get_task(CORA).default_space()
    venv.reset(seed=0)
    if kind == "-Seq":  # copy 0 builds all-skip, copy 1 the first option everywhere
        for step in range(len(space)):
            skip = space.choices[step].options.index(ALL_SKIP[space.choices[step].name])
            _, rewards, terminated, _, info = venv.step(np.array([skip, 0]))
    else:
        actions = np.stack([_all_skip_action(space), np.zeros(len(space), dtype=np.int64)])
        _, rewards, terminated, _, info = venv.step(actions)
    venv.close()
    assert terminated.all() if kind == "-Seq" else not terminated.any()
    assert list(info["status"]) == ["error", "ok"]
    assert info["_val_score"].tolist() == [False, True] and np.isfinite(info["val_score"][1])
    assert info["_params"].tolist() == [False, True]
    if kind != "-Search":  # the search env pays improvements only: a failure raises nothing
        assert rewards[0] == -1.0 < rewards[1]


def test_every_id_has_a_vector_entry_point_that_keeps_the_kwargs():
    venv = gymnasium.make_vec("autodlgym/Digits-Seq-v0", num_envs=2, evaluate=False)
    assert venv.num_envs == 2 and venv.single_action_space == venv.envs[0].action_space
    assert venv.envs[0].unwrapped.executor is venv.envs[1].unwrapped.executor  # one executor
    venv.close()


def test_failure_reward_is_below_every_real_score_per_task_kind():
    assert check_failure_reward("auto", get_task("digits")) == -1.0  # accuracy in [0, 1]
    assert check_failure_reward("auto", get_task("adding")) == -2.0  # R^2 floored at -1
    assert check_failure_reward(0.5, get_task("digits")) == 0.5
    with pytest.raises(AutoDLError, match="failure_reward"):
        check_failure_reward("never", get_task("digits"))
    bad_regression = TrialResult(status="ok", val_score=-2.231, params=10)
    failed = TrialResult.failure("error", "boom")
    assert reward_of(bad_regression, 0.0, -2.0, floor=-1.0) == -1.0 > reward_of(failed, 0, -2.0)
    # a very negative R^2 reads -1 in the observation, apart from "no score"
    assert observed_score(bad_regression) == -1.0 and observed_score(failed) == NO_SCORE < -1


def _finished_info(env) -> dict:
    """The info of the first step that evaluated an architecture, actions drawn under the mask."""
    _, info = env.reset(seed=0)
    env.action_space.seed(0)
    while True:
        _, _, done, _, info = env.step(env.action_space.sample(mask=info["action_mask"]))
        if done or "status" in info:
            return info


def test_one_info_schema_across_envs_and_validation_scores_only():
    shared = {"spec", "arch_id", "trial_seed", "over_budget", "action_mask", "invalid_action"}
    trial_keys = []
    for kind in KINDS:
        env = gymnasium.make(f"autodlgym/NASBenchGraphCora{kind}-v0").unwrapped
        info = _finished_info(env)
        assert shared <= set(info) and "test_score" not in info and "result" not in info
        assert env.space.contains(info["spec"]) and info["arch_id"] == info["spec"].arch_id
        assert isinstance(info["val_score"], float) and isinstance(info["params"], int)
        assert isinstance(info["invalid_action"], bool) and isinstance(info["message"], str)
        trial_keys.append(set(info) & set(INFO_FIELDS))
        env.close()
        shown = gymnasium.make(f"autodlgym/NASBenchGraphCora{kind}-v0", report_test=True)
        assert 0 < _finished_info(shown.unwrapped)["test_score"] <= 1
    assert trial_keys[0] == trial_keys[1] == trial_keys[2]
    assert {"status", "val_score", "params", "epochs_run", "message"} <= trial_keys[0]


@pytest.mark.parametrize("kind", KINDS)
def test_ansi_rendering_and_known_episode_lengths(kind):
    env = gymnasium.make(f"autodlgym/NASBenchGraphCora{kind}-v0", render_mode="ansi")
    space = env.unwrapped.space
    expected = len(space) if kind == "-Seq" else env.unwrapped.budget
    assert env.spec.max_episode_steps == expected
    env.reset(seed=0)
    env.step(0 if kind == "-Seq" else np.zeros(len(space), dtype=np.int64))
    text = env.render()
    assert isinstance(text, str) and ("links=" in text)
    with pytest.raises(AutoDLError, match="render_mode"):
        gymnasium.make(f"autodlgym/NASBenchGraphCora{kind}-v0", render_mode="human")


def test_remapped_decisions_are_counted_in_info():
    env = SequentialAutoDLEnv("nasbench-graph:proteins")  # 9 link patterns, 5 operations
    env.reset(seed=0)
    remapped = []
    for _ in range(len(env.space)):
        _, _, done, _, info = env.step(8)  # valid for links, remapped for every operation
        remapped.append((info["invalid_action"], info["remapped"]))
    assert remapped == [(False, 0), (True, 1), (True, 2), (True, 3), (True, 4)] and done


def test_a_tabular_step_builds_no_log_lines_when_nobody_listens(monkeypatch):
    from autodlgym.searchspace.spec import ArchSpec

    calls = []
    original = ArchSpec.summary
    monkeypatch.setattr(ArchSpec, "summary", lambda self: calls.append(1) or original(self))
    env = AutoDLEnv(CORA, budget=3)
    env.reset(seed=0)
    logging.getLogger("autodlgym.envs").setLevel(logging.WARNING)
    env.step(np.zeros(len(env.space), dtype=np.int64))
    assert calls == []
    # a lookup is answered in this process: the same result as the executor's path
    seq = env.history[-1][1]
    other = AutoDLEnv(CORA, budget=3, executor=_Counting())
    other.reset(seed=0)
    other.step(np.zeros(len(env.space), dtype=np.int64))
    assert other.executor.submitted == 1
    assert other.history[-1][1].val_score == seq.val_score


class _Counting:
    """An executor (not a LocalExecutor) that runs jobs in this process and counts them."""

    def __init__(self):
        from autodlgym.execution.local import LocalExecutor

        self._inner, self.submitted = LocalExecutor(), 0

    def submit(self, job):
        self.submitted += 1
        self._inner.submit(job)

    def wait(self, timeout=None):
        return self._inner.wait(timeout)

    @property
    def in_flight(self):
        return self._inner.in_flight

    def close(self):
        self._inner.close()
