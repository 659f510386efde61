"""The rung scheduler (promotion-based successive halving) and the runner that drives it."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from autodlgym import load_results
from autodlgym.execution.rungs import RungScheduler, rung_fidelities
from autodlgym.runner import RunConfig, run_search
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import ERROR, OK, Fidelity, TrialResult


def test_ladder_goes_from_a_fraction_of_an_epoch_to_the_full_fidelity():
    full = Fidelity(20, None, 1200.0)
    ladder = rung_fidelities(full, n_train=3500)
    assert ladder == [
        # a third of an epoch: the first batches of one, covering a third of the data
        Fidelity(1, None, 60.0, max_examples=1167),
        Fidelity(1, None, 60.0),
        Fidelity(3, None, 180.0),
        Fidelity(9, None, 540.0),
        full,
    ]
    assert rung_fidelities(Fidelity(1), 100) == [Fidelity(1, max_examples=33), Fidelity(1)]
    # on a subset of the training set, the first rung is a third of that subset
    assert rung_fidelities(Fidelity(3, 300), 300)[0] == Fidelity(1, 300, max_examples=100)
    # the earlier ladder: one epoch on a fixed third of the training set
    assert rung_fidelities(Fidelity(1), 100, prefix=False) == [Fidelity(1, 33), Fidelity(1)]
    capped = rung_fidelities(full, n_train=3500, first_time_limit=10.0)
    assert [f.time_limit for f in capped] == [10.0, 30.0, 90.0, 270.0, 1200.0]
    # a rung is known by how much it trains, whatever its time limit
    assert RungScheduler(capped).rung_of(ladder[2]) == 2


def _spec(i: int) -> ArchSpec:
    return ArchSpec({"n_stages": 1, "stage1.width": i})


def _ok(score: float) -> TrialResult:
    return TrialResult(OK, val_score=score)


def test_best_of_a_rung_goes_up_once_and_the_highest_rung_first():
    rungs = [Fidelity(1, 10), Fidelity(1), Fidelity(3)]
    s = RungScheduler(rungs, reduction_factor=3)
    for i, score in enumerate([0.2, 0.9, 0.5]):
        s.finished(_spec(i), rungs[0], _ok(score))
        if i < 2:
            assert s.promotion() is None  # fewer than 3 in the rung: nothing goes up yet
    assert s.promotion() == (_spec(1), rungs[1])
    assert s.promotion() is None  # promoted once only
    s.finished(_spec(1), rungs[1], _ok(0.95))
    for i, score in [(3, 0.1), (4, 0.99), (5, 0.3)]:
        s.finished(_spec(i), rungs[0], _ok(score))
    # rung 0 now has 6 results: its top 2 may go up; spec 4 has not yet
    assert s.promotion() == (_spec(4), rungs[1])
    s.finished(_spec(4), rungs[1], _ok(0.97))
    s.finished(_spec(0), rungs[1], TrialResult.failure(ERROR, "boom"))  # never ranks
    assert s.promotion() is None
    s.finished(_spec(6), rungs[1], _ok(0.5))
    assert s.promotion() == (_spec(4), rungs[2])  # the highest rung first


def test_restore_from_finished_and_pending_trials_gives_the_same_decisions():
    rungs = [Fidelity(1, 10), Fidelity(1)]
    finished = [(_spec(i), rungs[0], _ok(s)) for i, s in enumerate([0.3, 0.8, 0.1])]
    fresh = RungScheduler(rungs)
    fresh.restore(finished, [])
    assert fresh.promotion() == (_spec(1), rungs[1])
    in_flight = RungScheduler(rungs)
    in_flight.restore(finished, [(_spec(1), rungs[1])])  # its promotion was left in flight
    assert in_flight.promotion() is None


def _asha_config(tmp_path, space, **kw) -> RunConfig:
    base = dict(
        out=str(tmp_path / "run"), space=space, trials=5, epochs=3, max_train_samples=300,
        pruner="asha", searcher="random", seed=1,
    )  # fmt: skip
    base.update(kw)
    return RunConfig(**base)


def _rungs_of(df) -> list[int]:
    """Rung index of every trial: 0 = the first batches of an epoch over 300 examples, covering
    at most 100 of them (or, on the earlier ladder, one epoch on 100 examples), 1 = 1 epoch,
    2 = 3 epochs."""
    out = []
    capped = df.max_examples if "max_examples" in df else [pd.NA] * len(df)
    for e, m, c in zip(df.epochs, df.max_train_samples, capped):
        if int(e) == 1 and (int(m) == 100 or (not pd.isna(c) and int(c) == 100)):
            out.append(0)
        else:
            out.append({1: 1, 3: 2}[int(e)])
    return out


def test_one_worker_promotes_the_best_of_the_first_rung(tmp_path, tiny_space_config):
    summary = run_search(_asha_config(tmp_path, tiny_space_config), progress=False)
    df = load_results(summary.run_dir).sort_values("trial_id")
    rungs = _rungs_of(df)
    # three candidates at the first rung, then the best of them one rung up, then a new one
    assert rungs == [0, 0, 0, 1, 0]
    first = df[df.trial_id < 3]
    ok = first[first.status == OK]
    best = ok.sort_values(["val_score", "arch_id"], ascending=[False, True]).iloc[0]
    assert df.iloc[3].arch_id == best.arch_id
    # the promoted trial trained on the whole (300-example) training set, continuing from the
    # first rung's trial: 64-example batches, so the first rung trained 1 of the 5 steps
    assert df.iloc[3].epochs_run == 1 and df.iloc[3].max_train_samples == 300
    assert pd.isna(df.iloc[3].max_examples) and df.iloc[0].max_examples == 100
    assert df.iloc[0].max_train_samples == 300 and df.iloc[0].epochs_run == 0
    source = df[(df.trial_id < 3) & (df.arch_id == best.arch_id)].iloc[0]
    assert int(df.iloc[3].continued_from) == int(source.trial_id)
    batch = json.loads(best.spec)["batch_size"]
    assert int(source.steps_run) == 100 // batch
    assert df.iloc[3].continued_epochs == pytest.approx(source.steps_run / -(-300 // batch))
    assert int(df.iloc[3].steps_run) == -(-300 // batch)


def test_resumed_run_promotes_as_if_it_never_stopped(tmp_path, tiny_space_config):
    cfg = _asha_config(tmp_path, tiny_space_config, trials=3)
    run_search(cfg, progress=False)
    run_search(RunConfig(out=cfg.out, trials=5), resume=True, progress=False)
    df = load_results(cfg.out).sort_values("trial_id")
    assert _rungs_of(df) == [0, 0, 0, 1, 0]
    best = df[df.trial_id < 3].sort_values(["val_score", "arch_id"], ascending=[False, True])
    assert df.iloc[3].arch_id == best.iloc[0].arch_id


def test_a_run_begun_on_the_earlier_ladder_resumes_on_it(tmp_path, tiny_space_config, monkeypatch):
    import functools

    import autodlgym.tasks.base as base
    from autodlgym.trial import rung_fidelities as ladder

    cfg = _asha_config(tmp_path, tiny_space_config, trials=3)
    with monkeypatch.context() as m:  # the first rung as runs made before had it
        m.setattr(base, "rung_fidelities", functools.partial(ladder, prefix=False))
        run_search(cfg, progress=False)
    run_search(RunConfig(out=cfg.out, trials=5), resume=True, progress=False)
    df = load_results(cfg.out).sort_values("trial_id")
    # the last candidate started on the subset rung of the first three, not on a new one
    assert "max_examples" not in df and _rungs_of(df) == [0, 0, 0, 1, 0]
    assert list(df.max_train_samples) == [100, 100, 100, 300, 100]
    assert "continued_from" not in df  # a promotion from a subset is trained from scratch


def test_asha_needs_no_optuna_pruner_and_rejects_unknown_pruners(tmp_path):
    from autodlgym import AutoDLError

    with pytest.raises(AutoDLError, match="unknown pruner"):
        RunConfig(out=str(tmp_path), pruner="halving")
    cfg = RunConfig(out=str(tmp_path), time_budget=60)
    assert cfg.pruner == "asha" and cfg.epochs == 20 and cfg.checks_per_epoch == 1
    assert RunConfig(out=str(tmp_path)).pruner == "none"


def test_a_trial_cut_at_its_limit_ranks_in_its_rung_with_the_score_it_reached():
    from autodlgym.trial import STOPPED

    rungs = [Fidelity(1, 10), Fidelity(1)]
    s = RungScheduler(rungs, reduction_factor=3)
    s.finished(_spec(0), rungs[0], _ok(0.2))
    s.finished(_spec(1), rungs[0], _ok(0.3))
    s.finished(_spec(2), rungs[0], TrialResult(STOPPED, val_score=0.9, cut=True))
    assert s.promotion() == (_spec(2), rungs[1])


def test_the_default_searcher_is_tpe_inside_asha_under_a_time_budget(tmp_path):
    from autodlgym.runner import TIME_BUDGET_SEARCHER

    assert RunConfig(out=str(tmp_path), time_budget=60).searcher == TIME_BUDGET_SEARCHER == "tpe"
    assert RunConfig(out=str(tmp_path)).searcher == "random"  # no time budget: no ASHA
    assert RunConfig(out=str(tmp_path), time_budget=60, pruner="none").searcher == "random"
    assert RunConfig(out=str(tmp_path), time_budget=60, searcher="random").searcher == "random"
