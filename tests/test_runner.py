"""run_search: budgets, resume, reuse of evaluated specs, failure kinds, bad settings."""

from __future__ import annotations

import io
import math
import sys

import numpy as np
import pandas as pd
import pytest

from autodlgym import AutoDLError, Run, load_results
from autodlgym.progress import SearchProgress, progress_style, wants_progress
from autodlgym.results.store import ResultStore
from autodlgym.runner import RunConfig, run_search
from autodlgym.searchers.base import Searcher
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import TrialResult


def _config(tmp_path, space, **kw) -> RunConfig:
    base = dict(
        out=str(tmp_path / "run"), space=space, trials=3, epochs=1, max_train_samples=128, seed=0
    )
    base.update(kw)
    return RunConfig(**base)


class FixedSearcher(Searcher):
    """Proposes a fixed list of specs in order (then repeats the last)."""

    specs: list[dict] = []

    def __init__(self, space, seed=0, run_dir=None, **options):
        super().__init__(space, seed=seed, run_dir=run_dir)
        self.i = 0
        self.told: list[str] = []

    def ask(self, n=1):
        out = []
        for _ in range(n):
            out.append(ArchSpec(self.specs[min(self.i, len(self.specs) - 1)]))
            self.i += 1
        return out

    def tell(self, spec, result):
        self.told.append(result.status)


def test_search_records_every_trial_and_reads_back(tmp_path, tiny_space_config):
    summary = run_search(_config(tmp_path, tiny_space_config, trials=3))
    assert summary.finished == 3 and summary.stopped_by == "trials"
    df = load_results(summary.run_dir)
    assert list(df.trial_id) == [0, 1, 2]
    assert set(df.status) <= {"ok", "nan", "error", "timeout", "oom", "pruned"}
    assert (df.status == "ok").sum() >= 2
    assert df.loc[df.status == "ok", "val_score"].between(0, 1).all()
    assert summary.best_val_score == pytest.approx(df.val_score.max())
    # the space's choice columns are there
    assert "stage1.block" in df.columns and set(df["stage1.block"]) <= {"mlp", "conv"}


def test_resume_extends_budget_without_losing_or_duplicating(tmp_path, tiny_space_config):
    cfg = _config(tmp_path, tiny_space_config, trials=2, searcher="evolution")
    run_search(cfg)
    first = load_results(cfg.out)
    more = run_search(RunConfig(out=cfg.out, trials=4), resume=True)
    df = load_results(cfg.out)
    assert more.finished == 4 and len(df) == 4
    assert not df.trial_id.duplicated().any()
    # finished trials were kept as they were
    assert (
        df.set_index("trial_id")
        .loc[first.trial_id, "val_score"]
        .equals(first.set_index("trial_id").val_score)
    )


def test_a_run_directory_is_not_overwritten(tmp_path, tiny_space_config):
    cfg = _config(tmp_path, tiny_space_config, trials=1)
    run_search(cfg)
    with pytest.raises(AutoDLError, match="already holds a run"):
        run_search(cfg)
    assert len(load_results(cfg.out)) == 1


def test_resume_of_an_empty_directory_is_a_clear_error(tmp_path):
    with pytest.raises(AutoDLError, match="no autodlgym run"):
        run_search(resume=True, out=tmp_path / "nothing")


def test_same_spec_is_not_trained_twice(tmp_path, tiny_space_config):
    space = SearchSpace.from_config(tiny_space_config)
    spec = space.sample(np.random.default_rng(0))
    FixedSearcher.specs = [spec.to_dict()]
    searcher = FixedSearcher(space)
    summary = run_search(_config(tmp_path, tiny_space_config, trials=3), searcher=searcher)
    df = load_results(summary.run_dir)
    assert len(df) == 3 and df.arch_id.nunique() == 1
    assert df.reused_from.isna().sum() == 1  # only the first one trained
    assert (df.reused_from.dropna() == 0).all()
    assert df.val_score.nunique() == 1
    assert len(searcher.told) == 3


def test_failures_are_kept_apart_and_the_search_goes_on(tmp_path, tiny_space_config):
    cfg = dict(tiny_space_config)
    cfg["globals"] = dict(
        cfg["globals"],
        lr={"options": [1e-3, 1e12]},
        optimizer={"options": ["sgd"]},
        grad_clip={"options": [0.0]},
    )
    space = SearchSpace.from_config(cfg)
    good = space.sample(np.random.default_rng(1)).replace(lr=1e-3)
    diverging = good.replace(lr=1e12, **{"stage1.block": "mlp", "norm": "none"}).to_dict()
    outside = dict(good.to_dict(), **{"stage1.width": 7})
    FixedSearcher.specs = [good.to_dict(), diverging, outside, good.to_dict()]
    searcher = FixedSearcher(space)
    summary = run_search(_config(tmp_path, cfg, trials=4), searcher=searcher)
    df = load_results(summary.run_dir)
    assert list(df.status) == ["ok", "nan", "error", "ok"]
    assert "outside the space" in df.message[2]
    assert searcher.told == ["ok", "nan", "error", "ok"]


