"""Cost of the results store per trial.

Times ``ResultStore.append`` for realistic trials (a 20-epoch curve, per-layer diagnostics)
against a baseline measured in the same process: one bare SQLite INSERT of the same result as a
JSON text in its own WAL transaction (what any crash-safe store pays at least). Also times
``lookup``, ``to_dataframe`` and ``load_results`` from a fresh connection on the finished run.
Target: median append under 5 ms.

    OMP_NUM_THREADS=1 python benchmarks/bench_store.py [--trials 2000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from autodlgym.results.store import ResultStore, load_results
from autodlgym.searchspace.space import SearchSpace
from autodlgym.trial import Fidelity, TrialResult


def make_result(rng: np.random.Generator, epochs: int = 20) -> TrialResult:
    return TrialResult(
        "ok",
        val_score=float(rng.random()),
        test_score=float(rng.random()),
        train_loss=float(rng.random()),
        params=int(rng.integers(1e3, 1e6)),
        trainable_params=int(rng.integers(1e3, 1e6)),
        flops=int(rng.integers(1e5, 1e8)),
        train_seconds=float(rng.random() * 10),
        eval_seconds=0.1,
        epochs_run=epochs,
        curve=[
            {
                "epoch": e,
                "train_loss": float(rng.random()),
                "val_score": float(rng.random()),
                "seconds": 0.5 * e,
            }
            for e in range(1, epochs + 1)
        ],  # fmt: skip
        diagnostics={
            "jacobian_norm": float(rng.random()),
            "sum_inv_width": float(rng.random()),
            "gain": rng.random(12).tolist(),
            "grad_norm": rng.random(12).tolist(),
        },
        worker="pid1",
    )


def median_ms(times: list[float]) -> float:
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    space = SearchSpace.default()
    fid = Fidelity(epochs=20)
    specs = [space.sample(rng) for _ in range(args.trials)]
    results = [make_result(rng) for _ in range(args.trials)]

    with tempfile.TemporaryDirectory() as tmp:
        base_path = Path(tmp) / "baseline.sqlite"
        conn = sqlite3.connect(base_path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, spec TEXT, result TEXT)")
        baseline = []
        rows = [
            (i, s.to_json(), json.dumps(r.to_dict()))
            for i, (s, r) in enumerate(zip(specs, results))
        ]
        for row in rows:  # serialisation not timed: the bare cost of a durable row
            t = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?, ?, ?)", row)
            conn.execute("COMMIT")
            baseline.append(time.perf_counter() - t)
        conn.close()

        run = Path(tmp) / "run"
        appends, pendings = [], []
        with ResultStore(run) as store:
            store.save_config({"space": space.to_config()})
            for i, (spec, result) in enumerate(zip(specs, results)):
                t = time.perf_counter()
                store.add_pending(i, spec, fid, 0)
                t1 = time.perf_counter()
                store.append(i, spec, fid, 0, result)
                appends.append(time.perf_counter() - t1)
                pendings.append(t1 - t)
            lookups = []
            for spec in specs[:200]:
                t = time.perf_counter()
                store.lookup(spec.arch_id, fid, 0)
                lookups.append(time.perf_counter() - t)
            t = time.perf_counter()
            df = store.to_dataframe()
            frame_s = time.perf_counter() - t
        t = time.perf_counter()
        load_results(run)
        load_s = time.perf_counter() - t

    print(f"{args.trials} trials, 20-epoch curves, {df.shape[1]} DataFrame columns")
    print(f"bare SQLite insert+commit (baseline): median {median_ms(baseline):.3f} ms")
    print(
        f"ResultStore.append:                   median {median_ms(appends):.3f} ms "
        f"({median_ms(appends) / median_ms(baseline):.1f}x baseline; target < 5 ms)"
    )
    print(f"ResultStore.add_pending:              median {median_ms(pendings):.3f} ms")
    print(f"ResultStore.lookup:                   median {median_ms(lookups):.3f} ms")
    print(
        f"to_dataframe: {frame_s * 1000:.0f} ms; load_results (fresh open): {load_s * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
