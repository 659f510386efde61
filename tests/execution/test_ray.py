"""RayExecutor on the session's local Ray (2 CPUs; ``ray_cluster`` in tests/conftest.py).

Job functions and reporters sent to workers are made inside factories: cloudpickle sends such
local objects by value, so the workers need not import this test module.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from autodlgym.errors import AutoDLError  # noqa: E402
from autodlgym.execution.local import run_job  # noqa: E402
from autodlgym.execution.ray_executor import RayExecutor, ray_temp_dir  # noqa: E402
from autodlgym.searchspace.space import SearchSpace  # noqa: E402
from autodlgym.searchspace.spec import ArchSpec  # noqa: E402
from autodlgym.trial import Fidelity, TrialJob, TrialResult  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.timeout(180)]

TINY = Fidelity(epochs=1, max_train_samples=64)


@pytest.fixture(scope="module")
def local_ray(ray_cluster):
    """The session's Ray (tests/conftest.py), started once for every Ray test."""
    yield


class _SharedPool:
    """One two-worker executor shared by the tests that only train (worker startup is the
    slow part); tests that start their own workers close it first to free the 2 CPUs."""

    def __init__(self) -> None:
        self.executor: RayExecutor | None = None

    def get(self) -> RayExecutor:
        if self.executor is None:
            self.executor = RayExecutor(workers=2, task_preload=["mnist1d"])
        return self.executor

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()
            self.executor = None


@pytest.fixture(scope="module")
def shared(local_ray):
    holder = _SharedPool()
    yield holder
    holder.close()


@pytest.fixture
def pool(shared: _SharedPool) -> RayExecutor:
    ex = shared.get()
    yield ex
    assert ex.in_flight == 0  # each test collects everything it submitted


@pytest.fixture
def free_cpus(shared: _SharedPool) -> None:
    shared.close()


def small_spec(block: str = "mlp", width: int = 16, **changes) -> ArchSpec:
    """A one-stage candidate of the default space that trains in milliseconds."""
    values = {
        "n_stages": 1,
        "connections": "chain",
        "activation": "relu",
        "norm": "none",
        "dropout": 0.0,
        "init": "he_uniform",
        "zero_init_residual": False,
        "trainable": "all",
        "head_pool": "avg",
        "optimizer": "adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
        "batch_size": 32,
        "grad_clip": 0.0,
        "stage1.block": block,
        "stage1.depth": 1,
        "stage1.width": width,
    }
    if block in ("conv", "residual"):
        values.update({"stage1.kernel": 3, "stage1.dilation": 1})
    values.update(changes)
    return SearchSpace.default().validate(ArchSpec(values))


@pytest.fixture
def specs() -> list[ArchSpec]:
    return [
        small_spec("mlp", 16),
        small_spec("conv", 8),
        small_spec("mlp", 32),
        small_spec("conv", 16),
    ]


def _job(trial_id: int, spec, fidelity: Fidelity = TINY, task: str = "mnist1d", **kw) -> TrialJob:
    return TrialJob(trial_id, spec.to_json(), task, fidelity, seed=trial_id, **kw)


def _drain(ex: RayExecutor, timeout: float = 120.0) -> list[tuple[TrialJob, TrialResult]]:
    done: list[tuple[TrialJob, TrialResult]] = []
    deadline = time.monotonic() + timeout
    while ex.in_flight and time.monotonic() < deadline:
        done += ex.wait(timeout=1.0)
    assert ex.in_flight == 0, "jobs still in flight after the deadline"
    return done


def _crash_first_times(marker_dir: str, crash_times: int):
    """A job function that kills its own worker the first ``crash_times`` times a trial runs."""

    def job_fn(job, device, reporter, worker, amp=False):
        marker = Path(marker_dir) / f"trial{job.trial_id}"
        runs = len(marker.read_text()) if marker.exists() else 0
        marker.write_text("x" * (runs + 1))
        if runs < crash_times:
            os.kill(os.getpid(), signal.SIGKILL)
        return TrialResult("ok", val_score=float(job.trial_id), worker=worker)

    return job_fn


def _stop_after_first_epoch(log_path: str):
    """A pruning reporter that stops every trial after its first epoch and logs its calls."""

    class StopAtOnce:
        def report(self, trial_id: int, epoch: int, value: float) -> bool:
            with open(log_path, "a") as f:
                f.write(f"report {trial_id} {epoch}\n")
            return True

        def finish(self, trial_id: int, result: TrialResult) -> None:
            with open(log_path, "a") as f:
                f.write(f"finish {trial_id} {result.status}\n")

    return StopAtOnce()


