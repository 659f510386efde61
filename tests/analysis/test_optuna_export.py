"""export-optuna: when each trial ran, what it measured, and how each status reads in Optuna.

Every expected number is computed here from the run's own frame (``Run.open(dir).frame()``).
"""

from __future__ import annotations

import datetime
import math

import numpy as np
import pandas as pd
import pytest

from autodlgym.analysis.optuna_export import export_optuna, measured, rung_levels
from autodlgym.results.store import ResultStore
from autodlgym.run import Run
from autodlgym.trial import OK, PRUNED, STOPPED, TIMEOUT, Fidelity, TrialResult

optuna = pytest.importorskip("optuna")
from optuna.trial import TrialState  # noqa: E402

F32 = float(np.float32(0.56))  # 0.5600000023841858: a score the trainer computed in float32


def _curve(values):
    return [
        {"epoch": e, "train_loss": 1.0 / e, "val_score": v, "seconds": 0.1 * e}
        for e, v in enumerate(values, 1)
    ]


def _results() -> list[tuple[Fidelity, TrialResult, int | None]]:
    """(fidelity, result, reused_from): ok, pruned, stopped, timeout and a reused trial, at
    the three fidelities of an asha ladder."""
    low, mid, full = Fidelity(1, 100), Fidelity(1), Fidelity(3)
    ok = TrialResult(
        status=OK, val_score=F32, test_score=float(np.float32(0.53)), params=1234,
        flops=56789, train_seconds=2.25, eval_seconds=0.5, epochs_run=3,
        curve=_curve([float(np.float32(0.3)), float(np.float32(0.5)), F32]),
    )  # fmt: skip
    pruned = TrialResult(
        status=PRUNED, val_score=0.25, params=99, flops=990, train_seconds=0.75,
        eval_seconds=0.125, epochs_run=1, curve=_curve([0.25]), message="stopped by the callback",
    )  # fmt: skip
    stopped = TrialResult(
        status=STOPPED, val_score=0.604, params=500, flops=5000, train_seconds=1.5,
        eval_seconds=0.25, epochs_run=2, curve=_curve([0.5, 0.604]),
        message="stopped by the search's time budget in epoch 3",
    )  # fmt: skip
    timeout = TrialResult.failure(
        TIMEOUT, "time limit of 3 s reached in epoch 2", params=77, flops=770,
        train_seconds=3.0625, eval_seconds=0.0625, epochs_run=1,
    )  # fmt: skip
    return [(low, pruned, None), (mid, ok, None), (full, stopped, None), (mid, timeout, None),
            (mid, ok, 1)]  # fmt: skip


@pytest.fixture
def run_dir(tmp_path, space):
    run = tmp_path / "run"
    rng = np.random.default_rng(0)
    specs = [space.sample(rng) for _ in range(4)]
    with ResultStore(run) as store:
        store.save_config(
            {"config_version": 1, "task": "digits", "searcher": "random", "seed": 0,
             "space": space.to_config(), "trials": 5, "epochs": 3, "pruner": "asha"}
        )  # fmt: skip
        for i, (fid, result, reused) in enumerate(_results()):
            spec = specs[1] if reused is not None else specs[i]
            store.append(i, spec, fid, 0, result, reused_from=reused)
    return run


def _study(path):
    return optuna.load_study(study_name="autodlgym", storage=f"sqlite:///{path}")


def _frame(run_dir):
    with Run.open(run_dir) as run:
        return run.frame(), run.curves()


def test_each_trial_ran_from_its_seconds_before_it_was_recorded_until_then(run_dir, tmp_path):
    study = _study(export_optuna(run_dir, tmp_path / "s.db"))
    df, _ = _frame(run_dir)
    assert len(study.trials) == len(df) == 5
    completes = []
    for t, row in zip(study.trials, df.itertuples()):
        complete = datetime.datetime.fromtimestamp(row.finished_at.timestamp())
        assert abs((t.datetime_complete - complete).total_seconds()) <= 1e-6
        seconds = 0.0 if row.trial_id == 4 else row.train_seconds + row.eval_seconds
        assert (t.datetime_complete - t.datetime_start).total_seconds() == pytest.approx(
            seconds, abs=1e-6
        )
        completes.append(t.datetime_complete)
    # recorded one after another: the timeline is not one instant
    assert all(b > a for a, b in zip(completes, completes[1:]))
    assert len({t.datetime_start for t in study.trials}) == 5
    # the reused trial (a copy of trial 1's evaluation) took no time of its own
    assert study.trials[4].user_attrs["reused_from"] == 1