def test_trial_time_limit_gives_timeout_status(tmp_path, tiny_space_config, fake_clock):
    fake_clock.tick = 0.01
    summary = run_search(
        _config(
            tmp_path,
            tiny_space_config,
            trials=2,
            trial_time_limit=1e-4,
            max_train_samples=None,
            epochs=3,
        )
    )
    df = load_results(summary.run_dir)
    assert list(df.status) == ["timeout", "timeout"]


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"trials": -1}, "--trials"),
        ({"trials": None, "time_budget": None}, "budget"),
        ({"epochs": 0}, "epochs"),
        ({"pruner": "bogus"}, "pruner"),
        ({"workers": 0}, "workers"),
    ],
)
def test_bad_settings_are_rejected(tmp_path, kw, match):
    with pytest.raises(AutoDLError, match=match):
        RunConfig(out=str(tmp_path), **kw)


def test_unknown_task_or_searcher_creates_nothing(tmp_path):
    with pytest.raises(AutoDLError, match="unknown task"):
        run_search(RunConfig(out=str(tmp_path / "a"), task="no-such-task"))
    assert not (tmp_path / "a").exists()
    with pytest.raises(AutoDLError, match="unknown searcher"):
        run_search(RunConfig(out=str(tmp_path / "b"), searcher="no-such-searcher"))


def test_time_budget_stops_the_search(tmp_path, tiny_space_config, fake_clock):
    fake_clock.tick = 0.01
    summary = run_search(
        _config(tmp_path, tiny_space_config, trials=None, time_budget=0.5, final_seeds=0)
    )
    assert summary.stopped_by == "time" and summary.seconds >= 0.5
    assert summary.finished >= 1


SLOW_MLP = {
    "n_stages": 1, "stage1.block": "mlp", "stage1.depth": 1, "stage1.width": 16,
    "connections": "chain", "activation": "relu", "norm": "none", "dropout": 0.0,
    "init": "he_uniform", "zero_init_residual": False, "trainable": "all", "head_pool": "avg",
    "optimizer": "adam", "lr": 1e-2, "weight_decay": 0.0, "batch_size": 32, "grad_clip": 0.0,
}  # fmt: skip


class OneSpec(FixedSearcher):
    specs = [SLOW_MLP]


def test_deadline_stops_the_trial_in_flight_and_resume_continues(tmp_path, fake_clock):
    fake_clock.tick = 0.0005  # time passes with each reading: a few dozen per batch
    cfg = RunConfig(
        out=str(tmp_path / "run"), task="digits", searcher="tests.test_runner:OneSpec",
        trials=None, time_budget=3.0, epochs=100_000, trial_time_limit="none", pruner="none",
        final_seeds=0,  # the deadline of the search itself, without final selection
    )  # fmt: skip
    t0 = fake_clock.t
    summary = run_search(cfg, progress=False)
    elapsed = fake_clock.t - t0
    assert summary.stopped_by == "time" and summary.statuses == {"stopped": 1}
    # the search's clock ends just after the budget: the trial stopped at its next batch
    # (a batch reads the clock a few dozen times: far less than an epoch of 40 batches)
    assert 3.0 <= summary.seconds <= elapsed and summary.seconds < 3.0 + 0.4
    df = load_results(cfg.out)
    row = df.iloc[0]
    assert row.status == "stopped" and row.epochs_run >= 1
    curves = ResultStore(cfg.out, create=False).curves()
    # a check per whole epoch, then the model it reached scored where it stopped
    assert curves.epoch.iloc[:-1].tolist() == list(range(1, len(curves)))
    assert row.epochs_run == math.floor(curves.epoch.iloc[-1])
    assert row.val_score == curves.val_score.iloc[-1]  # the last score it reached
    assert np.isfinite(row.test_score)  # and its test score, from the same weights
    from autodlgym.analysis.leaderboard import leaderboard

    top = leaderboard(cfg.out).iloc[0]  # the top row shows it (it showed no test score)
    assert top.trial_id == 0 and top.stopped and top.test_score == row.test_score
    assert 0 < row.train_seconds < 3.0
    # the summary's best counts it, with the score it reached
    assert (summary.best_trial_id, summary.best_val_score) == (0, row.val_score)
    # a resume with a larger budget goes on; the stopped trial is kept, not reused
    summary = run_search(RunConfig(out=cfg.out, time_budget=6.0), resume=True, progress=False)
    df = load_results(cfg.out)
    assert summary.stopped_by == "time" and list(df.trial_id) == [0, 1]
    assert list(df.status) == ["stopped", "stopped"] and pd.isna(df.reused_from).all()
    best = df.sort_values(["val_score", "trial_id"], ascending=[False, True]).iloc[0]
    assert (summary.best_trial_id, summary.best_val_score) == (best.trial_id, best.val_score)


