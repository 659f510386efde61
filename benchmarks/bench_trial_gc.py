"""Per-trial cost of the collection before the trainer's peak-memory reset.

In a process holding torch, pandas and Ray (as a Ray worker or the CLI does), tiny trials run
alternately with the former reset (a full ``gc.collect()`` before every trial) and the current
one (young generations only, a full collection only after modules were imported); the script
prints the median wall time of a trial under each and the difference. It asserts nothing.

    OMP_NUM_THREADS=1 python benchmarks/bench_trial_gc.py [--repeats 9]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import pandas  # noqa: F401 - what a worker holds
import ray  # noqa: F401

from autodlgym.searchspace.spec import ArchSpec
from autodlgym.training import trainer
from autodlgym.training.trainer import train_and_score
from autodlgym.trial import Fidelity

SPEC = ArchSpec(
    {
        "n_stages": 1, "stage1.block": "mlp", "stage1.depth": 1, "stage1.width": 64,
        "optimizer": "adam", "batch_size": 64, "init": "he_normal",
    }
)  # fmt: skip
TINY = Fidelity(epochs=1, max_train_samples=128)


def _full_collection_reset(dev) -> bool:
    """The reset as it was: a full collection before every trial."""
    try:
        with open(trainer._CLEAR_REFS, "w") as f:
            gc.collect()
            trainer._trim_heap()
            f.write("5")
        return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    current = trainer._reset_peak_memory
    train_and_score(SPEC, "digits", TINY, diagnostics=False)  # data loaded, imports done
    print(f"objects the collector tracks: {len(gc.get_objects())}")
    times: dict[str, list[float]] = {"full gc.collect()": [], "current": []}
    try:
        for _ in range(args.repeats):
            for name, reset in (
                ("full gc.collect()", _full_collection_reset),
                ("current", current),
            ):
                trainer._reset_peak_memory = reset
                t0 = time.perf_counter()
                train_and_score(SPEC, "digits", TINY, diagnostics=False)
                times[name].append(time.perf_counter() - t0)
    finally:
        trainer._reset_peak_memory = current
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, m in med.items():
        print(f"{name}: median tiny trial {1e3 * m:.0f} ms")
    print(f"saved per trial: {1e3 * (med['full gc.collect()'] - med['current']):.0f} ms")


if __name__ == "__main__":
    main()
