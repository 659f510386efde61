"""The RL protocol's targets: a learned searcher trained on some tables and judged on a
held-out one, beside the per-task searchers, as ``autodlgym bench`` judges them.

For each fold of ``nbgraph-loo`` (train on 8 NAS-Bench-Graph tables, test on the 9th) the
script trains the reference learned searcher (:func:`autodlgym.rl.train_searcher`, a GRU
policy, REINFORCE) for at most ``--train-seconds``, then runs it and the baselines on the held-out
table through :func:`autodlgym.rl.evaluate` (``--seeds`` searches of ``--budget``
evaluations each). It prints each fold's table (bench's layout) and then the targets:

- T1: the learned searcher's mean regret is below random search's on >= 8 of 9 tables,
  with one-sided Mann-Whitney p < .05 on >= 6;
- T2: it is below the best per-task baseline's on >= 3 of 9;
- T3: training one fold takes <= 600 s on this machine;
- T4: REINFORCE (per task, from scratch, its default options) has a lower mean regret than
  random on >= 9 of 10 tables (the 9 and ``mnist1d-table``), significant on >= 8 (``--t4``;
  ``--t4-only`` skips the learned searcher).

Seeds, fixed before any run: the policy of every fold is trained with seed 0 (initialisation,
task draws, episodes); test searches use seeds 1000 .. 1000 + seeds - 1 for every method
(training never sees them). Intervals: a 95 % bootstrap interval (scipy.stats.bootstrap,
10,000 resamples, seed 0) of the difference of mean regrets, learned minus random.

Time is wall time on a shared machine: the training seconds vary with the load; the
regrets do not (they depend on the seeds only, given the number of training iterations made).

    python benchmarks/bench_rl.py [--folds cora,citeseer,...] [--seeds 30] [--train-seconds 600]
        [--baselines random,evolution,tpe,local-search,predictor,reinforce] [--t4 | --t4-only]
        [--jobs 2]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

TEST_FIRST_SEED = 1000
TRAIN_SEED = 0


def bootstrap_diff(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """95 % bootstrap interval of mean(a) - mean(b) (independent samples)."""
    from scipy.stats import bootstrap

    res = bootstrap(
        (a, b),
        lambda x, y, axis=-1: np.mean(x, axis=axis) - np.mean(y, axis=axis),
        n_resamples=10_000,
        random_state=np.random.default_rng(0),
        vectorized=True,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folds", default="all", help="comma-separated fold names, or all")
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--train-seconds", type=float, default=600.0)
    p.add_argument("--iterations", type=int, default=2000, help="most training updates")
    p.add_argument("--batch", type=int, default=4, help="episodes per task and update")
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument(
        "--tasks-per-update", type=int, default=4, help="training tasks averaged per update"
    )
    p.add_argument(
        "--keep",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the policy's incumbent bonus (train_searcher's keep)",
    )
    p.add_argument("--baselines", default="random,evolution,tpe,local-search,predictor")
    p.add_argument("--t4", action="store_true", help="also REINFORCE vs random on 10 tables")
    p.add_argument("--t4-only", action="store_true", help="only T4 (no learned searcher)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args()

    from autodlgym.analysis.bench import format_report
    from autodlgym.rl import evaluate, suites, train_searcher
    from autodlgym.searchers.learned import save_policy

    suite = suites.get("nbgraph-loo")
    folds = [f.name for f in suite.folds] if args.folds == "all" else args.folds.split(",")
    if args.t4_only:
        folds, args.t4 = [], True
    baselines = [b for b in args.baselines.split(",") if b]
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-rl-"))
    print(
        f"bench_rl: folds {','.join(folds)}; {args.seeds} test seeds from {TEST_FIRST_SEED}; "
        f"budget {args.budget}; training seed {TRAIN_SEED}, <= {args.train_seconds:.0f} s or "
        f"{args.iterations} updates of {args.batch} episodes x {args.tasks_per_update} task(s) "
        f"(lr {args.lr}, keep {args.keep}); "
        f"baselines "
        f"{','.join(baselines)}; out {out}",
        flush=True,
    )
    rows = []
    for name in folds:
        fold = suite.fold(name)
        t0 = time.monotonic()
        policy = train_searcher(
            list(fold.train),
            budget=args.budget,
            batch=args.batch,
            iterations=args.iterations,
            seconds=args.train_seconds,
            lr=args.lr,
            keep=args.keep,
            tasks_per_update=args.tasks_per_update,
            seed=TRAIN_SEED,
            log=lambda line: print(f"  {line}", flush=True),
        )
        train_s = time.monotonic() - t0
        path = save_policy(policy, out / f"policy-{name}.pt")
        result = evaluate(
            {name: f"rl:{path}"},
            suite,
            folds=[name],
            seeds=args.seeds,
            budget=args.budget,
            baselines=baselines,
            first_seed=TEST_FIRST_SEED,
            name="learned",
            out=out / name,
            jobs=args.jobs,
            log=lambda line: None,
        )
        print(
            f"\n## fold {name}: trained {train_s:.0f} s, {policy.meta['iterations']} updates",
            flush=True,
        )
        print(format_report(result), flush=True)
        runs = result.runs
        task = fold.test[0]
        regret = {
            s: runs.loc[runs["searcher"] == s, "regret"].to_numpy() for s in set(runs["searcher"])
        }
        s = result.summary
        p_random = float(s.loc[s["searcher"] == "learned", "p_vs_random"].iloc[0])
        best_base = min(
            (b for b in baselines if b != "random"),
            key=lambda b: regret[b].mean(),
            default="random",
        )
        low, high = bootstrap_diff(regret["learned"], regret["random"])
        rows.append(
            {
                "fold": name,
                "task": task,
                "train_s": train_s,
                "learned": regret["learned"].mean(),
                "random": regret["random"].mean(),
                "diff_ci": (low, high),
                "p": p_random,
                "best_base": best_base,
                "best_base_regret": regret[best_base].mean(),
            }
        )

    if rows:
        print_targets(rows)
    if args.t4:
        t4(suite, args, out)


def print_targets(rows: list[dict]) -> None:
    """The learned searcher's targets T1-T3, one line per fold."""
    print("\n## targets (nbgraph-loo, learned searcher)")
    print(
        f"{'fold':<10} {'train s':>7} {'learned':>8} {'random':>8} {'learned-random 95% CI':>24} {'p<random':>9} {'best per-task':>20}"
    )
    for r in rows:
        lo, hi = r["diff_ci"]
        ci = f"[{lo:+.4f}, {hi:+.4f}]"
        base = f"{r['best_base']} {r['best_base_regret']:.4f}"
        print(
            f"{r['fold']:<10} {r['train_s']:>7.0f} {r['learned']:>8.4f} {r['random']:>8.4f} "
            f"{ci:>24} {r['p']:>9.3g} {base:>20}"
        )
    n = len(rows)
    below = sum(r["learned"] < r["random"] for r in rows)
    signif = sum(r["learned"] < r["random"] and r["p"] < 0.05 for r in rows)
    beats_best = sum(r["learned"] < r["best_base_regret"] for r in rows)
    slowest = max((r["train_s"] for r in rows), default=math.nan)
    print(f"T1 below random: {below}/{n} (target >= 8/9), p < .05: {signif}/{n} (target >= 6/9)")
    print(f"T2 below the best per-task searcher: {beats_best}/{n} (target >= 3/9)")
    print(f"T3 slowest fold's training: {slowest:.0f} s (target <= 600 s)")


