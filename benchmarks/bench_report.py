"""Time ``autodlgym report`` on large runs.

Fills a results store with synthetic trials in the real format (specs sampled from the default
space, per-epoch curves, the trainer's diagnostics dict made by ``Diagnostics.to_dict``, every
status, two workers) through ``ResultStore.append`` (seed 0), then times the report two ways:

* ``autodlgym report RUN`` as a user runs it, in a fresh process (imports included), repeated
  ``--repeat`` times: wall and CPU seconds, median and range;
* ``write_report`` in this process once the imports are paid, beside ``load_results`` of the
  same run measured in the same process (what any analysis pays at least), so the ratio is
  comparable across machines.

On a shared machine wall time includes waiting for a core: the load average is printed with
each line, and CPU seconds are the steadier figure.

Targets: 1,000 trials in under 10 s, 10,000 trials in under 60 s.

    OMP_NUM_THREADS=1 python benchmarks/bench_report.py [--trials 1000 10000] [--epochs 10]
        [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from autodlgym.results.store import ResultStore, load_results
from autodlgym.searchspace.space import SearchSpace
from autodlgym.training.diagnostics import Diagnostics
from autodlgym.trial import FAILURES, OK, PRUNED, Fidelity, TrialResult


def synthetic_result(rng: np.random.Generator, epochs: int) -> TrialResult:
    """One trial: mostly ok, some pruned after a few epochs, some failures of every kind."""
    u = rng.random()
    status = OK if u < 0.8 else PRUNED if u < 0.9 else str(rng.choice(FAILURES))
    run = epochs if status == OK else int(rng.integers(1, epochs)) if status == PRUNED else 0
    ceiling = 0.5 + 0.45 * rng.random()
    rate = 0.2 + rng.random()
    curve = [
        {
            "epoch": e,
            "train_loss": float(2.0 * np.exp(-rate * e)),
            "val_score": float(ceiling * (1 - np.exp(-rate * e))),
            "seconds": 0.4 * e,
        }
        for e in range(1, run + 1)
    ]
    n_blocks = int(rng.integers(1, 12))
    width = rng.choice([16, 32, 64, 128], size=n_blocks)
    ok = status == OK
    return TrialResult(
        status=status,
        val_score=curve[-1]["val_score"] if ok else None,
        test_score=curve[-1]["val_score"] - 0.01 if ok else None,
        train_loss=curve[-1]["train_loss"] if curve else None,
        params=int(rng.integers(1e3, 1e7)),
        trainable_params=int(rng.integers(1e3, 1e7)),
        flops=int(rng.integers(1e5, 1e9)),
        train_seconds=0.4 * max(run, 1) + float(rng.random()),
        eval_seconds=0.05,
        epochs_run=run,
        curve=curve,
        diagnostics=Diagnostics(
            block_names=["mlp"] * n_blocks,
            gains=rng.lognormal(0, 0.5, n_blocks).tolist(),
            grad_norms=rng.lognormal(0, 1, n_blocks).tolist(),
            hidden_widths=[int(w) for w in width],
            out_in_var=float(rng.lognormal(0, 1)),
            grad_norm_total=float(rng.lognormal(0, 1)),
            gradnorm=float(rng.lognormal(0, 1)),
            hanin=float(np.sum(1.0 / width)),
            jacobian=float(rng.lognormal(0, 1)),
            naswot=float(rng.normal(500, 50)),
            naswot_units=int(np.sum(width)),
            loss=2.3,
            n_params=1000,
            n_trainable=1000,
        ).to_dict(),
        message="" if status in (OK, PRUNED) else f"{status}: synthetic failure",
        worker=f"pid{int(rng.integers(1, 3))}",
    )


def fill(run_dir: Path, n: int, epochs: int, seed: int = 0) -> None:
    space = SearchSpace.default()
    rng = np.random.default_rng(seed)
    fidelity = Fidelity(epochs=epochs)
    with ResultStore(run_dir) as store:
        store.save_config(
            {
                "config_version": 1,
                "task": "mnist1d",
                "searcher": "random",
                "space": space.to_config(),
                "trials": n,
                "epochs": epochs,
                "seed": seed,
            }  # fmt: skip
        )
        for i in range(n):
            store.append(i, space.sample(rng), fidelity, seed + i, synthetic_result(rng, epochs))


def cold_report(run: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``autodlgym report RUN`` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "autodlgym.cli", "report", str(run), "--out",
         str(run / "cold.html")],
        check=True, capture_output=True,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3, help="fresh-process reports per size")
    args = p.parse_args()
    from autodlgym.analysis.report import write_report

    targets = {1000: 10.0, 10000: 60.0}
    print(f"{os.cpu_count()} CPUs; synthetic runs filled with seed 0")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.trials:
            run = Path(tmp) / f"run{n}"
            t0 = time.perf_counter()
            fill(run, n, args.epochs)
            fill_s = time.perf_counter() - t0
            walls, cpus, loads = [], [], []
            for _ in range(args.repeat):
                loads.append(os.getloadavg()[0])
                wall, cpu = cold_report(run)
                walls.append(wall)
                cpus.append(cpu)
            t0 = time.perf_counter()
            load_results(run)
            load_s = time.perf_counter() - t0
            write_report(run, run / "warm.html")  # the imports, once
            t0, c0 = time.perf_counter(), time.process_time()
            out = write_report(run, run / "report.html")
            report_s, report_cpu = time.perf_counter() - t0, time.process_time() - c0
            target = targets.get(n)
            verdict = (
                ""
                if target is None
                else f"; target <= {target:.0f} s wall: "
                + ("met" if statistics.median(walls) <= target else "MISSED")
                + f" (CPU {'within' if statistics.median(cpus) <= target else 'over'} it)"
            )
            print(
                f"{n:>6} trials ({args.epochs} epochs, filled in {fill_s:.1f} s), "
                f"{out.stat().st_size / 1024:.0f} KB page\n"
                f"        autodlgym report, fresh process x{args.repeat}: wall {_spread(walls)}, "
                f"CPU {_spread(cpus)}, load average {min(loads):.1f}-{max(loads):.1f}"
                f"{verdict}\n"
                f"        write_report in process: {report_s:6.2f} s wall, {report_cpu:6.2f} s "
                f"CPU ({report_s / load_s:4.1f}x load_results {load_s:.2f} s)"
            )


if __name__ == "__main__":
    main()
