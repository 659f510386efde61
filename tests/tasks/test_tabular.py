"""Tabular tasks: NAS-Bench-Graph, the MNIST-1D table and table:RUN_DIR, checked against the
tables themselves and through every path a real task takes."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import gymnasium
import numpy as np
import pytest

import autodlgym  # noqa: F401 - registers the env ids
from autodlgym.envs.autodl_env import AutoDLEnv
from autodlgym.envs.registration import env_id
from autodlgym.errors import AutoDLError
from autodlgym.execution.local import run_job
from autodlgym.results.store import load_results
from autodlgym.runner import RunConfig, run_search
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.tasks import base as tasks_base
from autodlgym.tasks import get_task, list_tasks, tabular
from autodlgym.tasks.tabular import (
    MNIST1D_TABLE,
    NASBENCH_GRAPH_DATASETS,
    Outcomes,
    evaluate_lookup,
    sample_mass,
)
from autodlgym.trial import ERROR, OK, PRUNED, Fidelity, TrialJob

nbg = pytest.importorskip("nas_bench_graph")


def _package_row(dataset: str, spec) -> dict | None:
    links = [int(i) for i in spec["links"].split("-")]
    ops = [spec[f"op{i}"] for i in range(1, 5)]
    return nbg.light_read(dataset).get(nbg.Arch(links, ops).valid_hash())


# NAS-Bench-Graph ---------------------------------------------------------------------------
def test_every_tabular_task_is_listed():
    names = {n for n, _ in list_tasks(tabular=True)}
    assert {f"nasbench-graph:{d}" for d in NASBENCH_GRAPH_DATASETS} <= names
    assert {"mnist1d-table", "table:RUN_DIR"} <= names
    assert not names & {n for n, _ in list_tasks(tabular=False)}


@pytest.mark.parametrize("dataset", NASBENCH_GRAPH_DATASETS)
def test_every_nasbench_graph_dataset_loads(dataset):
    task = get_task(f"nasbench-graph:{dataset}")
    assert task.kind == "lookup" and task.io is None
    with pytest.warns(DeprecationWarning, match="is_tabular"):
        assert task.is_tabular  # the 0.1 name, kept for a release
    table = task.lookup()
    raw = nbg.light_read(dataset)
    assert len(table) == len(raw) == (2021 if dataset == "proteins" else 26206)
    n_ops = 5 if dataset == "proteins" else 9
    assert [len(c.options) for c in table.space.choices] == [9] + [n_ops] * 4
    assert table.space.cardinality() == 9 * n_ops**4
    # a sample of specs: every metric equals the package's entry for the canonical hash
    rng = np.random.default_rng(0)
    for _ in range(50):
        spec = table.space.sample(rng)
        row = _package_row(dataset, spec)
        result = table.objective_function(spec)
        if row is None:
            assert result.status == ERROR
            continue
        assert result.status == OK
        assert result.val_score == pytest.approx(float(row["valid_perf"]), abs=0)
        assert result.test_score == pytest.approx(float(row["perf"]), abs=0)
        assert result.latency == pytest.approx(float(row["latency"]), abs=0)
        assert result.params == round(float(row["para"]) * 1e6)


@pytest.mark.parametrize("dataset", ["cora", "proteins"])
def test_canonical_mapping_agrees_with_the_package_hash_on_10000_vectors(dataset):
    table = get_task(f"nasbench-graph:{dataset}").lookup()
    action_space = table.space.gymnasium_space(seed=1)
    raw = nbg.light_read(dataset)
    keys = sorted(raw)
    for _ in range(10_000):
        spec = table.space.decode(action_space.sample())
        links = [int(i) for i in spec["links"].split("-")]
        ops = [spec[f"op{i}"] for i in range(1, 5)]
        expected = nbg.Arch(links, ops).valid_hash()
        row = table.row_of(spec)
        if expected not in raw:
            assert ops == ["skip"] * 4 and row is None
        else:
            assert keys[row] == expected


def test_every_spec_is_in_the_table_except_the_all_skip_ones():
    table = get_task("nasbench-graph:proteins").lookup()
    outcomes = table.outcomes()
    total = table.space.cardinality()
    # all 2,021 entries are reachable, and only the 9 all-skip specs (one per link) miss
    assert (outcomes.mass > 0).all()
    assert outcomes.mass.sum() == pytest.approx(1 - 9 / total)
    all_skip = ArchSpec(
        {"links": "0-1-2-3", "op1": "skip", "op2": "skip", "op3": "skip", "op4": "skip"}
    )
    result = table.objective_function(all_skip)
    assert result.status == ERROR and "all-skip" in result.message


def test_a_spec_outside_the_space_is_rejected_by_name():
    table = get_task("nasbench-graph:cora").lookup()
    with pytest.raises(AutoDLError, match="op1"):
        table.objective_function(
            {"links": "0-0-0-0", "op1": "conv", "op2": "gcn", "op3": "gcn", "op4": "gcn"}
        )


def test_mistyped_dataset_and_missing_package_say_how_to_fix(monkeypatch):
    with pytest.raises(AutoDLError, match="did you mean 'cora'"):
        get_task("nasbench-graph:coro")
    monkeypatch.setattr(tabular.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(tasks_base, "_TASK_CACHE", {})
    with pytest.raises(AutoDLError, match=r"pip install 'autodlgym\[nasbench\]'"):
        get_task("nasbench-graph:citeseer")


def test_max_params_and_max_latency_are_constraints():
    plain = get_task("nasbench-graph:cora")
    spec = plain.lookup().space.sample(3)
    result = evaluate_lookup(plain, spec, Fidelity())
    assert result.ok
    limited = get_task("nasbench-graph:cora", max_params=result.params - 1)
    over = evaluate_lookup(limited, spec, Fidelity())
    assert over.status == ERROR and "max_params" in over.message
    assert evaluate_lookup(
        get_task("nasbench-graph:cora", max_params=result.params), spec, Fidelity()
    ).ok
    slow = evaluate_lookup(
        get_task("nasbench-graph:cora", max_latency=result.latency / 2), spec, Fidelity()
    )
    assert slow.status == ERROR and "latency" in slow.message


# The MNIST-1D table ---------------------------------------------------------------------------
def test_mnist1d_table_answers_every_row_at_every_fidelity():
    table = get_task("mnist1d-table").lookup()
    data = json.loads(MNIST1D_TABLE.read_text())
    assert table.max_epochs == data["settings"]["epochs"] == 5
    assert len(data["rows"]) == table.space.cardinality() == 384
    for row in data["rows"]:
        spec = ArchSpec(row["spec"])
        for e in (2, 5):
            r = table.objective_function(spec, e)
            if row["status"] != OK:
                assert r.status == row["status"]
                continue
            assert r.val_score == row["val"][e - 1]
            assert [p["val_score"] for p in r.curve] == row["val"][:e]
            assert r.test_score == (row["test"] if e == 5 else None)
            assert r.params == row["params"] and r.epochs_run == e
            assert r.train_seconds == pytest.approx(row["seconds"] * e / 5)
    with pytest.raises(AutoDLError, match="1 to 5 epochs"):
        table.objective_function(ArchSpec(data["rows"][0]["spec"]), 6)


def test_a_callback_prunes_a_lookup_at_the_epoch_it_says():
    task = get_task("mnist1d-table")
    spec = task.lookup().space.sample(0)
    full = evaluate_lookup(task, spec, Fidelity(5))
    seen = []

    def stop_after_two(epoch: int, value: float) -> bool:
        seen.append((epoch, value))
        return epoch < 2

    pruned = evaluate_lookup(task, spec, Fidelity(5), callback=stop_after_two)
    assert pruned.status == PRUNED and pruned.epochs_run == 2
    assert seen == [(p["epoch"], p["val_score"]) for p in full.curve[:2]]
    assert pruned.val_score == full.curve[1]["val_score"] and pruned.test_score is None


def test_sampling_mass_sums_to_one_over_a_whole_table():
    table = get_task("mnist1d-table").lookup()
    total = sum(sample_mass(table.space, row["spec"]) for row in table.rows.values())
    assert total == pytest.approx(1.0)


# Outcomes: random-search anchors --------------------------------------------------------------
def test_random_anchors_match_a_direct_enumeration():
    o = Outcomes(
        val=np.array([0.5, 0.9, 0.7, 0.8]),
        test=np.array([0.4, 0.85, 0.6, 0.7]),
        mass=np.array([0.3, 0.1, 0.2, 0.2]),  # 0.2 of draws fail
    )
    # n = 2 by enumerating all pairs of draws (failure = index -1)
    outcomes = [(-1, 0.2)] + list(enumerate(o.mass))
    num = den = 0.0
    for (i, pi), (j, pj) in [(a, b) for a in outcomes for b in outcomes]:
        vals = [o.val[k] for k in (i, j) if k >= 0]
        if vals:
            num += pi * pj * max(vals)
            den += pi * pj
    assert o.random_expected_regret(2) == pytest.approx(0.9 - num / den)
    assert o.top_threshold(0.25) == 0.9 and o.top_threshold(0.5) == 0.8
    assert o.top_mass(0.5) == pytest.approx(0.3)
    assert o.random_top_probability(3, 0.5) == pytest.approx(1 - 0.7**3)
    assert o.test_at_best_val == 0.85


# Searches, the store and the executors ---------------------------------------------------------
def test_a_search_records_the_tables_values(tmp_path):
    summary = run_search(
        RunConfig(
            out=str(tmp_path / "run"), task="nasbench-graph:cora", searcher="random", trials=200
        )
    )
    df = load_results(tmp_path / "run")
    assert len(df) == 200 and summary.finished == 200
    for _, row in df.iterrows():
        expected = _package_row("cora", json.loads(row["spec"]))
        if expected is None:
            assert row["status"] == ERROR
            continue
        assert row["val_score"] == float(expected["valid_perf"])
        assert row["test_score"] == float(expected["perf"])
        assert row["latency"] == float(expected["latency"])
        assert row["params"] == round(float(expected["para"]) * 1e6)
    assert summary.best_val_score == df.loc[df.status == OK, "val_score"].max()
    assert {"links", "op1", "op4"} <= set(df.columns)


def test_a_search_resumes_on_a_tabular_task(tmp_path):
    cfg = RunConfig(
        out=str(tmp_path / "r"), task="mnist1d-table", searcher="evolution", trials=30, epochs=5
    )
    run_search(cfg)
    run_search(RunConfig(out=cfg.out, trials=60), resume=True)
    df = load_results(cfg.out)
    assert len(df) == 60 and df.trial_id.tolist() == list(range(60))
    table = get_task("mnist1d-table").lookup()
    for _, row in df[df.status == OK].iterrows():
        assert (
            row["val_score"]
            == table.objective_function(ArchSpec.from_json(row["spec"]), 5).val_score
        )


def test_nsga2_takes_latency_as_an_objective(tmp_path):
    run_search(
        RunConfig(
            out=str(tmp_path / "mo"),
            task="nasbench-graph:cora",
            searcher="nsga2",
            searcher_options={"objectives": "val_score,latency", "population_size": 4},
            trials=8,
        )
    )
    df = load_results(tmp_path / "mo")
    assert len(df) == 8 and df.loc[df.status == OK, "latency"].notna().all()


def test_run_job_looks_up_without_importing_torch():
    code = (
        "import sys\n"
        "from autodlgym.execution.local import run_job\n"
        "from autodlgym.trial import Fidelity, TrialJob\n"
        'spec = \'{"links":"0-1-2-3","op1":"gcn","op2":"gat","op3":"gin","op4":"fc"}\'\n'
        "r = run_job(TrialJob(0, spec, 'nasbench-graph:cora', Fidelity(), 0))\n"
        "assert r.ok, r.message\n"
        "assert 'torch' not in sys.modules\n"
        "print(r.val_score)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    spec = {"links": "0-1-2-3", "op1": "gcn", "op2": "gat", "op3": "gin", "op4": "fc"}
    assert float(out.stdout) == float(_package_row("cora", spec)["valid_perf"])


# table:RUN_DIR -------------------------------------------------------------------------------
SMALL = {
    "base": "default",
    "max_stages": 1,
    "globals": {"n_stages": {"options": [1]}, "batch_size": {"options": [64]}},
    "stage": {
        "block": {"options": ["mlp", "conv"]},
        "depth": {"options": [1]},
        "width": {"options": [8, 16]},
    },
}


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "run"
    run_search(
        RunConfig(
            out=str(out), task="digits", searcher="random", trials=4, epochs=2, space=SMALL, seed=3
        )
    )
    return out


def test_a_table_of_a_run_replays_its_scores(real_run):
    task = get_task(f"table:{real_run}")
    table = task.lookup()
    assert table.space == SearchSpace.from_config(SMALL) and table.max_epochs == 2
    df = load_results(real_run)
    for _, row in df.iterrows():
        spec = ArchSpec.from_json(row["spec"])
        r = table.objective_function(spec, 2)
        assert r.status == row["status"]
        if r.ok:
            assert r.val_score == row["val_score"] and r.test_score == row["test_score"]
            assert r.params == row["params"] and r.flops == row["flops"]
            first = table.objective_function(spec, 1)
            assert first.ok and first.test_score is None and first.epochs_run == 1
            assert first.val_score == r.curve[0]["val_score"]
    # a search over the run's table: each evaluated spec scores what the run recorded
    replay = run_search(
        RunConfig(
            out=str(real_run.parent / "replay"), task=f"table:{real_run}", trials=20, epochs=2
        )
    )
    recorded = {r["arch_id"]: r for _, r in df.iterrows()}
    again = load_results(replay.run_dir)
    for _, row in again.iterrows():
        if row["arch_id"] in recorded:
            assert row["val_score"] == recorded[row["arch_id"]]["val_score"]
        else:
            assert row["status"] == ERROR and "not evaluated" in row["message"]


def test_a_directory_without_a_run_is_a_one_line_error(tmp_path):
    with pytest.raises(AutoDLError, match="no autodlgym run"):
        get_task(f"table:{tmp_path}")


# Gymnasium -------------------------------------------------------------------------------------
def test_env_rewards_are_the_tables_validation_scores():
    env = gymnasium.make(env_id("nasbench-graph:cora"), budget=50)
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(50):
        _, reward, terminated, _, info = env.step(env.action_space.sample())
        expected = _package_row("cora", dict(info["spec"]))
        # a failed lookup pays the failure reward, below any real score (-1 for accuracy)
        assert reward == (-1.0 if expected is None else float(expected["valid_perf"]))
    assert terminated


def test_vector_env_on_a_tabular_task():
    env = gymnasium.make_vec(env_id("mnist1d-table"), num_envs=3, budget=4)
    env.reset(seed=0)
    table = get_task("mnist1d-table").lookup()
    _, rewards, _, _, info = env.step(env.action_space.sample())
    for i in range(3):
        r = table.objective_function(info["spec"][i], 5)
        assert rewards[i] == (r.val_score if r.ok else -1.0)
    env.close()


def test_env_fidelity_picks_the_curve_point():
    env = AutoDLEnv(task="mnist1d-table", fidelity=2, budget=1)
    env.reset(seed=0)
    action = env.action_space.sample()
    _, reward, _, _, info = env.step(action)
    r = get_task("mnist1d-table").lookup().objective_function(env.space.decode(action), 2)
    assert info["epochs_run"] == 2 and reward == (r.val_score if r.ok else 0.0)


def test_lookup_jobs_run_through_run_job():
    spec = ArchSpec({"links": "0-0-1-2", "op1": "sage", "op2": "gcn", "op3": "arma", "op4": "gat"})
    r = run_job(TrialJob(1, spec.to_json(), "nasbench-graph:pubmed", Fidelity(), 0))
    assert r.ok and r.worker
    assert r.val_score == float(_package_row("pubmed", spec)["valid_perf"])
    assert math.isfinite(r.latency)