def t4(suite, args, out: Path) -> None:
    """REINFORCE (per task, from scratch, its default options) against random search on the
    10 tables: bench's report, then one line per table and the target."""
    from autodlgym.analysis.bench import format_report, run_bench

    tables = ["mnist1d-table"] + list(suite.test_tasks)
    result = run_bench(
        tables,
        ["random", "reinforce"],
        seeds=args.seeds,
        budgets=[args.budget],
        out=out / "t4",
        jobs=args.jobs,
        first_seed=TEST_FIRST_SEED,
        log=lambda line: None,
    )
    print(format_report(result))
    s = result.summary[result.summary["searcher"] == "reinforce"].set_index("task")
    r = result.summary[result.summary["searcher"] == "random"].set_index("task")
    print(f"\n## T4: REINFORCE (per task) vs random, {args.budget} evaluations, {args.seeds} seeds")
    print(f"{'table':<26} {'random':>8} {'reinforce':>9} {'p<random':>9}")
    lower = sig = 0
    for task in tables:
        mine, base, p = (
            s.loc[task, "regret_mean"],
            r.loc[task, "regret_mean"],
            s.loc[task, "p_vs_random"],
        )
        lower += mine < base
        sig += mine < base and p < 0.05
        print(f"{task:<26} {base:>8.4f} {mine:>9.4f} {p:>9.3g}")
    print(
        f"T4 REINFORCE below random: {lower}/{len(tables)} (target >= 9/10), "
        f"p < .05: {sig}/{len(tables)} (target >= 8/10)"
    )


if __name__ == "__main__":
    main()
