"""Hand-made trials for the results and analysis tests (no training), loaded by conftest.py."""

from __future__ import annotations

import pytest

from autodlgym.searchspace.space import SearchSpace
from autodlgym.trial import OK, Fidelity, TrialResult

SPACE_CONFIG = {
    "base": "default",
    "max_stages": 2,
    "globals": {
        "n_stages": {"options": [1, 2]},
        "lr": {"options": [1e-3, 1e-2]},
    },
    "stage": {"width": {"options": [8, 16]}},
}


@pytest.fixture(scope="session")
def space() -> SearchSpace:
    return SearchSpace.from_config(SPACE_CONFIG)


def _make_result(i: int, status: str = OK, epochs: int = 3) -> TrialResult:
    """A deterministic result for trial ``i`` (its scores encode ``i``)."""
    ok = status == OK
    return TrialResult(
        status=status,
        val_score=0.5 + i / 1000 if ok else None,
        test_score=0.4 + i / 1000 if ok else None,
        train_loss=1.0 / (i + 1) if ok else None,
        params=1000 + i,
        trainable_params=900 + i,
        flops=10_000 + i,
        train_seconds=0.25 * i,
        eval_seconds=0.01,
        peak_rss_mb=None,
        peak_gpu_mb=None,
        epochs_run=epochs if ok else 1,
        curve=[
            {"epoch": e, "train_loss": 1.0 / e, "val_score": 0.1 * e, "seconds": 0.5 * e}
            for e in range(1, epochs + 1)
        ]
        if ok
        else [],
        diagnostics={"jacobian_norm": 1.5 + i, "sum_inv_width": 0.25, "gain": [1.0, 0.9, 0.8]},
        message="" if ok else f"RuntimeError: bad candidate {i % 2}",
        device="cpu",
        worker=f"pid{i}",
    )


@pytest.fixture
def make_result():
    """``make_result(i, status="ok", epochs=3)``: a deterministic TrialResult for trial ``i``."""
    return _make_result


@pytest.fixture
def fidelity() -> Fidelity:
    return Fidelity(epochs=3)
