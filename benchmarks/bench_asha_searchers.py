"""Which searcher should propose the new candidates of an ASHA search? Random sampling against
model-based ones (``tpe``: Optuna's multivariate TPE, BOHB-style when its results come from
every rung; ``predictor``: the project's BANANAS-style ensemble), each inside the same
rung scheduler, on a lookup table (default ``mnist1d-table``: 384 architectures trained for
1-5 epochs; ``--pruner asha`` climbs its epochs).

Per searcher over seeds (fixed in advance: ``--seeds N`` runs seeds 0..N-1): the validation
regret at the top rung (the table's best final validation score minus the best final
validation score the search found among its top-rung trials; a search that reached no
top-rung trial counts the best score of its highest rung), its mean, median and share of
runs that found the optimum, and the one-sided Mann-Whitney U p-value (``scipy.stats``)
that the searcher's regret is smaller than random's. A lookup costs no training, so the
figures do not depend on the machine's load; seconds are the searches' own.

    python benchmarks/bench_asha_searchers.py --seeds 20 --trials 40 60 100
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time


def best_at_top(run_dir: str) -> float:
    """The best validation score among the trials of the highest fidelity the run reached."""
    from autodlgym import load_results

    df = load_results(run_dir)
    df = df[df.val_score.notna()]
    top = df[df.epochs == df.epochs.max()]
    return float(top.val_score.max())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="mnist1d-table")
    p.add_argument("--searchers", default="random,tpe,predictor")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--trials", type=int, nargs="+", default=[40, 100])
    args = p.parse_args()

    from scipy import stats

    from autodlgym.runner import RunConfig, run_search
    from autodlgym.tasks import get_task

    optimum = get_task(args.task).lookup().outcomes().best_val  # at the table's last epoch
    root = tempfile.mkdtemp(prefix="bench_asha_searchers_")
    print(f"load average: {os.getloadavg()[0]:.2f}; task {args.task}; seeds 0-{args.seeds - 1}")
    for trials in args.trials:
        found: dict[str, list[float]] = {}
        for name in args.searchers.split(","):
            found[name] = []
            t0 = time.perf_counter()
            for seed in range(args.seeds):
                out = os.path.join(root, f"{name}-{trials}-{seed}")
                cfg = RunConfig(
                    out=out, task=args.task, searcher=name, trials=trials, pruner="asha",
                    seed=seed,
                )  # fmt: skip
                run_search(cfg, progress=False)
                found[name].append(best_at_top(out))
                shutil.rmtree(out, ignore_errors=True)
            found[name + "/s"] = [time.perf_counter() - t0]
        best = optimum
        print(f"{trials} trials (regret against {best:.4f}):")
        base = [best - v for v in found["random"]]
        for name in args.searchers.split(","):
            regret = [best - v for v in found[name]]
            line = (
                f"  {name:10s} regret mean {statistics.mean(regret):.4f} median "
                f"{statistics.median(regret):.4f}; found the optimum "
                f"{sum(r <= 1e-12 for r in regret)}/{len(regret)}; "
                f"{found[name + '/s'][0]:.0f} s"
            )
            if name != "random":
                u = stats.mannwhitneyu(regret, base, alternative="less")
                line += f"; p(regret < random's) = {u.pvalue:.3g}"
            print(line)
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
