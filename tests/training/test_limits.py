"""Adaptive time limits: the process's measured speed, a trial's limit from its FLOPs, trials
cut at their limit keeping their scores, and the limit checked inside a forward pass. Time
comes from a fake clock (``trainer._now``), so nothing here depends on the machine's speed."""

from __future__ import annotations

import math
import statistics

import pytest

import autodlgym.training.trainer as trainer
from autodlgym.searchspace.cost import estimate_cost
from autodlgym.searchspace.space import SearchSpace
from autodlgym.tasks import get_task
from autodlgym.training import limits
from autodlgym.training.limits import Throughput, trial_limit
from autodlgym.training.trainer import train_and_score
from autodlgym.trial import STOPPED, TIMEOUT, Fidelity

SPEC = {
    "n_stages": 1, "stage1.block": "mlp", "stage1.depth": 1, "stage1.width": 16,
    "connections": "chain", "activation": "relu", "norm": "none", "dropout": 0.0,
    "init": "he_uniform", "zero_init_residual": False, "trainable": "all", "head_pool": "avg",
    "optimizer": "adam", "lr": 1e-2, "weight_decay": 0.0, "batch_size": 32, "grad_clip": 0.0,
}  # fmt: skip
DIGITS_TRAIN = 1257
BATCHES = math.ceil(DIGITS_TRAIN / 32)


class FakeClock:
    """Every read advances the time by ``step`` seconds."""

    def __init__(self, step: float) -> None:
        self.t = 0.0
        self.step = step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


@pytest.fixture
def spec():
    return SearchSpace.default().validate(SPEC)


@pytest.fixture
def throughput(monkeypatch):
    """A process throughput made by hand (restored afterwards)."""
    tp = Throughput(step_seconds=1e-4, flops_per_second=1e12)
    tp.ratios.extend([2.0, 4.0, 3.0])
    monkeypatch.setattr(limits, "_PROCESS", tp)
    return tp


def test_slowdown_is_the_median_of_measured_over_predicted_seconds():
    tp = Throughput(step_seconds=0.01, flops_per_second=1e6)
    assert tp.slowdown() == limits.PRIOR_SLOWDOWN  # nothing measured yet
    tp.observe(steps=10, flops=1e6, seconds=2.2)  # predicted 0.1 + 1.0 = 1.1 s
    tp.observe(steps=0, flops=1e6, seconds=5.0)  # no steps: not a measurement
    tp.observe(steps=20, flops=0, seconds=0.1)  # predicted 0.2 s
    tp.observe(steps=10, flops=3e6, seconds=12.4)  # predicted 3.1 s
    assert list(tp.ratios) == pytest.approx([2.0, 0.5, 4.0])
    assert tp.slowdown() == pytest.approx(2.0)
    assert tp.predict(5, 2e6) == pytest.approx(2.0 * (5 * 0.01 + 2.0))
    assert tp.flops_per_second_now == pytest.approx(1e6 / 2.0)
    for _ in range(limits.WINDOW):  # only the last WINDOW stretches count
        tp.observe(steps=10, flops=1e6, seconds=1.1)
    assert tp.slowdown() == pytest.approx(1.0)


def test_trial_limit_is_a_margin_over_the_predicted_seconds_with_a_floor_and_a_ceiling():
    tp = Throughput(step_seconds=1e-3, flops_per_second=1e9)
    tp.ratios.append(2.0)
    flops, train, steps, scored = 1e6, 10_000, 100, 3_000
    predicted = 2.0 * ((steps + limits.FIXED_STEPS) * 1e-3 + 1e6 * (3 * train + scored) / 1e9)
    assert trial_limit(tp, flops, train, steps, scored, floor=1.0, margin=4.0) == pytest.approx(
        4.0 * predicted
    )
    assert trial_limit(tp, flops, train, steps, scored, floor=1e3, margin=4.0) == 1e3
    assert trial_limit(tp, flops, train, steps, scored, ceiling=50.0, floor=1.0) == 50.0
    # before anything was measured the floor is higher (a first trial's one-off costs)
    cold = Throughput(step_seconds=1e-3, flops_per_second=1e9)
    assert trial_limit(cold, 1, 1, 1, 1, floor=2.0) == 2.0 * limits.COLD_FLOOR_FACTOR
    # a busier machine (a larger measured slowdown) gives a longer limit
    tp.ratios.extend([6.0, 6.0])
    assert trial_limit(tp, flops, train, steps, scored, floor=1.0, margin=4.0) == pytest.approx(
        4.0 * predicted * 3
    )


