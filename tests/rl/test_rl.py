"""Task suites, the task-sampling env, the learned searcher and the evaluation protocol."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import autodlgym.rl as rl
from autodlgym.envs.search_env import TaskSamplingEnv
from autodlgym.errors import AutoDLError
from autodlgym.rl import suites
from autodlgym.tasks import get_task

pytest.importorskip("torch")


def test_nbgraph_loo_holds_out_each_table_once():
    suite = suites.get("nbgraph-loo")
    assert "nbgraph-loo" in suites.names() and "mnist1d" in suites.names()
    assert len(suite.folds) == 9 and len(suite.test_tasks) == 9
    for fold in suite.folds:
        assert len(fold.train) == 8 and len(fold.test) == 1
        assert not set(fold.train) & set(fold.test)
        assert set(fold.train) | set(fold.test) == set(suite.test_tasks)
    assert suites.get("mnist1d").folds[0].train == ("mnist1d-table",)
    with pytest.raises(AutoDLError, match="nbgraph-loo"):
        suites.get("nbgraph-lo")
    with pytest.raises(AutoDLError, match="folds"):
        suite.fold("imagenet")


def test_the_training_env_samples_a_task_per_episode_and_reports_remaps():
    env = TaskSamplingEnv(["nasbench-graph:cora", "nasbench-graph:proteins"], budget=3)
    tasks = set()
    for seed in range(8):
        _, info = env.reset(seed=seed)
        tasks.add(info["task"])
    assert tasks == {"nasbench-graph:cora", "nasbench-graph:proteins"}
    while env.reset(seed=seed)[1]["task"] != "nasbench-graph:proteins":
        seed += 1
    action = np.array([0, 8, 8, 1, 1])  # proteins has 5 operations: two entries remapped
    _, _, _, _, info = env.step(action)
    assert info["remapped"] == 2 and info["invalid_action"] is True
    assert info["spec"]["op1"] == env.current.space["op1"].options[8 % 5]
    env.action_space.seed(0)
    check_env(env, skip_render_check=True)
    fold = suites.Fold("x", ("nasbench-graph:proteins",), ("nasbench-graph:cora",))
    venv = suites.train_env(fold, num_envs=2, budget=2)
    obs, info = venv.reset(seed=0)
    assert obs.shape[0] == 2 and set(info["task"]) == {"nasbench-graph:proteins"}
    venv.close()


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory):
    from autodlgym.searchers.learned import save_policy

    policy = rl.train_searcher(
        ["nasbench-graph:citeseer", "nasbench-graph:proteins"],
        budget=6,
        batch=3,
        iterations=2,
        seed=0,
        log=lambda line: None,
    )
    return save_policy(policy, tmp_path_factory.mktemp("policy") / "policy.pt")


@pytest.mark.slow  # trains a policy (seconds) and runs a search through the runner
def test_a_trained_policy_runs_as_a_searcher_on_any_task(policy_file, tmp_path):
    from autodlgym.run import load_results
    from autodlgym.runner import RunConfig, run_search
    from autodlgym.searchers.base import get_searcher, make_searcher

    # a table it never saw, and the same proposals from the same seed
    space = get_task("nasbench-graph:cora").default_space()
    first = make_searcher(f"rl:{policy_file}", space, seed=3, budget=10).ask(4)
    again = make_searcher(f"rl:{policy_file}", space, seed=3, budget=10).ask(4)
    assert first == again and all(space.contains(s) for s in first)
    assert len(set(first)) == 4  # no repeats within a search
    summary = run_search(
        RunConfig(
            out=str(tmp_path / "run"),
            task="nasbench-graph:cora",
            searcher=f"rl:{policy_file}",
            trials=8,
            seed=0,
        )
    )
    df = load_results(tmp_path / "run")
    assert len(df) == 8 and df["arch_id"].nunique() == 8
    assert summary.best_val_score == df["val_score"].max()
    with pytest.raises(AutoDLError, match="no trained policy"):
        get_searcher(f"rl:{tmp_path / 'missing.pt'}")


@pytest.mark.slow  # searches through the runner, as autodlgym bench runs them
def test_evaluate_reports_the_bench_figures_for_an_agent(policy_file, tmp_path):
    suite = suites.get("nbgraph-loo")
    table = get_task("nasbench-graph:cora").outcomes()
    agents = {"cora": f"rl:{policy_file}"}
    result = rl.evaluate(
        agents, suite, folds=["cora"], seeds=2, budget=5, out=tmp_path, log=lambda s: None
    )
    runs = result.runs
    assert set(runs["searcher"]) == {"random", "agent"} and len(runs) == 4
    assert np.allclose(runs["regret"], table.best_val - runs["best_val"])
    row = result.summary[result.summary["searcher"] == "agent"].iloc[0]
    assert row["runs"] == 2 and 0 <= row["p_vs_random"] <= 1

    class UniformAgent:  # a callable agent on the search-episode env
        def __init__(self):
            self.rng = np.random.default_rng(0)
            self.resets = 0

        def reset(self):
            self.resets += 1

        def __call__(self, obs, info):
            return np.array([self.rng.integers(len(m)) for m in info["action_mask"]])

    agent = UniformAgent()
    result = rl.evaluate(
        agent, suite, folds=["cora"], seeds=2, budget=4, out=tmp_path / "b", log=lambda s: None
    )
    assert agent.resets == 2 and len(result.runs) == 4
    mine = result.runs[result.runs["searcher"] == "agent"]
    assert (mine["evaluations"] == 4).all() and (mine["regret"] >= 0).all()
    with pytest.raises(AutoDLError, match="trains"):
        rl.evaluate(agent, "mnist1d", seeds=1, log=lambda s: None)


def test_a_missing_policy_is_a_one_line_cli_error(tmp_path, capsys):
    from autodlgym.cli import main

    out = tmp_path / "run"
    code = main(
        ["search", "--task", "nasbench-graph:cora", "--searcher", f"rl:{tmp_path / 'no.pt'}",
         "--trials", "2", "--out", str(out)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "no trained policy" in err and "Traceback" not in err
    assert not out.exists()


def test_incumbent_is_the_earliest_best_scored_candidate():
    from autodlgym.searchers.learned import incumbent
    from autodlgym.searchspace.history import SearchHistory

    space = get_task("nasbench-graph:cora").default_space()
    a, b, c, d = (space.sample(s) for s in range(4))
    history = SearchHistory(space, 5)
    assert incumbent(history) is None
    history.add(a, None)  # a failure is never the incumbent
    assert incumbent(history) is None
    for spec, score in ((b, 0.5), (c, 0.7), (d, 0.7)):
        history.add(spec, score)
    assert incumbent(history) == c


@pytest.mark.parametrize("bonus", [50.0, -50.0])
def test_the_keep_bonus_moves_proposals_towards_the_incumbent(bonus, tmp_path):
    import torch

    from autodlgym.searchers.learned import load_policy, make_policy, option_keys, save_policy

    space = get_task("nasbench-graph:cora").default_space()
    vocab = [k for keys in option_keys(space) for k in keys]
    policy = make_policy(vocab, space.names, keep=True, keep_init=bonus)
    best = space.sample(7)
    gen = torch.Generator().manual_seed(0)
    h = policy.initial(4)
    with torch.no_grad():
        values, *_ = policy.propose(h, space, policy.ids(space), gen, False, [best] * 4)
        kept = [sum(v[c.name] == best[c.name] for c in space.choices) for v in values]
        # no incumbent yet: no bonus, proposals spread over the options
        free, *_ = policy.propose(h, space, policy.ids(space), gen, False, [None] * 4)
    if bonus > 0:
        assert kept == [len(space.choices)] * 4  # every decision copies the incumbent
    else:
        assert kept == [0] * 4  # no decision copies it
    assert any(v != dict(best) for v in free)
    # the option travels with the saved policy; files saved before it load without it
    loaded = load_policy(save_policy(policy, tmp_path / "p.pt"))
    assert loaded.config["keep"] is True and loaded.config["keep_init"] == bonus
    blob = torch.load(tmp_path / "p.pt", weights_only=True)
    plain = make_policy(vocab, space.names)
    blob["config"] = {"hidden": 64, "emb": 32}
    blob["state"] = plain.state_dict()
    torch.save(blob, tmp_path / "old.pt")
    assert load_policy(tmp_path / "old.pt").config["keep"] is False


def test_an_update_can_average_several_training_tasks(monkeypatch):
    import autodlgym.rl.learn as learn

    tasks = ["nasbench-graph:citeseer", "nasbench-graph:proteins", "nasbench-graph:cora"]
    drawn: list[list[str]] = []
    real = learn._episodes

    def recording(policy, copies, *args):
        out = real(policy, copies, *args)
        drawn[-1].append(copies[0].task.name)
        return out

    monkeypatch.setattr(learn, "_episodes", recording)

    def train(k):  # one update: drawn[0] holds the tasks it learnt from
        drawn[:] = [[]]
        return rl.train_searcher(
            tasks, budget=3, batch=2, iterations=1, tasks_per_update=k, seed=0,
            log=lambda line: None,
        )  # fmt: skip

    policy = train(3)
    assert sorted(drawn[0]) == sorted(tasks)  # every task, once, in the one update
    assert policy.meta["iterations"] == 1
    train(1)
    assert len(drawn[0]) == 1
    with pytest.raises(AutoDLError, match="tasks_per_update"):
        rl.train_searcher(tasks, tasks_per_update=4, log=lambda line: None)
