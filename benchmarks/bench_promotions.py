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
examples each trial trained itself: the examples of its fidelity, ``epochs_run`` x training
examples, less those of the trial it continued from, the same count the trainer's adaptive
limits use), as the ratio continue / retrain; the same ratio for the promotions out of the
first rung and for those between whole-epoch rungs; the whole search's seconds; and the best
validation score both ways.

The first rung trains the first whole batches of an epoch that fit in a third of the
training set (``Fidelity.max_examples``), the beginning of the 1-epoch rung's training, so
every promotion can continue: with reduction factor 3 one between whole-epoch rungs trains
(r - 1) / r = 2/3 of what retraining does, and one out of the first rung trains the rest of
its epoch, 1 - (n/3 // batch) x batch / n, a little over 2/3 (the first rung stops at a whole
batch).

    OMP_NUM_THREADS=1 python benchmarks/bench_promotions.py                  # seeds 1 2 3
    OMP_NUM_THREADS=1 python benchmarks/bench_promotions.py --trials 40 --epochs 9 --seeds 1
    OMP_NUM_THREADS=1 python benchmarks/bench_promotions.py --seeds --timing 5   # timing only

The search's seconds follow the load while its two modes run one after the other; the
timing at the end (``--timing``) trains one spec's promotions continued and retrained in
turn, so both see the same load.

Seconds depend on the machine's load (printed); the FLOP ratio does not.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time


def promoted_costs(run_dir: str, n_train: int) -> dict[str, float]:
    """Seconds and FLOPs of the trials above the first rung of a finished run: all of them,
    those out of the first rung (1 epoch) and those between whole-epoch rungs."""
    import json

    import pandas as pd

    from autodlgym import load_results
    from autodlgym.training.limits import TRAIN_FLOPS_FACTOR

    df = load_results(run_dir).set_index("trial_id", drop=False)

    def trained(row) -> int:
        """Examples of the trial's fidelity (whole batches only where it stops early)."""
        capped = getattr(row, "max_examples", None)
        samples = n_train if pd.isna(row.max_train_samples) else int(row.max_train_samples)
        if capped is not None and not pd.isna(capped):  # the first rung
            return int(row.steps_run) * min(int(json.loads(row.spec)["batch_size"]), samples)
        return int(row.epochs_run) * samples

    out = {"n": 0}
    for k in ("", "first_", "epoch_"):
        out[f"{k}seconds"] = out[f"{k}flops"] = 0.0
    for row in df.itertuples():
        capped = getattr(row, "max_examples", None)
        if capped is not None and not pd.isna(capped):
            continue  # the first rung
        source = getattr(row, "continued_from", None)
        inherited = 0
        if source is not None and not pd.isna(source):
            inherited = trained(next(df.loc[[int(source)]].itertuples()))
        flops = TRAIN_FLOPS_FACTOR * float(row.flops or 0) * (trained(row) - inherited)
        kind = "epoch_" if int(row.epochs) > 1 else "first_"
        for k in ("", kind):
            out[f"{k}seconds"] += float(row.train_seconds)
            out[f"{k}flops"] += flops
        out["n"] += 1
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="mnist1d")
    p.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3], help="none: no searches")
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--epochs", type=int, default=9, help="the last rung (9: rungs 1/3, 1, 3, 9)")
    p.add_argument("--out", default=None, help="keep the runs here (default: a temp dir)")
    p.add_argument(
        "--timing", type=int, default=5, metavar="N",
        help="then time one spec's promotions continued and retrained, interleaved, N times "
        "each (0: not)",
    )  # fmt: skip
    args = p.parse_args()

    from autodlgym.runner import RunConfig, run_search
    from autodlgym.tasks import get_task

    task = get_task(args.task)
    root = args.out or tempfile.mkdtemp(prefix="bench_promotions_")
    print(f"load average before: {os.getloadavg()[0]:.2f}  OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}  task {args.task}, {args.trials} "
          f"trials, epochs {args.epochs}, seeds {args.seeds}")  # fmt: skip
    keys = [f"{k}{m}" for k in ("", "first_", "epoch_") for m in ("seconds", "flops")]
    totals = {m: dict.fromkeys(keys, 0.0) for m in ("continue", "retrain")}
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
            n_train = task.load().sizes()[0]
            if cfg.max_train_samples:
                n_train = min(n_train, cfg.max_train_samples)
            t0 = time.perf_counter()
            summary = run_search(cfg, progress=False)
            wall = time.perf_counter() - t0
            cost = promoted_costs(out, n_train)
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
            f"out of the first rung: FLOPs {_ratio(cc, cr, 'first_flops')}; between whole-epoch "
            f"rungs: FLOPs {_ratio(cc, cr, 'epoch_flops')}; search wall {wc:.0f} s vs {wr:.0f} s; "
            f"best val {sc.best_val_score:.4f} vs {sr.best_val_score:.4f}; same trials and "
            f"scores: {agree}"
        )
    c, r = totals["continue"], totals["retrain"]
    if args.seeds:
        print(
            f"all seeds: a promoted trial's compute, continue / retrain: training FLOPs "
            f"{_ratio(c, r, 'flops')}, train seconds {_ratio(c, r, 'seconds')} (target <= 0.7); "
            f"out of the first rung: FLOPs {_ratio(c, r, 'first_flops')}, seconds "
            f"{_ratio(c, r, 'first_seconds')}; between whole-epoch rungs: FLOPs "
            f"{_ratio(c, r, 'epoch_flops')}, seconds {_ratio(c, r, 'epoch_seconds')}"
        )
        print(f"both modes recorded the same trials and scores: {same}")
    if args.timing > 0:
        same &= interleaved_seconds(task, args.epochs, args.timing)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.out is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if same else 1


