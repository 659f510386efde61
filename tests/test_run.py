"""Run: a run of every kind of task reads back as itself in every tool.

One search per kind of task (a task that trains on generated data, a user's CSV, the shipped
lookup table, NAS-Bench-Graph, a finished run replayed as a table), then the report,
export to Optuna, compare, the leaderboard, retrain and resume on it: the space they name is
the task's own, importance ranks decisions, the table band draws for lookups, the exported
study has every trial.
"""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest

from autodlgym import Run, RunConfig, load_results, run_search
from autodlgym.analysis.anytime import compare_anytime
from autodlgym.analysis.effects import decision_importance
from autodlgym.analysis.leaderboard import choice_columns, leaderboard
from autodlgym.analysis.optuna_export import export_optuna
from autodlgym.analysis.report import build_comparison, build_report
from autodlgym.errors import AutoDLError
from autodlgym.results.store import ResultStore
from autodlgym.retrain import retrain
from autodlgym.run import plan, settle_config
from autodlgym.tasks import get_task, list_tasks
from autodlgym.trial import OK, RETRAIN, SEARCH
from tests.data_fixtures import mixed_frame

TRIALS = 30  # the bar: importance is ranked from at least 30 ok trials
KINDS = ["mnist1d", "csv", "mnist1d-table", "nasbench-graph:cora", "table"]


def _task_name(kind: str, root: Path) -> tuple[str, dict]:
    if kind == "csv":
        path = root / "data.csv"
        mixed_frame(240).to_csv(path, index=False)
        return f"csv:{path}", {"target": "label"}
    if kind == "table":  # a finished run of the shipped table, replayed as a task
        source = root / "source"
        run_search(RunConfig(out=str(source), task="mnist1d-table", trials=60, seed=1))
        return f"table:{source}", {}
    return kind, {}


@pytest.fixture(scope="module", params=KINDS)
def kind_run(request, tmp_path_factory):
    """``(kind, run_dir, task)``: a finished search of TRIALS trials on a task of that kind
    (tiny fidelities where the task trains)."""
    kind = request.param
    root = tmp_path_factory.mktemp(kind.replace(":", "-"))
    name, options = _task_name(kind, root)
    task = get_task(name, **options)
    fast = {"epochs": 1, "max_train_samples": 64} if task.kind == "trained" else {}
    config = RunConfig(
        out=str(root / "run"),
        task=name,
        task_kwargs=options,
        searcher="random",
        trials=TRIALS,
        seed=0,
        **fast,
    )
    run_search(config, progress=False)
    return kind, root / "run", task


def _copy_run(run_dir: Path, to: Path) -> Path:
    """A copy of a run's store (SQLite's online backup), for tests that write to a run."""
    to.mkdir()
    src = sqlite3.connect(run_dir / "results.sqlite")
    dst = sqlite3.connect(to / "results.sqlite")
    src.backup(dst)
    src.close()
    dst.close()
    return to


def _search_frame(run_dir: Path):
    df = load_results(run_dir)
    return df[df["phase"] == SEARCH]


def test_the_run_holds_the_task_space_and_every_trial(kind_run):
    kind, run_dir, task = kind_run
    with Run.open(run_dir) as run:
        expected = task.default_space()
        assert run.space.cardinality() == expected.cardinality()
        assert [c.name for c in run.space.choices] == [c.name for c in expected.choices]
        assert run.task.key == task.key and run.task.kind == task.kind
        df = run.frame()
        assert len(df) == TRIALS and (df["status"] == OK).sum() >= 1
        # one column per decision of the run's space, not one per spec key of another space
        assert [c.name for c in run.space.choices] == [
            c for c in choice_columns(df) if c in {d.name for d in run.space.choices}
        ]
        best = run.best(3)
        ok = df[df["status"] == OK]
        assert best["val_score"].iloc[0] == ok["val_score"].max()
        assert best["arch_id"].is_unique and list(best["val_score"]) == sorted(
            best["val_score"], reverse=True
        )


