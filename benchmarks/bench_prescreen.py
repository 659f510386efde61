"""Does the zero-cost pre-screen help on the MNIST-1D lookup table at equal training compute?

1. Every architecture of the table is built untrained and scored by the pre-screen's own
   scoring (:meth:`ZeroCostPrescreen.score`: NASWOT, gradient norm, Hanin's sum of inverse
   widths, parameter count, on one batch of the table's task). Printed: each proxy's Spearman
   correlation with the final validation score over the table, beside the parameter-count
   baseline, and the seconds a score costs.
2. Searches with the same number of *trained* evaluations (``--budget``, a table lookup each):
   random search and evolution, plain and behind the pre-screen (pool ``--pool``, the proxy
   scores from step 1, so scoring costs nothing twice). Printed: mean regret (table best minus
   best found) over ``--seeds`` seeds and a one-sided Mann-Whitney p-value of "pre-screened is
   better".

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_prescreen.py [--seeds 30] [--budget 20,50]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings

import numpy as np

from autodlgym.searchers.base import SearchContext, make_searcher
from autodlgym.searchers.prescreen import ZeroCostPrescreen
from autodlgym.training.diagnostics import init_scorer

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from bench_search import TABLE, LookupTable  # noqa: E402

PROXIES = ("naswot", "gradnorm", "hanin", "n_params")


def proxy_scores(table: LookupTable, limit: int | None) -> dict[str, dict[str, float]]:
    """proxy -> arch_id -> score, for the table's completed architectures."""
    from autodlgym.searchspace.spec import ArchSpec

    rows = [r for r in table.rows.values() if r["status"] == "ok"][:limit]
    out: dict[str, dict[str, float]] = {p: {} for p in PROXIES}
    start = time.perf_counter()
    for p in PROXIES:
        context = SearchContext(score_at_init=init_scorer(table.settings["task"]))
        screen = ZeroCostPrescreen(table.space, seed=0, context=context, score=p)
        for row in rows:
            spec = ArchSpec(row["spec"])
            out[p][spec.arch_id] = screen.score(spec)
        if p == PROXIES[0]:
            per = (time.perf_counter() - start) / len(rows)
            print(f"scored {len(rows)} architectures, {per:.2f} s each ({p})")
    return out


def correlations(table: LookupTable, scores: dict[str, dict[str, float]]) -> None:
    from scipy.stats import spearmanr

    ids = list(scores[PROXIES[0]])
    final = np.array([table.rows[i]["val"][-1] for i in ids], dtype=float)
    print(f"\n1. Spearman correlation with final validation score ({len(ids)} architectures)")
    for p in PROXIES:
        x = np.array([scores[p][i] for i in ids])
        ok = np.isfinite(x) & np.isfinite(final)
        rho = spearmanr(x[ok], final[ok]).statistic
        note = "  (baseline)" if p == "n_params" else ""
        print(f"  {p:<10} rho = {rho:+.3f}{note}")


def search(
    table: LookupTable, name: str, seed: int, budget: int, pool: int, proxy: dict | None, score: str
) -> float:
    """Regret after ``budget`` trained evaluations (``proxy``: pre-screen with those scores)."""
    if proxy is None:
        searcher = make_searcher(name, table.space, seed=seed, budget=budget)
    else:
        context = SearchContext(score_at_init=init_scorer("digits"))
        searcher = ZeroCostPrescreen(
            table.space, seed=seed, base=name, pool=pool, score=score, context=context
        )
        # unscored architectures (failed in the table) rank last
        searcher._scores = {**{k: -math.inf for k in table.rows}, **proxy}
    best = -math.inf
    for _ in range(budget):
        (spec,) = searcher.ask(1)
        result = table.result(spec)
        if result.val_score is not None and result.status == "ok":
            best = max(best, result.val_score)
        searcher.tell(spec, result)
    return table.best_val - best


def compare(table, scores, seeds: int, budgets: list[int], pool: int) -> None:
    from scipy.stats import mannwhitneyu

    print(f"\n2. Equal training compute: mean regret over {seeds} seeds (pool {pool})")
    print(f"  {'searcher':<24}" + "".join(f"{f'{b} trained':>22}" for b in budgets))
    for base in ("random", "evolution"):
        plain = {
            b: [search(table, base, s, b, pool, None, "") for s in range(seeds)] for b in budgets
        }
        print(f"  {base:<24}" + "".join(f"{np.mean(plain[b]):>22.4f}" for b in budgets))
        for p in ("naswot", "n_params"):
            cells = []
            for b in budgets:
                reg = [search(table, base, s, b, pool, scores[p], p) for s in range(seeds)]
                pv = mannwhitneyu(reg, plain[b], alternative="less").pvalue
                cells.append(f"{np.mean(reg):.4f} (p={pv:.2g})")
            print(f"  {f'zero-cost[{p}]+{base}':<24}" + "".join(f"{c:>22}" for c in cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--budget", default="20,50")
    parser.add_argument("--pool", type=int, default=8)
    parser.add_argument("--limit", type=int, default=None, help="score only the first N archs")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    table = LookupTable(TABLE)
    scores = proxy_scores(table, args.limit)
    correlations(table, scores)
    if args.limit is None:
        compare(table, scores, args.seeds, [int(b) for b in args.budget.split(",")], args.pool)
    return 0


if __name__ == "__main__":
    sys.exit(main())