def test_statuses_values_metric_names_and_stopped_trials(run_dir, tmp_path):
    study = _study(export_optuna(run_dir, tmp_path / "s.db"))
    df, curves = _frame(run_dir)
    assert study.metric_names == ["val_score"]
    assert [d.name for d in study.directions] == ["MAXIMIZE"]
    assert [t.state for t in study.trials] == [
        TrialState.PRUNED, TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL,
        TrialState.COMPLETE,
    ]  # fmt: skip
    # a stopped trial keeps the score it reached, and says it was stopped
    stopped = study.trials[2]
    assert stopped.value == df.val_score[2] == 0.604
    assert stopped.user_attrs["stopped"] is True and stopped.user_attrs["status"] == STOPPED
    assert all("stopped" not in t.user_attrs for i, t in enumerate(study.trials) if i != 2)
    # the float32 score is written at a float32's 6 digits, 0.56, not 0.5600000023841858
    assert df.val_score[1] == F32 != 0.56
    assert study.trials[1].value == 0.56 and study.trials[4].value == 0.56
    assert study.best_trial.number == 2  # the stopped trial's 0.604 is the best reached
    for t, row in zip(study.trials, df.itertuples()):
        curve = curves[curves.trial_id == row.trial_id]
        want = {
            int(e): float(f"{v:.6g}") if float(np.float32(v)) == v else v
            for e, v in zip(curve.epoch, curve.val_score)
        }
        assert t.intermediate_values == want


def test_user_attrs_are_the_frames_values(run_dir, tmp_path):
    study = _study(export_optuna(run_dir, tmp_path / "s.db"))
    df, _ = _frame(run_dir)
    # rungs: the distinct fidelities, by epochs then training examples (all of them last)
    levels = sorted(
        {
            (int(e), math.inf if pd.isna(m) else int(m))
            for e, m in zip(df.epochs, df.max_train_samples)
        }
    )
    assert levels == [(1, 100), (1, math.inf), (3, math.inf)] == rung_levels(df)
    for t, row in zip(study.trials, df.to_dict("records")):
        a = t.user_attrs
        assert a["trial_id"] == row["trial_id"] and a["arch_id"] == row["arch_id"]
        assert a["status"] == row["status"]
        assert a.get("message", "") == row["message"]
        for name in ("params", "flops", "epochs", "epochs_run"):
            assert a[name] == int(row[name])
        for name in ("train_seconds", "eval_seconds"):
            assert a[name] == round(row[name], 6)
        if np.isnan(row["test_score"]):
            assert "test_score" not in a
        else:  # float32 test score: the 6 significant digits a float32 holds
            assert a["test_score"] == float(f"{row['test_score']:.6g}") == 0.53
        m = row["max_train_samples"]  # none: the whole training set, and no attribute
        assert a.get("max_train_samples") == (None if pd.isna(m) else int(m))
        level = (int(row["epochs"]), a.get("max_train_samples", math.inf))
        assert a["rung"] == levels.index(level)
    assert [t.user_attrs["rung"] for t in study.trials] == [0, 1, 2, 1, 1]


def test_no_rung_without_asha(make_run, trial_result, tmp_path):
    run = make_run([trial_result(OK, 0.5), trial_result(PRUNED, 0.4, epochs=2)])
    study = _study(export_optuna(run, tmp_path / "s.db"))
    assert all("rung" not in t.user_attrs for t in study.trials)
    assert study.metric_names == ["val_score"]


def test_measured_keeps_what_was_measured():
    assert np.finfo(np.float32).precision == 6
    for v, want in ((0.56, 0.56), (1 / 12, 0.0833333), (0.18333334, 0.183333), (0.1, 0.1),
                    (1 / 3, 0.333333), (0.9876543, 0.987654), (1.0, 1.0)):  # fmt: skip
        single = float(np.float32(v))
        assert measured(single) == want
        # at most half a unit in the 6th significant digit away
        assert abs(measured(single) - single) <= 0.5 * 10 ** (math.floor(math.log10(single)) - 5)
    # a float64 value that is no float32 is kept as it is
    for v in (0.604, 1 / 3, 0.7613333333333333, 0.123456789012):
        assert float(np.float32(v)) != v and measured(v) == v
    assert math.isnan(measured(math.nan))
