"""Ask cost of the ``predictor`` searcher as observations accumulate, against random search's
ask in the same process; and REINFORCE's ask+tell on the shipped MNIST-1D lookup table, per
policy (``factorised``, the default, and ``gru``).

The searcher is told ``--observations`` results on the default space (scores from the
conformance suite's synthetic function, so no training), then asked one candidate at a time
while each ask is told, for ``--asks`` asks; printed: mean and maximum ask time, the share of
asks that refitted the ensemble, and the mean ask time of random search and of the predictor
without refits. The mean includes the amortised refits (every ``refit_fraction`` growth of the
data).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_predictor.py [--observations 500] [--asks 100]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))

from autodlgym.searchers.base import make_searcher
from autodlgym.searchspace.space import SearchSpace
from autodlgym.testing.searchers import synthetic_result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--observations", type=int, default=500)
    parser.add_argument("--asks", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    space = SearchSpace.default()
    rng = np.random.default_rng(args.seed)
    predictor = make_searcher("predictor", space, seed=args.seed)
    for _ in range(args.observations):
        spec = space.sample(rng)
        predictor.tell(spec, synthetic_result(space, spec))
    predictor.ask(1)  # the first fit (and torch's import) is not an amortised cost

    times, refits = [], 0
    for _ in range(args.asks):
        before = predictor.n_fitted
        start = time.perf_counter()
        (spec,) = predictor.ask(1)
        times.append(time.perf_counter() - start)
        refits += predictor.n_fitted != before
        predictor.tell(spec, synthetic_result(space, spec))
    times_ms = np.array(times) * 1e3

    baseline = make_searcher("random", space, seed=args.seed)
    start = time.perf_counter()
    for _ in range(args.asks):
        baseline.ask(1)
    random_ms = (time.perf_counter() - start) / args.asks * 1e3

    no_refit = times_ms[times_ms < np.median(times_ms) * 3]
    print(
        f"predictor on the default space ({len(space)} decisions), "
        f"{args.observations} -> {args.observations + args.asks} observations, {args.asks} asks"
    )
    print(
        f"ask: mean {times_ms.mean():.1f} ms (target < 50 ms), median {np.median(times_ms):.1f} ms, "
        f"max {times_ms.max():.1f} ms; {refits} of {args.asks} asks refitted"
    )
    print(
        f"ask without a refit: mean {no_refit.mean():.1f} ms; random search's ask: "
        f"{random_ms:.2f} ms (ratio {no_refit.mean() / random_ms:.0f}x)"
    )
    reinforce_cost(args.asks, args.seed)
    return 0


def reinforce_cost(asks: int, seed: int) -> None:
    """Mean ask+tell time of REINFORCE per policy on the lookup table (lookups excluded)."""
    from bench_search import TABLE, LookupTable

    table = LookupTable(TABLE)
    print(f"\nREINFORCE ask+tell on {TABLE.name} ({len(table.space)} decisions), {asks} rounds")
    for policy in ("factorised", "gru"):
        agent = make_searcher("reinforce", table.space, seed=seed, policy=policy)
        for _ in range(5):  # warm-up: lazy imports, first allocations
            (spec,) = agent.ask(1)
            agent.tell(spec, table.result(spec))
        spent = 0.0
        for _ in range(asks):
            start = time.perf_counter()
            (spec,) = agent.ask(1)
            spent += time.perf_counter() - start
            result = table.result(spec)
            start = time.perf_counter()
            agent.tell(spec, result)
            spent += time.perf_counter() - start
        print(f"  {policy:<10} {spent / asks * 1e3:.2f} ms per ask+tell (target <= 5 ms)")


if __name__ == "__main__":
    sys.exit(main())
