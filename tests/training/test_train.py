"""train_and_score: every task trains at a tiny fidelity, runs are reproducible and leave global
state alone, and each way a candidate can fail ends with its own status."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.tasks import get_task, list_tasks
from autodlgym.training.trainer import train_and_score
from autodlgym.trial import ERROR, NAN, OK, PRUNED, TIMEOUT, Fidelity

TINY = Fidelity(epochs=1, max_train_samples=256)

TRAINING = {
    "optimizer": "adam",
    "lr": 1e-2,
    "weight_decay": 0.0,
    "batch_size": 64,
    "grad_clip": 0.0,
    "activation": "relu",
    "norm": "none",
    "dropout": 0.0,
    "init": "he_normal",
    "zero_init_residual": False,
    "trainable": "all",
    "connections": "chain",
    "head_pool": "avg",
}


def cnn(**changes) -> ArchSpec:
    spec = {
        "n_stages": 1,
        "stage1.block": "conv",
        "stage1.depth": 1,
        "stage1.width": 16,
        "stage1.kernel": 3,
        "stage1.dilation": 1,
        **TRAINING,
    }
    return SearchSpace.default().validate({**spec, **changes})


def mlp(**changes) -> ArchSpec:
    spec = {"n_stages": 1, "stage1.block": "mlp", "stage1.depth": 2, "stage1.width": 32, **TRAINING}
    return SearchSpace.default().validate({**spec, **changes})


def _task(name):
    return get_task(name, n=600) if name == "adding" else get_task(name)


def _npz_task(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "toy.npz", x_train=x[:200], y_train=y[:200], x_test=x[200:], y_test=y[200:])
    return get_task(f"npz:{tmp_path / 'toy.npz'}")


@pytest.mark.parametrize("name", [n for n, _ in list_tasks(tabular=False) if ":" not in n])
@pytest.mark.parametrize("make_spec", [mlp, cnn], ids=["mlp", "conv"])
def test_tiny_fidelity_trains_on_every_task(name, make_spec):
    task = _task(name)
    result = train_and_score(make_spec(), task, TINY, seed=0)
    assert result.status == OK, result.message
    assert result.epochs_run == 1 and len(result.curve) == 1
    assert set(result.curve[0]) == {"epoch", "train_loss", "val_score", "seconds"}
    assert result.val_score == result.curve[0]["val_score"]
    assert math.isfinite(result.val_score) and math.isfinite(result.test_score)
    assert math.isfinite(result.train_loss) and result.train_loss > 0
    if task.metric == "accuracy":
        assert 0.0 <= result.val_score <= 1.0
    assert result.params == result.trainable_params > 0
    assert result.flops is None or result.flops > 0
    assert result.train_seconds > 0 and result.eval_seconds > 0
    assert result.peak_rss_mb > 0 and result.peak_gpu_mb is None and result.device == "cpu"


@pytest.mark.parametrize("mode", ["head", "fraction_0.1"])
def test_partly_trainable_counts(mode):
    result = train_and_score(
        mlp(trainable=mode, optimizer="adamw", weight_decay=1e-2), "digits", TINY
    )
    assert result.status == OK, result.message
    assert 0 < result.trainable_params < result.params


def test_learns_on_digits():
    result = train_and_score(mlp(), "digits", Fidelity(epochs=3), seed=0, diagnostics=False)
    assert result.status == OK and result.val_score > 0.5  # chance is 0.1


def test_npz_task_trains(tmp_path):
    result = train_and_score(mlp(), _npz_task(tmp_path), 2, seed=0)
    assert result.status == OK and result.epochs_run == 2


def _without_seconds(curve):
    return [{k: v for k, v in point.items() if k != "seconds"} for point in curve]


def test_same_seed_same_scores_and_global_state_untouched():
    spec = cnn(dropout=0.1)
    fid = Fidelity(epochs=2, max_train_samples=256)
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    a = train_and_score(spec, "mnist1d", fid, seed=3)
    assert torch.equal(before, torch.get_rng_state())
    b = train_and_score(dict(spec), "mnist1d", fid, seed=3)
    c = train_and_score(spec, "mnist1d", fid, seed=4)
    assert a.status == b.status == c.status == OK
    assert (a.val_score, a.test_score, a.train_loss) == (b.val_score, b.test_score, b.train_loss)
    assert _without_seconds(a.curve) == _without_seconds(b.curve)
    assert _without_seconds(a.curve) != _without_seconds(c.curve)


def test_diagnostics_do_not_change_scores():
    spec = cnn(norm="batch", dropout=0.1)
    with_diag = train_and_score(spec, "mnist1d", TINY, seed=0, diagnostics=True)
    without = train_and_score(spec, "mnist1d", TINY, seed=0, diagnostics=False)
    assert with_diag.diagnostics and not without.diagnostics
    assert _without_seconds(with_diag.curve) == _without_seconds(without.curve)
    assert with_diag.test_score == without.test_score


def test_batch_size_one_trains_every_example():
    spec = {**mlp(), "batch_size": 1}
    result = train_and_score(spec, "digits", Fidelity(1, max_train_samples=5), seed=0)
    assert result.status == OK and math.isfinite(result.train_loss)


def test_subsample_and_batch_size_cap():
    # batch size above the subset size is capped: one step per epoch, still trains
    result = train_and_score(
        mlp(batch_size=256), "mnist1d", Fidelity(2, max_train_samples=40), seed=0
    )
    assert result.status == OK and result.epochs_run == 2


def test_divergence_is_nan():
    space = SearchSpace.from_config({"base": "default", "globals": {"lr": {"options": [1e6]}}})
    spec = space.validate({**mlp(optimizer="sgd", momentum=0.9), "lr": 1e6})
    result = train_and_score(spec, get_task("adding", n=600), Fidelity(epochs=3), seed=0)
    assert result.status == NAN, (result.status, result.message)
    assert result.val_score is None and result.test_score is None
    assert "non-finite" in result.message and "\n" not in result.message


def test_tiny_time_limit_is_timeout():
    result = train_and_score(mlp(), "digits", Fidelity(epochs=50, time_limit=1e-6), seed=0)
    assert result.status == TIMEOUT and "time limit" in result.message
    assert result.val_score is None


def test_unbuildable_spec_is_error_not_an_exception():
    spec = mlp().replace(**{"stage1.block": "no_such_block"})
    result = train_and_score(spec, "digits", TINY, seed=0)
    assert result.status == ERROR
    assert result.message and "\n" not in result.message


def test_unknown_optimizer_is_error():
    result = train_and_score(mlp().replace(optimizer="lbfgs2"), "digits", TINY, seed=0)
    assert result.status == ERROR and "optimizer" in result.message


def test_callback_false_prunes_after_first_epoch():
    seen = []

    def callback(epoch, value):
        seen.append((epoch, value))
        return False

    result = train_and_score(mlp(), "digits", Fidelity(epochs=4), seed=0, callback=callback)
    assert result.status == PRUNED and result.epochs_run == 1
    assert seen == [(1, result.val_score)]
    assert result.val_score is not None and result.test_score is not None


def test_callback_returning_true_or_none_continues():
    calls = []
    result = train_and_score(
        mlp(),
        "digits",
        Fidelity(epochs=3, max_train_samples=128),
        seed=0,
        callback=lambda e, v: calls.append(e) or (None if e == 1 else True),
    )
    assert result.status == OK and calls == [1, 2, 3]
    assert [p["epoch"] for p in result.curve] == [1, 2, 3]
