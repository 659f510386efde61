"""PruningService: Optuna pruners behind the per-epoch reporter protocol, for any searcher."""

from __future__ import annotations

import pickle

import pytest
from optuna.trial import TrialState

from autodlgym.errors import AutoDLError
from autodlgym.execution.local import LocalExecutor
from autodlgym.execution.pruning import PRUNERS, PruningService
from autodlgym.trial import Fidelity, TrialJob, TrialResult


def run_trial(service: PruningService, trial_id: int, scores: list[float]) -> TrialResult:
    """Report ``scores`` epoch by epoch as a worker would; stop when told to."""
    for epoch, score in enumerate(scores, start=1):
        if service.report(trial_id, epoch, score):
            result = TrialResult("pruned", val_score=score, epochs_run=epoch)
            break
    else:
        result = TrialResult("ok", val_score=scores[-1], epochs_run=len(scores))
    service.finish(trial_id, result)
    return result


def test_median_prunes_a_poor_trial_after_the_warm_up():
    service = PruningService("median", max_epochs=3, startup_trials=2, warmup_epochs=1)
    for trial_id in range(3):
        assert run_trial(service, trial_id, [0.8, 0.85, 0.9]).status == "ok"
    assert service.report(10, 1, 0.1) is False  # epoch 1 is the warm-up
    assert service.report(10, 2, 0.1) is True
    assert service.report(11, 1, 0.9) is False
    assert service.report(11, 2, 0.95) is False  # a good trial goes on
    service.finish(10, TrialResult("pruned", val_score=0.1, epochs_run=2))
    states = [t.state for t in service.study.trials]
    assert states[3] == TrialState.PRUNED and states[4] == TrialState.RUNNING


def test_the_last_epoch_is_never_pruned():
    service = PruningService("median", max_epochs=2, startup_trials=1, warmup_epochs=1)
    run_trial(service, 0, [0.9, 0.9])
    assert service.report(1, 1, 0.1) is False  # warm-up
    assert service.report(1, 2, 0.1) is False  # poor, but the trial is over anyway


def test_median_waits_for_its_startup_trials():
    service = PruningService("median", max_epochs=3, startup_trials=2)
    run_trial(service, 0, [0.9, 0.9, 0.9])
    assert run_trial(service, 1, [0.1, 0.1, 0.1]).status == "ok"


def interleaved_hyperband(run_dir, move_at_epoch: int | None) -> tuple[dict, PruningService]:
    """Nine trials advance epoch by epoch in lock step, as nine workers would report; returns
    the epoch each pruned trial stopped at."""
    service = PruningService("hyperband", run_dir=run_dir, max_epochs=9, reduction_factor=3)
    running = set(range(9))
    pruned_at: dict[int, int] = {}
    for epoch in range(1, 10):
        for trial_id in sorted(running, key=lambda t: (t * 5) % 9):  # arrival order varies
            score = 0.1 * trial_id + 0.01 * epoch
            if service.report(trial_id, epoch, score):
                pruned_at[trial_id] = epoch
                service.finish(trial_id, TrialResult("pruned", val_score=score))
        running -= set(pruned_at)
        if epoch == move_at_epoch:  # the service moves into a Ray actor mid-run
            service = pickle.loads(pickle.dumps(service))
    for trial_id in running:
        service.finish(trial_id, TrialResult("ok", val_score=0.1 * trial_id + 0.09))
    return pruned_at, service


def test_hyperband_with_interleaved_reports_from_parallel_workers(tmp_path):
    pruned_at, service = interleaved_hyperband(None, None)
    assert pruned_at, "hyperband pruned nothing"
    assert 8 not in pruned_at  # the best trial runs to the end
    states = [t.state for t in service.study.trials]
    assert states.count(TrialState.PRUNED) == len(pruned_at)
    assert states.count(TrialState.COMPLETE) == 9 - len(pruned_at)
    # the same decisions from a database, with the service pickled half-way
    assert interleaved_hyperband(tmp_path, move_at_epoch=3)[0] == pruned_at
    assert (tmp_path / "pruning.db").is_file()