def test_adaptive_limit_follows_the_process_speed_and_a_cut_trial_keeps_its_scores(
    spec, throughput, monkeypatch
):
    task = get_task("digits")
    train_and_score(spec, task, Fidelity(epochs=1, max_steps=1), seed=0)  # data loaded
    monkeypatch.setattr(trainer, "_now", FakeClock(1e-3))
    monkeypatch.setattr(limits, "LIMIT_FLOOR", 0.0)
    ratios_before = list(throughput.ratios)
    fidelity = Fidelity(epochs=20)
    result = train_and_score(spec, task, fidelity, seed=0, adaptive_limit=True)
    # the limit: the margin over what 20 epochs of this spec's FLOPs take at the measured speed
    flops = estimate_cost(spec, task.io).flops
    scored = 20 * (len(task.load().y_val)) + len(task.load().y_test)
    predicted = statistics.median(ratios_before) * (
        (20 * BATCHES + limits.FIXED_STEPS) * 1e-4 + flops * (3 * 20 * DIGITS_TRAIN + scored) / 1e12
    )
    assert result.limit_seconds == pytest.approx(limits.LIMIT_MARGIN * predicted)
    # the fake clock runs far slower than predicted: the trial is cut, keeping what it learned
    assert result.status == STOPPED and result.cut is True and result.message.startswith("cut:")
    assert BATCHES < result.steps_run < 20 * BATCHES
    assert result.epochs_run == sum(p["epoch"] == int(p["epoch"]) for p in result.curve)
    assert result.curve[-1]["epoch"] == pytest.approx(result.steps_run / BATCHES, abs=1e-6)
    assert result.val_score == result.curve[-1]["val_score"] and result.test_score is not None
    # each stretch of training it did was measured (the whole epochs, then the cut one)
    assert len(throughput.ratios) == len(ratios_before) + result.epochs_run + 1
    assert result.throughput == pytest.approx(1e12 / statistics.median(throughput.ratios))


def test_a_trial_that_trained_nothing_by_its_limit_is_a_timeout(spec, monkeypatch):
    monkeypatch.setattr(trainer, "_now", FakeClock(1.0))
    result = train_and_score(spec, "digits", Fidelity(epochs=1, time_limit=3.0), seed=0)
    assert result.status == TIMEOUT and result.cut is None and result.steps_run == 0
    assert result.val_score is None and result.limit_seconds == 3.0


def test_limit_is_checked_inside_a_long_diagnostic(spec, monkeypatch):
    """A diagnostic (or a batch, or an evaluation) that never ends on its own stops at the
    next module's forward pass once the limit is reached."""

    def endless(model, batch, loss, seed):
        while True:
            batch.forward(model)

    monkeypatch.setattr(trainer, "_diagnose", endless)
    monkeypatch.setattr(trainer, "_now", FakeClock(0.01))
    result = train_and_score(spec, "digits", Fidelity(epochs=1, time_limit=5.0), seed=0)
    assert result.status == TIMEOUT
    assert "during the initialisation diagnostics" in result.message


def test_forward_hooks_stop_a_forward_pass_and_are_removed_after_the_trial(spec):
    import torch

    from autodlgym.nn.build import build_model

    model = build_model(spec, get_task("digits").io)
    clock = trainer._Clock(1.0, None, None)
    hooks = trainer._install_checks(model, clock)
    x = torch.zeros(2, *get_task("digits").io.shape)
    model(x)  # within the limit
    clock.limit_at = -math.inf
    with pytest.raises(trainer._TimeLimit):
        model(x)
    for h in hooks:
        h.remove()
    model(x)
    # a trained model comes back without the trainer's hooks
    _, trained = trainer.train_model(spec, "digits", Fidelity(epochs=1, time_limit=60.0))
    assert all(not m._forward_pre_hooks for m in trained.modules())


def test_evaluation_batches_shrink_for_large_models():
    assert trainer.eval_batch(None) == trainer.EVAL_BATCH
    assert trainer.eval_batch(1000) == trainer.EVAL_BATCH
    assert trainer.eval_batch(trainer.EVAL_FLOPS // 10) == 10
    assert trainer.eval_batch(trainer.EVAL_FLOPS * 100) == 1


def test_calibration_measures_positive_speeds():
    tp = limits.calibrate(seconds=0.005)
    assert tp.step_seconds > 0 and tp.flops_per_second > 0 and not tp.ratios