def test_bad_arguments_are_user_errors() -> None:
    with pytest.raises(AutoDLError, match="workers"):
        RayExecutor(workers=0)
    with pytest.raises(AutoDLError, match="cpus_per_trial"):
        RayExecutor(cpus_per_trial=0)
    with pytest.raises(AutoDLError, match="max_retries"):
        RayExecutor(max_retries=-1)


def test_ray_temp_dir_is_short_enough_for_sockets(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 80)
    path = ray_temp_dir(deep)
    try:
        # session_<date>_<time>_<usec>_<pid>/sockets/plasma_store must fit in 107 bytes
        assert (
            len(path) + len("/session_2025-01-01_00-00-00_000000_1234567/sockets/plasma_store")
            < 107
        )
        assert Path(path).is_dir()
    finally:
        os.rmdir(path)


def test_gpus_asked_for_without_gpus_is_a_user_error(local_ray) -> None:
    with pytest.raises(AutoDLError, match="no GPU"):
        RayExecutor(gpus_per_trial=0.5)


def test_search_loop_on_two_workers_returns_each_trial_once(pool, specs) -> None:
    assert pool.capacity == 2
    pending, done = [_job(i, s) for i, s in enumerate(specs)], []
    while pending or pool.in_flight:  # keep `capacity` trials in flight, as the runner does
        while pending and pool.in_flight < pool.capacity:
            pool.submit(pending.pop(0))
        done += pool.wait(timeout=60)
    assert sorted(j.trial_id for j, _ in done) == [0, 1, 2, 3]
    assert all(r.status == "ok" and 0.0 <= r.val_score <= 1.0 for _, r in done), done
    assert all(r.device == "cpu" for _, r in done)
    assert len({r.worker for _, r in done}) == 2  # both workers trained


def test_same_spec_and_seed_score_the_same_in_process_and_on_ray(pool, specs) -> None:
    import torch

    job = _job(7, specs[1])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the worker trains with one thread too
    try:
        local = run_job(job)
    finally:
        torch.set_num_threads(threads)
    pool.submit(job)
    [(_, remote)] = _drain(pool)
    assert local.status == remote.status == "ok"
    assert remote.val_score == local.val_score
    assert remote.test_score == local.test_score
    assert remote.train_loss == local.train_loss


def test_failure_statuses_come_back_through_ray(pool, specs, tmp_path: Path) -> None:
    nan_data = tmp_path / "nan.npz"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 1, 40)).astype(np.float32)  # shaped like MNIST-1D
    x[:, :, 3] = np.nan
    y = rng.integers(0, 10, size=64)
    np.savez(nan_data, x_train=x, y_train=y, x_test=x[:16], y_test=y[:16])
    jobs = {
        "nan": _job(0, specs[0], task=f"npz:{nan_data}"),
        # reaching its limit after training, a trial is cut: stopped with its scores
        "stopped": _job(1, specs[0], Fidelity(epochs=100_000, time_limit=0.5)),
        "error": _job(2, specs[0], task="no_such_task"),
        "ok": _job(3, specs[0]),
    }
    for job in jobs.values():
        pool.submit(job)
    done = {j.trial_id: r for j, r in _drain(pool)}
    for status, job in jobs.items():
        assert done[job.trial_id].status == status, done[job.trial_id]
    assert "no_such_task" in done[2].message
    assert done[0].val_score is None
    assert done[1].cut is True and done[1].val_score is not None and done[1].epochs_run >= 0


@pytest.mark.slow  # starts three worker processes one after the other
def test_killed_worker_is_replaced_and_its_trial_ends_worker_lost(free_cpus, specs) -> None:
    long_job = _job(0, specs[0], Fidelity(epochs=100_000, max_train_samples=64, time_limit=60))
    with RayExecutor(workers=1, max_retries=1) as ex:
        ex.submit(long_job)
        ex.submit(_job(1, specs[1]))  # queued behind the doomed trial: must still run once
        killed, done = [], []
        deadline = time.monotonic() + 120
        while ex.in_flight and time.monotonic() < deadline:
            running = [w for w in ex.workers() if w["trial_id"] == 0 and w["pid"] not in killed]
            if running:
                os.kill(running[0]["pid"], signal.SIGKILL)  # a real crash, not a polite stop
                killed.append(running[0]["pid"])
            done += ex.wait(timeout=0.5)
        assert ex.capacity == 1 and len(ex.workers()) == 1  # replaced, not added
    counts = Counter(j.trial_id for j, _ in done)
    assert counts == {0: 1, 1: 1}  # nothing lost, nothing duplicated
    results = {j.trial_id: r for j, r in done}
    assert len(killed) == 2  # the first run and its one retry
    assert results[0].status == "worker_lost"
    assert "died 2 time(s)" in results[0].message
    assert results[0].train_seconds > 0  # the seconds its two dead workers ran it
    assert results[1].status == "ok"


