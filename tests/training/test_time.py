"""The trainer's clock: time limits over the whole trial, the search's deadline, validation
checks below one epoch and step budgets."""

from __future__ import annotations

import math

import pytest

from autodlgym.searchspace.space import SearchSpace
from autodlgym.training.trainer import train_and_score
from autodlgym.trial import OK, STOPPED, TIMEOUT, Fidelity

SPEC = {
    "n_stages": 1, "stage1.block": "mlp", "stage1.depth": 1, "stage1.width": 16,
    "connections": "chain", "activation": "relu", "norm": "none", "dropout": 0.0,
    "init": "he_uniform", "zero_init_residual": False, "trainable": "all", "head_pool": "avg",
    "optimizer": "adam", "lr": 1e-2, "weight_decay": 0.0, "batch_size": 32, "grad_clip": 0.0,
}  # fmt: skip


@pytest.fixture(scope="module")
def spec():
    spec = SearchSpace.default().validate(SPEC)
    # the first trial of a process loads the data and imports the FLOP counter: not timed here
    train_and_score(spec, "digits", Fidelity(epochs=1, max_steps=1), seed=0)
    return spec


def test_trial_cut_at_its_limit_keeps_its_seconds_epochs_and_scores(spec, fake_clock):
    # time passes with every reading (a few dozen per batch); the cut falls inside an epoch
    fake_clock.tick = 0.0007
    t0 = fake_clock.t
    result = train_and_score(spec, "digits", Fidelity(epochs=100_000, time_limit=1.5), seed=0)
    elapsed = fake_clock.t - t0
    assert result.status == STOPPED and result.cut is True
    assert "cut: time limit of 1.5 s" in result.message and result.limit_seconds == 1.5
    # it scored what it learned: validation where it stopped, then test
    assert result.val_score == result.curve[-1]["val_score"] and result.test_score is not None
    # it trained for most of its limit, and says so
    assert 0 < result.train_seconds <= elapsed
    assert result.eval_seconds > 0  # its validation checks, measured as they ran
    batches = math.ceil(1257 / 32)  # digits' training set, batch 32
    whole = [p["epoch"] for p in result.curve if p["epoch"] == int(p["epoch"])]
    assert result.epochs_run >= 1 and whole == list(range(1, result.epochs_run + 1))
    # the last point is where it was cut, a fraction into the next epoch
    assert result.curve[-1]["epoch"] == pytest.approx(result.steps_run / batches, abs=1e-6)
    assert all(0 <= p["val_score"] <= 1 for p in result.curve)
    assert result.steps_run >= result.epochs_run * batches
    assert result.steps_run < (result.epochs_run + 1) * batches


def _advance_at_each_check(clock, seconds):
    """A callback that lets ``seconds`` pass at each validation check (and has no opinion)."""

    def callback(check, value):
        clock.advance(seconds)

    return callback


def test_time_limit_ends_the_trial_at_the_next_batch(spec, fake_clock):
    # time passes only at the checks (4 per epoch of 40 batches): 1 s each, limit 2.5 s
    result = train_and_score(
        spec, "digits", Fidelity(epochs=5, time_limit=2.5), seed=0, checks_per_epoch=4,
        callback=_advance_at_each_check(fake_clock, 1.0),
    )  # fmt: skip
    # it had trained, so it is cut (stopped, with what it learned), not a bare timeout
    assert result.status == STOPPED and result.cut is True
    assert "cut: time limit of 2.5 s reached in epoch 1 after 30 steps" in result.message
    # the third check (after batch 30) passed the limit; batch 31 never ran
    assert [p["epoch"] for p in result.curve] == [0.25, 0.5, 0.75]
    assert result.steps_run == 30 and result.epochs_run == 0
    assert [p["seconds"] for p in result.curve] == [0.0, 1.0, 2.0]
    assert result.val_score == result.curve[-1]["val_score"] and result.test_score is not None


def test_time_limit_covers_building_and_diagnostics(spec, fake_clock):
    fake_clock.tick = 0.01
    result = train_and_score(spec, "digits", Fidelity(epochs=1, time_limit=1e-9), seed=0)
    assert result.status == TIMEOUT
    assert result.epochs_run == 0 and result.steps_run == 0 and result.curve == []
    assert "before building" in result.message


def test_deadline_stops_at_the_next_batch_keeping_the_scores_reached(spec, fake_clock):
    result = train_and_score(
        spec, "digits", Fidelity(epochs=100_000), seed=0, deadline=fake_clock.wall() + 2.5,
        checks_per_epoch=4, callback=_advance_at_each_check(fake_clock, 1.0),
    )  # fmt: skip
    assert result.status == STOPPED and "time budget" in result.message
    assert "in epoch 1" in result.message
    # stopped at the batch after the third check, not at the end of its epoch
    assert [p["epoch"] for p in result.curve] == [0.25, 0.5, 0.75]
    assert result.steps_run == 30 and result.epochs_run == 0
    assert result.val_score == result.curve[-1]["val_score"]  # the last check it finished
    # it scored the model it reached: test on the weights 30 steps made, as a trial told to
    # stop after 30 steps measures it
    same = train_and_score(
        spec, "digits", Fidelity(epochs=100_000, max_steps=30), seed=0, checks_per_epoch=4
    )
    assert same.steps_run == 30 and same.val_score == result.val_score
    assert result.test_score == same.test_score