def test_the_report_names_the_task_space_ranks_decisions_and_draws_the_band(kind_run):
    kind, run_dir, task = kind_run
    page = build_report(run_dir)
    space = task.default_space()
    assert f"{len(space)} decisions, {space.cardinality():,} architectures" in page
    with Run.open(run_dir) as run:
        df = _search_frame(run_dir)
        n_ok = int((df["status"] == OK).sum())
        importance = decision_importance(df, run.space)
    if kind != "table":  # a replayed run answers only the architectures it evaluated
        assert n_ok >= TRIALS
    if n_ok >= TRIALS:
        assert not importance.empty and "No decision could be ranked" not in page
    band = "expected best on this table" in page
    assert band == (task.kind == "lookup")


def test_the_band_is_the_table_itself(kind_run):
    kind, run_dir, task = kind_run
    with Run.open(run_dir) as run:
        scores = run.table_scores()
    if task.kind != "lookup":
        assert scores is None
        return
    np.testing.assert_allclose(np.sort(scores), np.sort(task.outcomes(run.config.epochs).val))


def test_export_optuna_holds_every_trial(kind_run, tmp_path):
    kind, run_dir, task = kind_run
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no trial left out
        path = export_optuna(run_dir, tmp_path / "x.db")
    study = optuna.load_study(study_name="autodlgym", storage=f"sqlite:///{path}")
    df = _search_frame(run_dir)
    assert len(study.trials) == len(df) == TRIALS
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == int((df["status"] == OK).sum())
    best = max(t.value for t in complete)
    assert best == pytest.approx(df.loc[df["status"] == OK, "val_score"].max())


def test_compare_sees_the_ok_trials(kind_run):
    kind, run_dir, task = kind_run
    page, summary = build_comparison([run_dir, run_dir])
    df = _search_frame(run_dir)
    assert list(summary["ok"]) == [int((df["status"] == OK).sum())] * 2
    long = compare_anytime([run_dir], "trials")
    assert long["best_val_score"].max() == pytest.approx(df["val_score"].max())


def test_the_leaderboard_ranks_by_the_task_space(kind_run):
    kind, run_dir, task = kind_run
    board = leaderboard(run_dir)
    names = [c.name for c in task.default_space().choices]
    assert set(names) <= set(board.columns)
    assert board["val_score"].iloc[0] == _search_frame(run_dir)["val_score"].max()


def test_retrain_evaluates_the_best_at_full_fidelity(kind_run, tmp_path):
    kind, run_dir, task = kind_run
    copy = _copy_run(run_dir, tmp_path / "copy")  # retrain writes: the others see the search
    view = retrain(copy, top=1, seeds=1)
    assert len(view) == 1
    df = load_results(copy)
    again = df[df["phase"] == RETRAIN]
    assert len(again) == 1
    if task.kind == "lookup":  # the table's answer at the run's full fidelity
        spec = json.loads(again["spec"].iloc[0])
        with Run.open(copy) as run:
            direct = task.lookup().objective_function(spec, run.config.epochs)
        assert again["val_score"].iloc[0] == pytest.approx(direct.val_score)
        assert not (copy / "models").exists()  # a lookup has no weights to keep


def test_resume_continues_with_the_stored_space(kind_run, tmp_path):
    kind, run_dir, task = kind_run
    copy = _copy_run(run_dir, tmp_path / "copy")
    before = Run.open(copy)
    space_before = before.space.to_config()
    before.close()
    extend = RunConfig(out=str(copy), trials=TRIALS + 3)
    summary = run_search(extend, resume=True, progress=False)
    assert summary.finished == TRIALS + 3
    with Run.open(copy) as run:
        assert run.space.to_config() == space_before
        assert len(run.frame()) == TRIALS + 3


