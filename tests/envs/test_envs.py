"""The Gymnasium environments: registration, the API checker, determinism, masks, batches."""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autodlgym  # noqa: F401 - registers the ids
from autodlgym.envs.autodl_env import INFO_FIELDS, NO_SCORE, AutoDLEnv, reward_of
from autodlgym.envs.registration import env_id, env_names
from autodlgym.envs.sequential_env import SequentialAutoDLEnv
from autodlgym.envs.vector_env import AutoDLVectorEnv
from autodlgym.errors import AutoDLError
from autodlgym.execution.local import LocalExecutor
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.tasks import get_task, list_tasks
from autodlgym.trial import Fidelity

TINY = Fidelity(epochs=1, max_train_samples=64)
# Small, but still conditional (kernel only for conv, momentum only for sgd) and with decisions
# of different option counts, so masks and inactive entries are exercised.
TINY_SPACE = SearchSpace.from_config(
    {
        "base": "default",
        "max_stages": 2,
        "globals": {
            "n_stages": {"options": [1, 2]},
            "optimizer": {"options": ["adam", "sgd"]},
            "momentum": {"when": {"optimizer": ["sgd"]}},
            "batch_size": {"options": [32, 64]},
            "trainable": {"options": ["all", "head"]},
        },
        "stage": {
            "block": {"options": ["mlp", "conv"]},
            "depth": {"options": [1, 2]},
            "width": {"options": [8, 16]},
            "kernel": {"options": [3, 5], "when": {"block": ["conv"]}},
        },
        "remove": ["dilation", "growth", "heads", "cell", "bidirectional", "chrono_init"],
    }
)
ENV_IDS = sorted(i for i in gymnasium.registry if i.startswith("autodlgym/"))
TIMING_FIELDS = {"train_seconds", "eval_seconds", "peak_rss_mb", "peak_gpu_mb", "worker", "curve"}


