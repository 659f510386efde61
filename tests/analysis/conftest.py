"""Hand-made runs for the analysis tests: real stores filled through ResultStore.append."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from autodlgym.results.store import ResultStore
from autodlgym.searchspace.space import SearchSpace
from autodlgym.trial import OK, PRUNED, Fidelity, TrialResult


def _trial_result(
    status: str,
    val: float | None = None,
    *,
    epochs: int = 3,
    params: int = 1000,
    train_seconds: float = 1.0,
    hanin: float = 0.1,
    gains: Sequence[float] = (1.0, 2.0),
    message: str = "",
) -> TrialResult:
    """A result in the trainer's format; ``ok`` and ``pruned`` trials get a curve that
    rises to ``val`` over ``epochs`` epochs."""
    has_curve = status in (OK, PRUNED) and val is not None
    curve = (
        [
            {"epoch": e, "train_loss": 1.0 / e, "val_score": val * e / epochs, "seconds": 0.1 * e}
            for e in range(1, epochs + 1)
        ]
        if has_curve
        else []
    )
    return TrialResult(
        status=status,
        val_score=val if status == OK else None,
        test_score=val - 0.01 if status == OK and val is not None else None,
        params=params,
        flops=10 * params,
        train_seconds=train_seconds,
        eval_seconds=0.5,
        epochs_run=len(curve),
        curve=curve,
        diagnostics={
            "hanin": hanin,
            "gains": list(gains),
            "grad_norm_total": 1.0 + hanin,
            "naswot": 100.0 * hanin,
        },
        message=message or ("" if status in (OK, PRUNED) else f"{status}: it broke"),
    )


@pytest.fixture
def trial_result() -> Callable[..., TrialResult]:
    """``trial_result(status, val=None, *, epochs=3, params=1000, train_seconds=1.0,
    hanin=0.1, gains=(1.0, 2.0), message="")``: a result in the trainer's format."""
    return _trial_result


RunMaker = Callable[..., Path]


@pytest.fixture
def make_run(tmp_path: Path, space: SearchSpace) -> RunMaker:
    """``make_run(results, searcher="random", seed=0, name="run", specs=None)``: a run
    directory holding ``results`` (TrialResults, in trial order) on specs sampled from the
    test space (or ``specs``)."""

    def make(
        results: Sequence[TrialResult],
        searcher: str = "random",
        seed: int = 0,
        name: str = "run",
        specs: Sequence | None = None,
        task: str = "digits",
        **config,
    ) -> Path:
        run = tmp_path / name
        rng = np.random.default_rng(seed)
        with ResultStore(run) as store:
            store.save_config(
                {
                    "config_version": 1,
                    "task": task,
                    "searcher": searcher,
                    "seed": seed,
                    "space": space.to_config(),
                    "trials": len(results),
                    "epochs": 3,
                    **config,
                }  # fmt: skip
            )
            for i, r in enumerate(results):
                spec = specs[i] if specs is not None else space.sample(rng)
                store.append(i, spec, Fidelity(epochs=3), seed, r)
        return run

    return make