# Settling a config for its task -----------------------------------------------------------------
def test_asha_climbs_the_epochs_of_a_table(tmp_path):
    summary = run_search(
        RunConfig(out=str(tmp_path / "r"), task="mnist1d-table", trials=60, pruner="asha"),
        progress=False,
    )
    with Run.open(tmp_path / "r") as run:
        assert run.config.pruner == "asha" and run.config.epochs == 5
        df = run.frame()
        best = run.best(60)
    epochs = df["epochs"]
    assert set(epochs) == {1, 3, 5} and (epochs == 1).sum() > (epochs == 5).sum() > 0
    # the rankings: one row per architecture, at the highest epochs it reached, with its best
    # score there; the summary's best is the leaderboard's first row and Run.best's
    board = leaderboard(tmp_path / "r", top=None)
    ok = df[df["status"] == OK]
    assert board["arch_id"].is_unique and set(board["arch_id"]) == set(ok["arch_id"])
    for row in board.itertuples():
        trials = ok[ok["arch_id"] == row.arch_id]
        top = trials["epochs"].max()
        assert row.epochs == top and row.rung == [1, 3, 5].index(top)
        assert row.val_score == trials.loc[trials["epochs"] == top, "val_score"].max()
        assert row.n_evals == (df["arch_id"] == row.arch_id).sum()
    assert board["val_score"].is_monotonic_decreasing
    assert len(board) < len(ok)  # promoted architectures were evaluated more than once
    assert (board["n_evals"] > 1).any() and (board["rung"] == 2).any()
    assert summary.best_trial_id == board["trial_id"].iloc[0] == best["trial_id"].iloc[0]
    assert summary.best_val_score == board["val_score"].iloc[0]
    assert best["trial_id"].tolist() == board["trial_id"].tolist()


def test_a_pruner_on_a_table_without_curves_is_refused_or_dropped(tmp_path):
    with pytest.raises(AutoDLError, match="--pruner asha needs lower fidelities.*--pruner none"):
        run_search(
            RunConfig(out=str(tmp_path / "a"), task="nasbench-graph:cora", trials=3, pruner="asha")
        )
    assert not (tmp_path / "a" / "results.sqlite").exists()  # refused before anything is written
    run_search(
        RunConfig(out=str(tmp_path / "b"), task="nasbench-graph:cora", time_budget=3, trials=5),
        progress=False,
    )
    with Run.open(tmp_path / "b") as run:  # the run says what it used
        assert run.config.pruner == "none" and run.config.epochs == 1


def test_epochs_a_table_does_not_have_are_refused(tmp_path):
    with pytest.raises(AutoDLError, match="--epochs 7.*1 to 5"):
        settle_config(
            RunConfig(out=str(tmp_path), task="mnist1d-table", epochs=7), get_task("mnist1d-table")
        )


@pytest.mark.parametrize(
    "name", [n for n, _ in list_tasks() if not n.endswith(("PATH", "DIR", "RUN_DIR"))]
)
def test_every_task_plans_a_run_in_its_own_space(name, tmp_path):
    task = get_task(name)
    config, planned_task, space = plan(RunConfig(out=str(tmp_path), task=name, trials=1))
    assert planned_task is task
    own = task.default_space()
    assert space.cardinality() == own.cardinality() and len(space) == len(own)
    default = task.default_fidelity()
    if default is not None:  # a lookup's own full fidelity
        assert config.epochs == default.epochs
    assert not (tmp_path / "results.sqlite").exists()  # planning writes nothing


# Opening ----------------------------------------------------------------------------------------
def test_open_names_what_is_missing(tmp_path):
    with pytest.raises(AutoDLError, match="no autodlgym run"):
        Run.open(tmp_path / "nothing")
    with ResultStore(tmp_path / "bare"):
        pass
    with Run.open(tmp_path / "bare") as run:  # a store without settings still reads
        assert run.settings == {} and len(run.frame()) == 0
        with pytest.raises(AutoDLError, match="holds no search settings"):
            _ = run.config


def test_create_stores_config_and_space_and_refuses_a_second_run(tmp_path):
    config = RunConfig(out=str(tmp_path / "r"), task="nasbench-graph:cora", trials=2)
    with Run.create(config) as run:
        assert run.config.task == "nasbench-graph:cora"
    with ResultStore(tmp_path / "r", create=False) as store:
        assert store.load_space().cardinality() == 59049
    with Run.open(tmp_path / "r" / "results.sqlite") as run:  # the store file names its run
        assert run.space.cardinality() == 59049
    with pytest.raises(AutoDLError, match="already holds a run"):
        Run.create(config)


def test_a_run_of_0_1_without_a_stored_space_is_rebuilt_from_its_task(tmp_path):
    run_search(RunConfig(out=str(tmp_path / "r"), task="nasbench-graph:cora", trials=3))
    with sqlite3.connect(tmp_path / "r" / "results.sqlite") as conn:
        conn.execute("DELETE FROM state WHERE name = 'space'")
    with Run.open(tmp_path / "r") as run:
        assert run.space.cardinality() == 59049
        assert {"links", "op1"} <= set(run.frame().columns)