@pytest.mark.slow  # starts three worker processes
def test_trial_retried_after_worker_death_succeeds(free_cpus, specs, tmp_path: Path) -> None:
    job_fn = _crash_first_times(str(tmp_path), crash_times=1)
    with RayExecutor(workers=1, max_retries=2, job_fn=job_fn) as ex:
        for i in range(2):
            ex.submit(_job(i, specs[0]))
        done = _drain(ex)
    assert sorted(j.trial_id for j, _ in done) == [0, 1]
    assert all(r.status == "ok" and r.val_score == j.trial_id for j, r in done)
    # each trial ran exactly twice: the crash and the retry
    assert {p.name: len(p.read_text()) for p in tmp_path.iterdir()} == {
        f"trial{i}": 2 for i in range(2)
    }


def test_pruning_reporter_runs_in_one_actor_and_hears_finish(
    free_cpus, specs, tmp_path: Path
) -> None:
    log = tmp_path / "reporter.log"
    reporter = _stop_after_first_epoch(str(log))
    with RayExecutor(workers=1, reporter=reporter) as ex:
        ex.submit(_job(5, specs[0], Fidelity(epochs=3, max_train_samples=64), prune=True))
        [(_, result)] = _drain(ex)
    assert result.status == "pruned" and result.epochs_run == 1
    assert log.read_text().splitlines() == ["report 5 1", "finish 5 pruned"]


def _hang():
    """A job function that never returns (a trial stuck inside one call)."""

    def job_fn(job, device, reporter, worker, amp=False):
        time.sleep(3600)

    return job_fn


def test_trial_running_past_twice_its_limit_is_ended_from_the_driver(free_cpus, specs) -> None:
    ex = RayExecutor(workers=1, job_fn=_hang())
    try:
        before = {w["pid"] for w in ex.workers()}
        ex.submit(_job(0, specs[0], Fidelity(epochs=1, time_limit=1.0)))
        (job, result), *_ = _drain(ex, timeout=60)
        assert result.status == "timeout" and "ended from the driver" in result.message
        # not before twice its limit and the grace a cut trial has to score (however late the
        # driver got to it on a busy machine)
        from autodlgym.training.limits import grace

        assert result.train_seconds >= 2.0 * 1.0 + grace(1.0)
        after = {w["pid"] for w in ex.workers()}
        assert len(after) == 1 and not (after & before)  # its worker was replaced
    finally:
        ex.close()


def test_two_workers_promote_the_best_of_a_rung(free_cpus, tmp_path: Path) -> None:
    from autodlgym import load_results
    from autodlgym.runner import RunConfig, run_search

    space = {
        "base": "default", "max_stages": 1,
        "globals": {"n_stages": {"options": [1]}},
        "stage": {"block": {"options": ["mlp", "conv"]}, "depth": {"options": [1]},
                  "width": {"options": [8, 16, 32]}},
    }  # fmt: skip
    cfg = RunConfig(
        out=str(tmp_path / "run"), space=space, trials=8, epochs=3, max_train_samples=300,
        pruner="asha", workers=2, seed=2,
    )  # fmt: skip
    run_search(cfg, progress=False)
    df = load_results(cfg.out).sort_values("trial_id")
    first = df[df.max_examples == 100]  # rung 0: the first batches, a third of 300 examples
    promoted = df[df.max_examples.isna()]
    assert len(first) >= 3 and len(promoted) >= 1
    for _, row in promoted[promoted.epochs == 1].iterrows():
        # It was among the top third of the first-rung results the driver had collected when it
        # promoted it. With two workers that is not "the trials launched before it" (one of
        # those may still have been training, and score higher later): it is some prefix, in
        # the order the driver recorded them (finished_at), of those recorded before this one.
        known = first[first.finished_at < row.finished_at].sort_values("finished_at")
        own = known[known.arch_id == row.arch_id].val_score.iloc[0]
        own_at = known.arch_id.tolist().index(row.arch_id)
        assert any(
            (seen.val_score <= own).sum() >= 3 * (seen.val_score > own).sum() + 1
            for seen in (known.iloc[: k + 1] for k in range(own_at, len(known)))
        ), known[["trial_id", "arch_id", "val_score"]]
