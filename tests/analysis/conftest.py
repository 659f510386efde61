"""Hand-made runs for the analysis tests: real stores filled through ResultStore.append."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from autodlgym.results.store import ResultStore
from autodlgym.searchspace.space import SearchSpace
from autodlgym.trial import OK, PRUNED, STOPPED, Fidelity, TrialResult


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
    """A result in the trainer's format; ``ok``, ``pruned`` and ``stopped`` trials get a
    curve that rises to ``val`` over ``epochs`` epochs (the epochs a stopped trial ran before
    the deadline); a stopped trial keeps ``val`` as its score, without a test score."""
    has_curve = status in (OK, PRUNED, STOPPED) and val is not None
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
        val_score=val if status in (OK, STOPPED) else None,
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
    """``make_run(results, searcher="random", seed=0, name="run", specs=None,
    fidelities=None)``: a run directory holding ``results`` (TrialResults, in trial order) on
    specs sampled from the test space (or ``specs``), each at 3 epochs (or ``fidelities``)."""

    def make(
        results: Sequence[TrialResult],
        searcher: str = "random",
        seed: int = 0,
        name: str = "run",
        specs: Sequence | None = None,
        task: str = "digits",
        fidelities: Sequence[Fidelity] | None = None,
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
                fidelity = fidelities[i] if fidelities is not None else Fidelity(epochs=3)
                store.append(i, spec, fidelity, seed, r)
        return run

    return make


#: The hand-made multi-fidelity run of :func:`ranked_run`, one row per trial:
#: (architecture, epochs, max_train_samples, status, val_score, params). Architecture A is
#: evaluated 3 times at two fidelities (best score 0.80 at the lower one, 0.65 at the
#: higher), B twice (0.70 on 100 examples, 0.50 on all of them at the same epochs); E was
#: stopped by the deadline at 0.90, above every ok trial; F's pruned 0.95 never counts.
RANKED_TRIALS = [
    ("A", 1, None, OK, 0.80, 1000),
    ("B", 1, None, OK, 0.50, 500),
    ("C", 3, None, OK, 0.55, 2000),
    ("A", 3, None, OK, 0.60, 1000),
    ("D", 1, None, "error", None, 100),
    ("A", 3, None, OK, 0.65, 1000),
    ("E", 3, None, STOPPED, 0.90, 3000),
    ("F", 1, None, PRUNED, 0.95, 50),
    ("B", 1, 100, OK, 0.70, 500),
]


@pytest.fixture
def ranked_run(make_run: RunMaker, space: SearchSpace) -> tuple[Path, dict[str, str]]:
    """``(run_dir, arch_ids)``: :data:`RANKED_TRIALS` as a run, and the arch_id of each of
    its architectures by letter."""
    rng = np.random.default_rng(11)
    letters = sorted({t[0] for t in RANKED_TRIALS})
    specs: dict[str, object] = {}
    while len(specs) < len(letters):
        spec = space.sample(rng)
        if spec.arch_id not in {s.arch_id for s in specs.values()}:
            specs[letters[len(specs)]] = spec
    results = []
    for _, epochs, _, status, val, params in RANKED_TRIALS:
        ran = 2 if status == STOPPED else 1 if status == PRUNED else epochs
        if status == PRUNED:  # the trainer keeps a pruned trial's last score
            results.append(
                TrialResult(PRUNED, val_score=val, params=params, epochs_run=1, train_seconds=1.0)
            )
        else:
            results.append(_trial_result(status, val, epochs=ran, params=params))
    run = make_run(
        results,
        specs=[specs[t[0]] for t in RANKED_TRIALS],
        fidelities=[Fidelity(epochs=t[1], max_train_samples=t[2]) for t in RANKED_TRIALS],
        name="ranked",
    )
    return run, {k: v.arch_id for k, v in specs.items()}


def direct_ranking(df: pd.DataFrame) -> pd.DataFrame:
    """The ranking by architecture computed directly, trial by trial: for each architecture,
    its ok or stopped trials with a finite score; the highest (epochs, max_train_samples)
    among them (no limit is the most); there, the best score (earliest trial on ties).
    ``trial_id, arch_id, val_score, stopped, n_evals, epochs, rung``, best first."""

    def level(row) -> tuple[float, float]:
        samples = row.max_train_samples
        return float(row.epochs), math.inf if pd.isna(samples) else float(samples)

    levels = sorted({level(r) for r in df.itertuples()})
    rows = []
    for arch, trials in df.groupby("arch_id"):
        scores = trials["val_score"].astype("float64")
        good = trials[trials["status"].isin([OK, STOPPED]) & np.isfinite(scores)]
        if good.empty:
            continue
        top = max(level(r) for r in good.itertuples())
        at = good[[level(r) == top for r in good.itertuples()]]
        best = at.sort_values(["val_score", "trial_id"], ascending=[False, True]).iloc[0]
        rows.append(
            {
                "trial_id": int(best["trial_id"]),
                "arch_id": arch,
                "val_score": float(best["val_score"]),
                "stopped": best["status"] == STOPPED,
                "n_evals": len(trials),
                "epochs": int(top[0]),
                "rung": levels.index(top),
            }
        )
    out = pd.DataFrame(rows)
    return out.sort_values(["val_score", "trial_id"], ascending=[False, True]).reset_index(
        drop=True
    )


@pytest.fixture
def direct() -> Callable[[pd.DataFrame], pd.DataFrame]:
    """:func:`direct_ranking`."""
    return direct_ranking