#: the spec :func:`interleaved_seconds` times (a small CNN of the default space)
TIMED_SPEC = {
    "n_stages": 1, "stage1.block": "conv", "stage1.depth": 1, "stage1.width": 32,
    "stage1.kernel": 3, "stage1.dilation": 1, "norm": "batch", "dropout": 0.25,
    "optimizer": "adam", "lr": 0.01, "batch_size": 32, "trainable": "all", "activation": "relu",
    "init": "he_normal", "weight_decay": 0.0, "grad_clip": 0.0, "zero_init_residual": False,
    "connections": "chain", "head_pool": "avg",
}  # fmt: skip


def interleaved_seconds(task, epochs: int, repeats: int) -> bool:
    """Training seconds of one spec's promotions out of the first rung and from 1 to 3 epochs,
    continued and retrained in turn in this process (medians of ``repeats``), so that both
    see the same load; the search above runs its two modes one after the other, and its
    seconds follow the load in between. True when every pair scored the same."""
    import statistics

    from autodlgym.searchspace.space import SearchSpace
    from autodlgym.training.trainer import train_and_score
    from autodlgym.trial import Fidelity

    spec = SearchSpace.default().validate(TIMED_SPEC)
    rungs = [Fidelity(f.epochs, f.max_train_samples, max_examples=f.max_examples)
             for f in task.default_fidelities(Fidelity(epochs))]  # fmt: skip
    same = True
    with tempfile.TemporaryDirectory() as tmp:
        for lo, hi in zip(rungs[:2], rungs[1:3]):
            path = os.path.join(tmp, "state.pt")
            train_and_score(spec, task, lo, seed=1, checkpoint=path, diagnostics=False)
            cont, scratch = [], []
            for _ in range(repeats):
                a = train_and_score(spec, task, hi, seed=1, resume_from=path, diagnostics=False)
                b = train_and_score(spec, task, hi, seed=1, diagnostics=False)
                same &= a.continued_epochs is not None and a.val_score == b.val_score
                cont.append(a.train_seconds)
                scratch.append(b.train_seconds)
            c, r = statistics.median(cont), statistics.median(scratch)
            print(
                f"timed promotion {lo.key()} -> {hi.key()} ({a.steps_run} steps, "
                f"{a.steps_run - round(a.continued_epochs * b.steps_run / hi.epochs)} of them "
                f"its own): train seconds continued {c:.3f} vs retrained {r:.3f} ({c / r:.3f}x), "
                f"medians of {repeats} interleaved; same scores: {same}"
            )
    return same


def _ratio(a: dict, b: dict, key: str) -> str:
    return f"{a[key] / b[key]:.3f}x" if b[key] else "n/a"


if __name__ == "__main__":
    sys.exit(main())