def test_deadline_with_time_passing_per_batch_keeps_whole_epochs(spec, fake_clock):
    fake_clock.tick = 0.0005  # a few dozen readings per batch: several epochs before 1.5 s
    t0 = fake_clock.t
    result = train_and_score(
        spec, "digits", Fidelity(epochs=100_000), seed=0, deadline=fake_clock.wall() + 1.5
    )
    elapsed = fake_clock.t - t0
    assert result.status == STOPPED and "time budget" in result.message
    # a check after each whole epoch, then the model it reached scored where it stopped
    epochs = [p["epoch"] for p in result.curve]
    assert epochs[:-1] == list(range(1, len(epochs)))
    assert result.epochs_run == math.floor(epochs[-1]) >= 1
    assert "scored the model it reached" in result.message
    assert result.val_score == result.curve[-1]["val_score"]
    assert result.test_score is not None
    assert 0 < result.train_seconds <= elapsed


def test_checks_below_one_epoch_do_not_change_the_scores(spec):
    once = train_and_score(spec, "digits", Fidelity(epochs=2), seed=3)
    four = train_and_score(spec, "digits", Fidelity(epochs=2), seed=3, checks_per_epoch=4)
    assert once.status == four.status == OK
    assert [p["epoch"] for p in four.curve] == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    assert four.val_score == once.val_score and four.test_score == once.test_score
    assert [p["val_score"] for p in four.curve[3::4]] == [p["val_score"] for p in once.curve]
    assert four.steps_run == once.steps_run == 2 * math.ceil(1257 / 32)


def test_callback_hears_each_check_and_can_prune_below_one_epoch(spec):
    heard = []

    def callback(check, value):
        heard.append(check)
        return check < 2

    result = train_and_score(
        spec, "digits", Fidelity(epochs=3), seed=0, callback=callback, checks_per_epoch=4
    )
    assert result.status == "pruned" and heard == [1, 2]
    assert result.epochs_run == 0 and result.curve[-1]["epoch"] == 0.5
    assert result.test_score is not None


def test_max_steps_stops_inside_an_epoch(spec):
    result = train_and_score(spec, "digits", Fidelity(epochs=5, max_steps=7), seed=0)
    assert result.status == OK and result.steps_run == 7 and result.epochs_run == 0
    assert len(result.curve) == 1
    assert result.curve[0]["epoch"] == pytest.approx(7 / math.ceil(1257 / 32), abs=1e-6)
    assert result.val_score == result.curve[0]["val_score"]


def test_progress_is_called_while_training(spec, fake_clock):
    fake_clock.tick = 0.01
    calls = []
    train_and_score(
        spec,
        "digits",
        Fidelity(epochs=100_000, time_limit=1.2),
        seed=0,
        progress=lambda e, s: calls.append((e, s)),
    )
    assert len(calls) >= 2
    assert all(b[0] > a[0] and b[1] > a[1] for a, b in zip(calls, calls[1:]))


def test_a_timeout_before_training_records_the_seconds_it_ran(spec, monkeypatch, fake_clock):
    """A trial ended by its limit while counting FLOPs spent its time there: the store must
    not be told 0 s (the compute report sums these)."""
    import autodlgym.training.trainer as trainer

    count = trainer._count_flops

    def slow_count(*args, **kwargs):
        fake_clock.advance(0.3)
        return count(*args, **kwargs)

    monkeypatch.setattr(trainer, "_count_flops", slow_count)
    result = train_and_score(spec, "digits", Fidelity(epochs=1, time_limit=0.1), seed=0)
    assert result.status == TIMEOUT and "while counting FLOPs" in result.message
    assert result.steps_run == 0 and result.curve == [] and result.eval_seconds == 0.0
    # it reached its 0.1 s limit, and the FLOP count took the 0.3 s it ran
    assert result.train_seconds == pytest.approx(0.3)


def test_an_error_records_the_seconds_spent_before_it(spec, monkeypatch, fake_clock):
    import autodlgym.nn.build as build

    def broken(*args, **kwargs):
        fake_clock.advance(0.2)
        raise RuntimeError("this block cannot be built")

    monkeypatch.setattr(build, "build_model", broken)
    result = train_and_score(spec, "digits", Fidelity(epochs=1), seed=0)
    assert result.status == "error" and "cannot be built" in result.message
    assert result.train_seconds == pytest.approx(0.2) and result.eval_seconds == 0.0