def test_progress_counts_time_and_shows_trials_in_flight(
    tmp_path, tiny_space_config, capsys, fake_clock
):
    fake_clock.tick = 0.01
    cfg = _config(tmp_path, tiny_space_config, trials=None, time_budget=2.0)
    with progress_style("bar"):  # capsys is no terminal: a bar only when chosen
        run_search(cfg, progress=True)
    err = capsys.readouterr().err
    assert "0:02 |" in err and "left" in err and "trial" in err
    assert "best 0." in err

    bar = SearchProgress(True, trials=None, time_budget=60, file=io.StringIO())
    bar.started(7, "conv x2 (32)", epochs=20)
    bar.trained(7, 2.5, 100)
    status = bar.status()
    assert status.startswith("0 trials") and "#7 conv x2 (32) e2.5/20" in status
    bar.ended(7, TrialResult("ok", val_score=0.9))
    assert bar.status() == "1 trial · best 0.9000"
    bar.close()


def test_progress_shows_by_itself_only_in_a_terminal_or_a_notebook():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert wants_progress(Tty()) is True
    assert wants_progress(io.StringIO()) is ("ipykernel" in sys.modules)


def test_a_pruner_that_cannot_prune_warns_once_and_says_what_to_change(tmp_path, tiny_space_config):
    cfg = _config(tmp_path, tiny_space_config, pruner="hyperband", epochs=1, checks_per_epoch=1)
    with pytest.warns(UserWarning, match="prunes nothing.*--epochs 3") as caught:
        run_search(cfg, progress=False)
    assert len([w for w in caught if "prunes nothing" in str(w.message)]) == 1
    # the default checks of Optuna's pruners give them rungs below one epoch
    cfg = RunConfig(out=str(tmp_path / "b"), pruner="hyperband", epochs=1)
    assert cfg.checks_per_epoch == 4 and cfg.checks == 4


def test_adaptive_limits_cut_trials_which_keep_their_scores_and_the_run_counts_them(
    tmp_path, tiny_space_config, monkeypatch
):
    """With ``trial_time_limit="auto"`` each trial's limit follows the measured speed. The
    first trial's limit comes from a speed far above the (fake) clock's: it is cut, recorded
    ``stopped`` with its scores; what it measured makes the next trial's limit long enough."""
    import statistics

    import autodlgym.training.trainer as trainer
    from autodlgym.training import limits

    tp = limits.Throughput(step_seconds=1e-6, flops_per_second=1e15)
    monkeypatch.setattr(limits, "_PROCESS", tp)
    monkeypatch.setattr(limits, "LIMIT_FLOOR", 0.5)
    ticks = iter(range(10**9))
    monkeypatch.setattr(trainer, "_now", lambda: next(ticks) * 1e-3)  # 1 ms a read
    summary = run_search(
        _config(tmp_path, tiny_space_config, trials=2, max_train_samples=None, epochs=50)
    )
    df = load_results(summary.run_dir)
    first, second = df.iloc[0], df.iloc[1]
    assert first.status == "stopped" and first.cut == True  # noqa: E712 - a frame cell
    # the floor (cold: nothing measured yet in this process): the first speed predicts less
    assert first.limit_seconds == 0.5 * limits.COLD_FLOOR_FACTOR
    assert first.steps_run > 0 and first.val_score >= 0 and first.test_score >= 0
    assert second.status == "ok" and second.limit_seconds > 0.5 * limits.COLD_FLOOR_FACTOR
    assert summary.cut == int((df.cut == True).sum()) == 1  # noqa: E712
    assert summary.statuses == {"stopped": 1, "ok": 1}
    assert summary.throughput == pytest.approx(statistics.median(df.throughput))
    assert second.throughput == pytest.approx(1e15 / tp.slowdown())


def test_a_final_retrain_stopped_by_the_deadline_is_not_a_seed(tmp_path, fake_clock):
    """Final selection averages retrains that trained the candidate's whole fidelity: one
    the deadline stopped part way is recorded (stopped, with its scores) but not averaged."""
    fake_clock.tick = 0.0005
    cfg = RunConfig(
        out=str(tmp_path / "run"), task="digits", searcher="tests.test_runner:OneSpec",
        trials=1, time_budget=2.5, epochs=4, trial_time_limit="none", pruner="none",
        final_seeds=3, baselines=False,
    )  # fmt: skip
    summary = run_search(cfg, progress=False)
    df = load_results(cfg.out).set_index("trial_id")
    retrain = df[df.phase == "retrain"]
    assert df.loc[0, "status"] == "ok"
    done, stopped = retrain[retrain.status == "ok"], retrain[retrain.status == "stopped"]
    if stopped.empty or done.empty:
        pytest.skip(f"the fake clock let {len(done)} retrains finish of {len(retrain)}")
    assert (stopped.epochs_run < 4).all() and stopped.val_score.notna().all()
    with Run.open(cfg.out) as run:
        final = run.final()
    vals = [df.loc[0, "val_score"], *done.val_score]
    assert final["n"] == summary.final_seeds == len(vals)
    assert final["val_mean"] == pytest.approx(np.mean(vals))
    tests = [df.loc[0, "test_score"], *done.test_score]
    assert final["test_mean"] == pytest.approx(np.mean(tests))
