"""Ask cost of the ``predictor`` searcher as observations accumulate, against random search's
ask in the same process.

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