def test_sha_stops_the_worse_trials_at_its_first_rung():
    service = PruningService("sha", max_epochs=9, min_epochs=1, reduction_factor=3)
    for trial_id in range(3):
        run_trial(service, trial_id, [0.9] * 3)
    assert run_trial(service, 3, [0.1, 0.1, 0.1]).epochs_run == 1


def test_none_never_prunes():
    service = PruningService("none", max_epochs=3)
    for trial_id in range(4):
        assert run_trial(service, trial_id, [0.9 if trial_id < 3 else 0.0] * 3).status == "ok"


def test_a_non_finite_score_stops_the_trial():
    assert PruningService("none").report(0, 1, float("nan")) is True


def test_a_copy_continues_the_open_trials_in_memory():
    service = PruningService("median", max_epochs=3, startup_trials=1, warmup_epochs=1)
    run_trial(service, 0, [0.9, 0.9, 0.9])
    assert service.report(1, 1, 0.5) is False  # warm-up
    copy = pickle.loads(pickle.dumps(service))
    assert copy.report(1, 2, 0.1) is True  # the same study trial: its best, 0.5, is poor
    copy.finish(1, TrialResult("pruned", val_score=0.1))
    assert [t.state for t in copy.study.trials] == [TrialState.COMPLETE, TrialState.PRUNED]
    assert copy.study.trials[1].intermediate_values == {1: 0.5, 2: 0.1}


def test_finish_of_a_trial_that_never_reported_is_ignored_and_a_retry_starts_fresh():
    service = PruningService("median")
    service.finish(7, TrialResult.failure("error", "crashed before epoch 1"))
    assert service.study.trials == []
    service.report(8, 1, 0.5)
    service.finish(8, TrialResult.failure("worker_lost", "node died"))
    service.report(8, 1, 0.6)  # the runner retries the trial under the same id
    assert [t.state for t in service.study.trials] == [TrialState.FAIL, TrialState.RUNNING]


def test_reopening_a_run_fails_trials_left_running_by_the_last_session(tmp_path):
    first = PruningService("median", run_dir=tmp_path)
    first.report(0, 1, 0.5)
    second = PruningService("median", run_dir=tmp_path)
    assert [t.state for t in second.study.trials] == [TrialState.FAIL]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pruner": "asha"},
        {"pruner": "sha", "reduction_factor": 1},
        {"pruner": "hyperband", "max_epochs": 2, "min_epochs": 3},
        {"pruner": "median", "max_epochs": 0},
    ],
)
def test_bad_settings_are_user_errors(kwargs):
    with pytest.raises(AutoDLError):
        PruningService(**kwargs)


def test_every_pruner_of_the_run_config_is_known():
    from autodlgym.runner import PRUNERS as RUN_PRUNERS

    assert set(RUN_PRUNERS) == set(PRUNERS)


def test_a_real_trial_is_pruned_through_the_local_executor():
    """The trainer's per-epoch callback, run_job's wiring and the service work together."""
    service = PruningService("median", max_epochs=3, startup_trials=2, warmup_epochs=1)
    for trial_id in range(2):  # finished trials that were perfect at every epoch
        run_trial(service, trial_id, [1.0, 1.0, 1.0])
    spec = {
        "n_stages": 1,
        "stage1.block": "mlp",
        "stage1.depth": 1,
        "stage1.width": 8,
        "optimizer": "sgd",
        "lr": 1e-4,
    }
    from autodlgym.searchspace.spec import ArchSpec

    job = TrialJob(
        trial_id=5,
        spec_json=ArchSpec(spec).to_json(),
        task="digits",
        fidelity=Fidelity(epochs=3, max_train_samples=64),
        seed=0,
        prune=True,
    )
    executor = LocalExecutor(reporter=service)
    executor.submit(job)
    [(_, result)] = executor.wait()
    assert result.status == "pruned", result.message
    assert result.epochs_run == 2
    assert service.study.trials[-1].state == TrialState.PRUNED
