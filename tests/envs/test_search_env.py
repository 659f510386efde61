"""The search-episode env: one episode is one search; rewards pay for the best found."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import autodlgym  # noqa: F401 - registers the ids
from autodlgym.envs.search_env import SearchEpisodeEnv
from autodlgym.errors import AutoDLError
from autodlgym.searchspace.history import NO_SCORE, SearchHistory
from autodlgym.tasks import get_task

CORA = "nasbench-graph:cora"


def _episode(env, seed=0, actions=None):
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    rewards, infos, observations = [], [], [obs]
    for i in range(env.budget):
        a = env.action_space.sample() if actions is None else actions[i]
        obs, r, terminated, truncated, info = env.step(a)
        rewards.append(r), infos.append(info), observations.append(obs)
        assert not truncated and terminated == (i == env.budget - 1)
    return np.array(rewards), infos, observations


def _table():
    outcomes = get_task(CORA).outcomes()
    return outcomes, np.sort(outcomes.val)


def test_improvement_return_is_the_final_best_and_repeats_earn_nothing():
    env = SearchEpisodeEnv(CORA, budget=30)
    rewards, infos, _ = _episode(env)
    scores = [i["val_score"] for i in infos if "val_score" in i]
    assert rewards.sum() == pytest.approx(max(scores)) and (rewards >= 0).all()
    action = np.zeros(len(env.space), dtype=np.int64)
    again, _, _ = _episode(env, actions=[action] * env.budget)
    assert again[0] > 0 and (again[1:] == 0).all()


def test_rank_return_is_the_final_best_quantile_in_the_table():
    outcomes, table = _table()
    env = SearchEpisodeEnv(CORA, budget=40, reward="rank")
    rewards, infos, _ = _episode(env, seed=3)
    best = max(i["val_score"] for i in infos if "val_score" in i)
    assert rewards.sum() == pytest.approx((table < best).mean())
    assert infos[-1]["regret"] == pytest.approx(outcomes.best_val - best)


def test_regret_reward_is_the_normalised_regret_after_each_step():
    outcomes, table = _table()
    mean = (outcomes.val * outcomes.mass).sum() / outcomes.mass.sum()
    env = SearchEpisodeEnv(CORA, budget=20, reward="regret")
    rewards, infos, _ = _episode(env, seed=1)
    best, expected = table[0], []
    for info in infos:
        best = max(best, info.get("val_score", -np.inf))
        expected.append(-(outcomes.best_val - best) / (outcomes.best_val - mean))
    np.testing.assert_allclose(rewards, expected)


def test_observation_is_the_search_history_with_top_k():
    env = SearchEpisodeEnv(CORA, budget=10, top_k=2)
    _, infos, observations = _episode(env, seed=2)
    assert observations[0][len(env.space)] == NO_SCORE and observations[0] in env.observation_space
    history = SearchHistory(env.space, 10, top_k=2)
    for info, obs in zip(infos, observations[1:]):
        history.add(info["spec"], info.get("val_score"))
        np.testing.assert_array_equal(obs, history.vector())
        assert obs in env.observation_space
    n = len(env.space)
    scores = sorted((i["val_score"] for i in infos if "val_score" in i), reverse=True)
    last = observations[-1]
    assert last[n + 2] == 0.0  # no evaluations left
    assert last[n + N_OFFSET + n] == pytest.approx(scores[0], abs=1e-6)
    assert last[n + N_OFFSET + 2 * n + 1] == pytest.approx(scores[1], abs=1e-6)


N_OFFSET = 6  # entries between the last encoding and the top-k block


def test_rank_and_regret_need_a_table_and_bad_options_are_errors():
    with pytest.raises(AutoDLError, match="improvement"):
        SearchEpisodeEnv("digits", reward="rank")
    with pytest.raises(AutoDLError, match="reward"):
        SearchEpisodeEnv(CORA, reward="area")
    with pytest.raises(AutoDLError, match="top_k"):
        SearchEpisodeEnv(CORA, top_k=-1)
    trained = SearchEpisodeEnv("digits", budget=2, top_k=1)  # improvement works on any task
    assert trained.observation_space.shape == (2 * len(trained.space) + 7,)


def test_search_ids_and_their_vector_env():
    env = gymnasium.make("autodlgym/NASBenchGraphProteins-Search-v0", budget=5, reward="rank")
    assert env.spec.max_episode_steps == 5 and isinstance(env.unwrapped, SearchEpisodeEnv)
    venv = gymnasium.make_vec("autodlgym/NASBenchGraphCora-Search-v0", num_envs=3, budget=2)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (3, len(venv.envs[0].unwrapped.space) + 6)
    venv.close()
