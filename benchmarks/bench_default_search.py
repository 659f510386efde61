"""What a new user's first command gets: ``autodlgym search --task T --time-budget B`` with
every other option at its default, run as a subprocess, over several seeds.

Per run it prints the candidates evaluated (any fidelity), the best validation score of an
``ok`` trial and that trial's test score, the overrun (wall time of the whole command, start-up
included, minus the budget), and the seconds from the start of the command to the first
candidate scoring >= 0.80. Then the median over seeds beside the targets: mnist1d in 5 minutes
best val >= 0.90, >= 60 candidates, overrun <= 10 s; digits in 2 minutes best val >= 0.95.

    OMP_NUM_THREADS=1 python benchmarks/bench_default_search.py [--seeds 1 2 3]
        [--mnist1d-budget 5m] [--digits-budget 2m] [--tasks mnist1d digits]

The machine's load changes the figures a lot: the script prints the load average before and
after each run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import autodlgym
from autodlgym.cli import _duration

TARGETS = {"mnist1d": 0.90, "digits": 0.95}


def run_once(task: str, budget: str, seed: int, out: Path) -> dict[str, float]:
    cmd = [sys.executable, "-m", "autodlgym", "search", "--task", task, "--time-budget", budget,
           "--out", str(out), "--seed", str(seed), "--no-progress"]  # fmt: skip
    load_before = os.getloadavg()[0]
    start_wall = time.time()
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}")
    df = autodlgym.load_results(out)
    ok = df[df.status == "ok"]
    best = ok.loc[ok.val_score.idxmax()] if len(ok) else None
    good = df[(df.val_score >= 0.80)]
    first_good = (good.finished_at.min().timestamp() - start_wall) if len(good) else float("nan")
    return {
        "candidates": float(len(df)),
        "best_val": float(best.val_score) if best is not None else float("nan"),
        "best_test": float(best.test_score) if best is not None else float("nan"),
        "overrun": wall - _duration(budget),
        "first_0.80": first_good,
        "load": (load_before + os.getloadavg()[0]) / 2,
        "statuses": df.status.value_counts().to_dict(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--tasks", nargs="+", default=["mnist1d", "digits"])
    p.add_argument("--mnist1d-budget", default="5m")
    p.add_argument("--digits-budget", default="2m")
    args = p.parse_args()
    budgets = {"mnist1d": args.mnist1d_budget, "digits": args.digits_budget}
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            budget = budgets.get(task, "2m")
            rows = []
            for seed in args.seeds:
                r = run_once(task, budget, seed, Path(tmp) / f"{task}-{seed}")
                rows.append(r)
                print(
                    f"{task} budget {budget} seed {seed}: {r['candidates']:.0f} candidates "
                    f"{r['statuses']}, best val {r['best_val']:.4f} (its test "
                    f"{r['best_test']:.4f}), overrun {r['overrun']:+.1f} s, first >= 0.80 "
                    f"after {r['first_0.80']:.0f} s, load average {r['load']:.1f}",
                    flush=True,
                )
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "statuses"}
            print(
                f"{task} median over {len(rows)} seeds: best val {med['best_val']:.4f} "
                f"(target >= {TARGETS.get(task, float('nan')):.2f}), candidates "
                f"{med['candidates']:.0f}, worst overrun {max(r['overrun'] for r in rows):+.1f} s, "
                f"test of best {med['best_test']:.4f}, first >= 0.80 after {med['first_0.80']:.0f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