class CountingExecutor(LocalExecutor):
    """A LocalExecutor that records how many jobs were waiting each time it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.submitted = 0
        self.in_flight_at_wait: list[int] = []

    def submit(self, job):
        self.submitted += 1
        super().submit(job)

    def wait(self, timeout=None):
        self.in_flight_at_wait.append(self.in_flight)
        return super().wait(timeout)


def deterministic(result) -> dict:
    return {k: v for k, v in result.to_dict().items() if k not in TIMING_FIELDS}


def _listed(mask):
    """An action mask (an array, or a tuple of them for MultiDiscrete) as nested lists."""
    return [m.tolist() for m in mask] if isinstance(mask, tuple) else mask.tolist()


def rollout(env, seed: int, actions) -> list:
    """(obs, reward, terminated, info) of every step after reset(seed); results made comparable."""
    obs, info = env.reset(seed=seed)
    out = [(obs.tolist(), _listed(info["action_mask"]) if "action_mask" in info else info)]
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        info = dict(info)
        if "result" in info:
            info["result"] = deterministic(info["result"])
        if "action_mask" in info:
            info["action_mask"] = _listed(info["action_mask"])
        out.append((obs.tolist(), reward, terminated, truncated, info))
        if terminated:
            break
    return out


# Registration ------------------------------------------------------------------------------


def test_registered_tasks_match_the_built_in_tasks():
    built_in = {
        name for name, _ in list_tasks() if not name.endswith((":PATH", ":RUN_DIR", ":DIR"))
    }
    assert set(env_names()) == built_in
    for task in built_in:
        for sequential, search in ((False, False), (True, False), (False, True)):
            spec = gymnasium.spec(env_id(task, sequential, search))
            assert isinstance(spec.entry_point, str)
            assert isinstance(spec.vector_entry_point, str)
            assert spec.kwargs == {"task": task}
    assert "autodlgym/MNIST1D-v0" in ENV_IDS and "autodlgym/MNIST1D-Seq-v0" in ENV_IDS
    assert "autodlgym/MNIST1D-Search-v0" in ENV_IDS
    assert len(ENV_IDS) == 3 * len(built_in)


def test_the_ids_of_the_first_release_still_exist():
    for name in ("MNIST1D", "MNIST1DShuffled", "Digits", "Adding"):
        for kind in ("", "-Seq"):
            assert f"autodlgym/{name}{kind}-v0" in gymnasium.registry


def test_a_task_registered_later_gets_its_ids():
    from autodlgym.tasks.base import TASKS, get_task, register_task

    @register_task("late_digits", description="digits under another name")
    def late_digits():
        return get_task("digits")

    try:
        assert env_id("late_digits") == "autodlgym/LateDigits-v0"
        assert gymnasium.spec("autodlgym/LateDigits-Seq-v0").kwargs == {"task": "late_digits"}
    finally:
        TASKS.remove("late_digits")
        gymnasium.registry.pop("autodlgym/LateDigits-v0", None)
        gymnasium.registry.pop("autodlgym/LateDigits-Seq-v0", None)


@pytest.mark.parametrize("env_id_", ENV_IDS)
def test_every_registered_env_passes_the_checker(env_id_):
    tabular = {name for name, _ in list_tasks(tabular=True)}
    # a tabular task answers its own space at its own fidelities
    kwargs = (
        {}
        if gymnasium.spec(env_id_).kwargs["task"] in tabular
        else {"space": TINY_SPACE, "fidelity": TINY}
    )
    if "-Seq-" not in env_id_:
        kwargs["budget"] = 3
    env = gymnasium.make(env_id_, **kwargs)
    env.action_space.seed(0)  # the checker's first step samples from it: keep trials fixed
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.slow  # check_env trains default-space candidates 17 times
@pytest.mark.parametrize("env_id_", ["autodlgym/Digits-v0", "autodlgym/MNIST1D-Seq-v0"])
def test_default_space_passes_the_checker(env_id_):
    kwargs = {"fidelity": TINY} if "-Seq-" in env_id_ else {"fidelity": TINY, "budget": 2}
    env = gymnasium.make(env_id_, **kwargs)
    # the default space of the task's modality (digits: images, mnist1d: sequences)
    task = get_task("digits" if "Digits" in env_id_ else "mnist1d")
    assert env.unwrapped.space == SearchSpace.default(task.io.modality)
    env.action_space.seed(0)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


# AutoDLEnv ---------------------------------------------------------------------------------


def test_whole_architecture_rollout_is_deterministic_for_a_seed():
    env = AutoDLEnv("mnist1d", space=TINY_SPACE, fidelity=TINY, budget=3)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(3)]
    first, second = rollout(env, 7, actions), rollout(env, 7, actions)
    assert first == second
    assert [step[2] for step in first[1:]] == [False, False, True]
    other = rollout(env, 8, actions)
    assert [s[4]["trial_seed"] for s in other[1:]] != [s[4]["trial_seed"] for s in first[1:]]


def test_whole_architecture_step_rewards_observes_and_reports():
    env = AutoDLEnv("digits", space=TINY_SPACE, fidelity=TINY, budget=2, size_penalty=0.01)
    obs0, _ = env.reset(seed=0)
    assert obs0[-3:].tolist() == [NO_SCORE, NO_SCORE, 1.0]
    action = np.zeros(len(TINY_SPACE), dtype=np.int64)
    obs, reward, terminated, truncated, info = env.step(action)
    spec = TINY_SPACE.decode(action)
    assert info["spec"] == spec and info["arch_id"] == spec.arch_id
    assert set(INFO_FIELDS) <= set(info)
    assert info["status"] == "ok", info["message"]
    assert reward == pytest.approx(info["val_score"] - 0.01 * math.log10(info["params"]))
    assert obs[-3] == pytest.approx(info["val_score"]) and obs[-2] == obs[-3]
    assert obs[-1] == 0.5 and not terminated and not truncated
    assert info["best_score"] == info["val_score"] and info["evaluations"] == 1
    assert obs in env.observation_space
    *_, terminated, _, _ = env.step(action)
    assert terminated and len(env.history) == 2
    with pytest.raises(AutoDLError, match="reset"):
        env.step(action)


def test_a_failed_trial_gets_the_failure_reward():
    too_short = Fidelity(epochs=1, max_train_samples=64, time_limit=1e-9)
    env = AutoDLEnv("digits", space=TINY_SPACE, fidelity=too_short, budget=1, failure_reward=-0.5)
    env.reset(seed=0)
    obs, reward, terminated, _, info = env.step(np.zeros(len(TINY_SPACE), dtype=np.int64))
    assert info["status"] == "timeout" and "val_score" not in info
    assert reward == -0.5 and terminated
    assert obs[-3] == NO_SCORE and obs[-2] == NO_SCORE and "best_score" not in info


@pytest.mark.parametrize(
    "action",
    [
        lambda nvec: nvec,  # every index one past its last option
        lambda nvec: -np.ones_like(nvec),
        lambda nvec: np.zeros(len(nvec) + 1, dtype=np.int64),
        lambda nvec: np.zeros(len(nvec)) + 0.5,
        lambda nvec: np.where(np.arange(len(nvec)) == len(nvec) - 1, nvec, 0),
    ],
)
def test_an_action_outside_the_bounds_is_a_one_line_error(action):
    env = AutoDLEnv("mnist1d", fidelity=TINY, budget=1)
    env.reset(seed=0)
    with pytest.raises(AutoDLError) as err:
        env.step(action(env.space.nvec))
    assert "\n" not in str(err.value)
    assert env.history == []  # nothing was trained


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_action_in_bounds_decodes_to_a_legal_spec(data):
    env = AutoDLEnv("mnist1d", fidelity=TINY, budget=1)
    env.reset(seed=0)
    action = [data.draw(st.integers(0, int(n) - 1)) for n in env.space.nvec]
    assert action in env.action_space
    job, spec = env.prepare(np.array(action))
    assert env.space.contains(spec) and ArchSpec.from_json(job.spec_json) == spec


def test_bad_constructor_arguments_are_errors():
    with pytest.raises(AutoDLError, match="budget"):
        AutoDLEnv("mnist1d", budget=0)
    with pytest.raises(AutoDLError, match="unknown task"):
        AutoDLEnv("imagenet")
    with pytest.raises(AutoDLError, match="size_penalty"):
        AutoDLEnv("mnist1d", size_penalty=-1)
    with pytest.raises(AutoDLError, match="fidelity"):
        SequentialAutoDLEnv("mnist1d", fidelity={"epoch": 1})


# SequentialAutoDLEnv -----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, SearchSpace.default().max_options - 1), min_size=80, max_size=80))
def test_masks_and_invalid_action_mapping(actions):
    # no budget: the masks are the options each decision has (tests/envs/test_env_budget.py
    # checks the budget's masks)
    env = SequentialAutoDLEnv("mnist1d", evaluate=False, max_params=None, max_flops=None)
    space = env.space
    obs, info = env.reset(seed=0)
    assert (obs[:-1] == -1).all() and obs[-1] == space.names.index(info["decision"])
    for a in actions:
        name, mask = info["decision"], info["action_mask"]
        n_options = len(space[name].options)
        assert mask.tolist() == env.action_masks().tolist()
        assert mask.tolist() == [i < n_options for i in range(space.max_options)]
        position = int(obs[-1])
        obs, reward, terminated, _, info = env.step(a)
        assert info["invalid_action"] == (a >= n_options)
        assert info["chosen"] == (a if a < n_options else a % n_options)
        assert obs[position] == info["chosen"] and obs in env.observation_space
        if terminated:
            break
        assert reward == 0.0 and obs[-1] > position
    assert terminated, "an episode is shorter than the number of decisions"
    spec = info["spec"]
    assert isinstance(spec, ArchSpec) and space.contains(spec)
    for i, c in enumerate(space.choices):  # the observation is the spec's encoding
        assert obs[i] == (c.index(spec[c.name]) if c.name in spec else -1)
    assert obs[-1] == len(space) and not env.action_masks().any() and info["decision"] == ""


def test_deferred_last_step_trains_nothing():
    executor = CountingExecutor()
    env = SequentialAutoDLEnv("mnist1d", space=TINY_SPACE, executor=executor, evaluate=False)
    env.reset(seed=0)
    terminated, steps = False, 0
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(0)
        assert reward == 0.0 and not truncated
        steps += 1
    assert info["deferred"] is True and "result" not in info
    assert info["spec"] == TINY_SPACE.decode(np.zeros(len(TINY_SPACE), dtype=np.int64))
    assert steps == len(TINY_SPACE.decisions(info["spec"]))
    assert executor.submitted == 0


def test_evaluated_last_step_trains_and_is_deterministic():
    env = SequentialAutoDLEnv(
        "digits", space=TINY_SPACE, fidelity=TINY, size_penalty=0.02, report_test=True
    )
    actions = [1, 0, 1, 1, 0, 3, 2] * 10  # 3 and 2 are masked for two-option decisions
    first, second = rollout(env, 3, actions), rollout(env, 3, actions)
    assert first == second
    last = first[-1]
    assert last[2] is True and all(step[1] == 0.0 for step in first[1:-1])
    info = last[4]
    assert info["result"]["status"] == "ok", info["result"]["message"]
    assert isinstance(info["spec"], ArchSpec) and TINY_SPACE.contains(info["spec"])
    assert info["arch_id"] == info["spec"].arch_id and "deferred" not in info
    expected = info["result"]["val_score"] - 0.02 * math.log10(info["result"]["params"])
    assert last[1] == pytest.approx(expected)


def test_sequential_action_outside_the_space_is_an_error():
    env = SequentialAutoDLEnv("mnist1d", evaluate=False)
    env.reset(seed=0)
    for bad in (env.space.max_options, -1, 1.5):
        with pytest.raises(AutoDLError):
            env.step(bad)


# Vector env --------------------------------------------------------------------------------


def test_vector_env_evaluates_a_batch_like_single_envs():
    executor = CountingExecutor()
    venv = AutoDLVectorEnv(
        3, task="digits", space=TINY_SPACE, fidelity=TINY, budget=2, executor=executor
    )
    assert venv.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.NEXT_STEP
    venv.action_space.seed(1)
    actions = [venv.action_space.sample() for _ in range(3)]
    obs, _ = venv.reset(seed=10)
    assert obs.shape == (3, len(TINY_SPACE) + 3) and obs in venv.observation_space
    obs1, rewards1, term1, trunc1, infos1 = venv.step(actions[0])
    # the whole batch was submitted before the executor was first asked to wait
    assert executor.in_flight_at_wait[0] == 3 and executor.submitted == 3
    obs2, rewards2, term2, _, infos2 = venv.step(actions[1])
    assert not term1.any() and term2.all() and not trunc1.any()
    assert list(infos2["status"]) == ["ok"] * 3 and infos2["_status"].all()
    # next-step autoreset: the copies reset, their actions are ignored, nothing is trained
    obs3, rewards3, term3, _, _ = venv.step(actions[2])
    assert executor.submitted == 6 and (rewards3 == 0).all() and not term3.any()
    assert (obs3[:, -1] == 1.0).all()

    for i in range(3):  # copy i behaves as a single env reset with seed 10 + i
        env = AutoDLEnv("digits", space=TINY_SPACE, fidelity=TINY, budget=2)
        env.reset(seed=10 + i)
        o1, r1, *_ = env.step(actions[0][i])
        o2, r2, *_ = env.step(actions[1][i])
        assert (rewards1[i], rewards2[i]) == (r1, r2)
        np.testing.assert_array_equal(obs2[i], o2)
    venv.close()


def test_vector_env_rejects_a_bad_batch_before_training():
    executor = CountingExecutor()
    venv = AutoDLVectorEnv(2, task="mnist1d", space=TINY_SPACE, fidelity=TINY, executor=executor)
    venv.reset(seed=0)
    bad = np.zeros((2, len(TINY_SPACE)), dtype=np.int64)
    bad[1, 0] = 99
    with pytest.raises(AutoDLError):
        venv.step(bad)
    with pytest.raises(AutoDLError):
        venv.step(np.zeros((3, len(TINY_SPACE)), dtype=np.int64))
    assert executor.submitted == 0


def test_make_vec_uses_the_vector_entry_point():
    venv = gymnasium.make_vec(
        "autodlgym/MNIST1D-v0",
        num_envs=2,
        vectorization_mode="vector_entry_point",
        space=TINY_SPACE,
        fidelity=TINY,
        budget=1,
    )
    assert isinstance(venv.unwrapped, AutoDLVectorEnv) and venv.num_envs == 2
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (2, len(TINY_SPACE) + 3)
    venv.close()


def test_reward_of_failures_and_penalties():
    from autodlgym.trial import TrialResult

    ok = TrialResult(status="ok", val_score=0.9, params=1000)
    assert reward_of(ok, 0.1, 0.0) == pytest.approx(0.9 - 0.3)
    assert reward_of(TrialResult.failure("oom", "out of memory"), 0.1, -1.0) == -1.0


def test_batched_infos_keep_none_and_mixed_values():
    from autodlgym.envs.vector_env import batch_infos

    infos = batch_infos([{"val_score": 0.5, "status": "ok"}, None, {"val_score": None}])
    assert infos["val_score"].dtype == object and list(infos["val_score"]) == [0.5, None, None]
    assert infos["_val_score"].tolist() == [True, False, True]
    assert infos["_status"].tolist() == [True, False, False]
    same = batch_infos([{"params": 3}, {"params": 4}])
    assert same["params"].dtype == np.int64 and same["params"].tolist() == [3, 4]


@pytest.mark.slow
@pytest.mark.ray
def test_vector_env_on_ray_workers_matches_local_training(ray_cluster):
    from autodlgym.execution.ray_executor import RayExecutor

    def run(executor):
        venv = AutoDLVectorEnv(
            2, task="digits", space=TINY_SPACE, fidelity=TINY, budget=1, executor=executor
        )
        venv.action_space.seed(5)
        venv.reset(seed=0)
        _, rewards, terminated, _, infos = venv.step(venv.action_space.sample())
        venv.close()
        return rewards, terminated, infos

    local = run(LocalExecutor())
    with RayExecutor(workers=2) as executor:
        on_ray = run(executor)
    assert list(on_ray[2]["status"]) == ["ok", "ok"]
    np.testing.assert_array_equal(local[0], on_ray[0])
    assert on_ray[1].all() and list(local[2]["arch_id"]) == list(on_ray[2]["arch_id"])
