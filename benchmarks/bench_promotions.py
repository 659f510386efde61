"""What continuing ASHA promotions from the lower rung's saved state saves.

The same ASHA search runs twice per seed, with ``promotions="continue"`` (a promoted
candidate loads the training state its lower-rung trial saved and trains only the epochs it
lacks) and ``promotions="retrain"`` (every promotion trains from scratch, as before). Both use
a trial budget, no time limits and the same seed, so they make the same decisions: continuing
gives the same weights and scores as retraining (``tests/training/test_continue.py``), and
the script checks that both runs recorded the same trials with the same validation scores.

Printed per seed and summed over seeds, for the promoted trials (every trial above the first
rung): their training seconds (``train_seconds``, the time in training steps) and their
training FLOPs (``TRAIN_FLOPS_FACTOR`` x the FLOPs of a forward pass per example x the
examples each trial trained itself: ``(epochs_run - continued_epochs) x training examples``,
the same count the trainer's adaptive limits use), as the ratio continue / retrain; the same
ratio for the promotions between whole-epoch rungs only (those that can continue: a promotion
from the first rung, which trains one epoch on a third of the training set, is trained from
scratch in both modes); the whole search's seconds; and the best validation score both ways.

With reduction factor 3, a promotion that continues trains (r - 1) / r = 2/3 of what
retraining does, and a promotion from the sub-epoch rung trains all of it, so the ratio over
all promoted trials lies between 2/3 and 1, weighted by how many trials each rung has.

    OMP_NUM_THREADS=1 python benchmarks/bench_promotions.py                  # seeds 1 2 3
    OMP_NUM_THREADS=1 python benchmarks/bench_promotions.py --trials 40 --epochs 9 --seeds 1

Seconds depend on the machine's load (printed); the FLOP ratio does not.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time


def promoted_costs(run_dir: str, first: tuple, n_train: int) -> dict[str, float]:
    """Seconds and FLOPs of the trials above the first rung of a finished run."""
    import pandas as pd

    from autodlgym import load_results
    from autodlgym.training.limits import TRAIN_FLOPS_FACTOR

    df = load_results(run_dir)
    out = {"seconds": 0.0, "flops": 0.0, "epoch_seconds": 0.0, "epoch_flops": 0.0, "n": 0}
    for row in df.itertuples():
        samples = None if pd.isna(row.max_train_samples) else int(row.max_train_samples)
        level = (int(row.epochs), None if samples is None else int(samples))
        if level == first:
            continue
        inherited = getattr(row, "continued_epochs", None)
        inherited = 0 if inherited is None or pd.isna(inherited) else int(inherited)
        examples = (int(row.epochs_run) - inherited) * (int(samples) if samples else n_train)
        flops = TRAIN_FLOPS_FACTOR * float(row.flops or 0) * examples
        out["seconds"] += float(row.train_seconds)
        out["flops"] += flops
        out["n"] += 1
        if int(row.epochs) > 1:  # promoted from a whole-epoch rung
            out["epoch_seconds"] += float(row.train_seconds)
            out["epoch_flops"] += flops
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="mnist1d")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--epochs", type=int, default=9, help="the last rung (9: rungs 1/3, 1, 3, 9)")
    p.add_argument("--out", default=None, help="keep the runs here (default: a temp dir)")
    args = p.parse_args()

    from autodlgym.runner import RunConfig, run_search
    from autodlgym.tasks import get_task

    task = get_task(args.task)
    root = args.out or tempfile.mkdtemp(prefix="bench_promotions_")
    print(f"load average before: {os.getloadavg()[0]:.2f}  OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}  task {args.task}, {args.trials} "
          f"trials, epochs {args.epochs}, seeds {args.seeds}")  # fmt: skip
    totals = {m: {"seconds": 0.0, "flops": 0.0, "epoch_seconds": 0.0, "epoch_flops": 0.0}
              for m in ("continue", "retrain")}  # fmt: skip
    same = True
    for seed in args.seeds:
        rows = {}
        for mode in ("continue", "retrain"):
            out = os.path.join(root, f"seed{seed}-{mode}")
            shutil.rmtree(out, ignore_errors=True)
            cfg = RunConfig(
                out=out, task=args.task, trials=args.trials, epochs=args.epochs, pruner="asha",
                seed=seed, trial_time_limit=None, promotions=mode,
            )  # fmt: skip
            rungs = task.default_fidelities(cfg.fidelity)
            first = (rungs[0].epochs, rungs[0].max_train_samples)
            n_train = task.load().sizes()[0]
            if cfg.max_train_samples:
                n_train = min(n_train, cfg.max_train_samples)
            t0 = time.perf_counter()
            summary = run_search(cfg, progress=False)
            wall = time.perf_counter() - t0
            cost = promoted_costs(out, first, n_train)
            rows[mode] = (summary, wall, cost)
            for k in totals[mode]:
                totals[mode][k] += cost[k]
        from autodlgym import load_results

        a = load_results(os.path.join(root, f"seed{seed}-continue")).sort_values("trial_id")
        b = load_results(os.path.join(root, f"seed{seed}-retrain")).sort_values("trial_id")
        agree = list(a.arch_id) == list(b.arch_id) and list(a.val_score.fillna(-1)) == list(
            b.val_score.fillna(-1)
        )
        same &= agree
        (sc, wc, cc), (sr, wr, cr) = rows["continue"], rows["retrain"]
        print(
            f"seed {seed}: promoted trials {cc['n']}; train seconds {cc['seconds']:.1f} vs "
            f"{cr['seconds']:.1f} ({cc['seconds'] / cr['seconds']:.3f}x); training FLOPs "
            f"{cc['flops']:.3g} vs {cr['flops']:.3g} ({cc['flops'] / cr['flops']:.3f}x); "
            f"whole-epoch promotions only: seconds {cc['epoch_seconds'] / cr['epoch_seconds']:.3f}x"
            f", FLOPs {cc['epoch_flops'] / cr['epoch_flops']:.3f}x; search wall {wc:.0f} s vs "
            f"{wr:.0f} s; best val {sc.best_val_score:.4f} vs {sr.best_val_score:.4f}; same trials and "
            f"scores: {agree}"
        )
    c, r = totals["continue"], totals["retrain"]
    print(
        f"all seeds: a promoted trial's compute, continue / retrain: training FLOPs "
        f"{c['flops'] / r['flops']:.3f}x, train seconds {c['seconds'] / r['seconds']:.3f}x "
        f"(target <= 0.7); whole-epoch promotions: FLOPs {c['epoch_flops'] / r['epoch_flops']:.3f}x"
        f", seconds {c['epoch_seconds'] / r['epoch_seconds']:.3f}x"
    )
    print(f"both modes recorded the same trials and scores: {same}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.out is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
