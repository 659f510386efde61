"""Search efficiency on the shipped lookup table: searchers against random search, and the
compute pruning saves.

The table (``autodlgym/data/lookup_mnist1d.json``, made by ``make_lookup_table.py``) holds the
real MNIST-1D results of every architecture of a 384-architecture space, with per-epoch
validation curves. An "evaluation" here looks the spec up instead of training it, so hundreds of
searches run in seconds, through the same ask/tell interface the runner uses.

1. Each searcher (random, tpe, evolution, reinforce; missing ones are skipped with a note) runs
   ``--budget`` evaluations (default 200) for ``--seeds`` seeds (default 20). Printed: best-found
   validation score and simple regret (table's best validation score minus best-found) after
   50, 100 and 200 evaluations, mean and standard deviation, median and interquartile range
   over seeds, and whether tpe and evolution beat random at 100 evaluations and reinforce at
   least matches it (one-sided Mann-Whitney U tests on the regrets).
2. Pruning: random search replayed from the stored curves through
   :class:`autodlgym.execution.pruning.PruningService` (median, successive halving,
   Hyperband). Each pruned and unpruned run sees the same candidates in the same order; printed
   are the epochs spent and the best-found score after the budget, and the epochs each needs to
   first find an architecture within 1 % of the table's best (equal best-found score).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_search.py [--seeds 20] [--budget 200] [--batch 1]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from autodlgym.errors import AutoDLError
from autodlgym.searchers.base import get_searcher
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import OK, TrialResult

TABLE = Path(__file__).resolve().parents[1] / "autodlgym" / "data" / "lookup_mnist1d.json"
SEARCHERS = ("random", "tpe", "evolution", "reinforce")
CHECKPOINTS = (50, 100, 200)
PRUNERS = ("median", "sha", "hyperband")


class LookupTable:
    """Results of every architecture of a space, looked up by ``arch_id``."""

    def __init__(self, path: Path) -> None:
        data = json.loads(path.read_text())
        self.settings = data["settings"]
        self.space = SearchSpace.from_config(self.settings["space"])
        self.epochs = int(self.settings["epochs"])
        self.rows = {row["arch_id"]: row for row in data["rows"]}
        finals = [row["val"][-1] for row in self.rows.values() if _complete(row, self.epochs)]
        self.best_val = max(finals)
        self.finals = np.array(finals)

    def result(self, spec: ArchSpec) -> TrialResult:
        """The stored outcome of ``spec`` as the trainer would have returned it."""
        row = self.rows.get(spec.arch_id)
        if row is None:
            raise AutoDLError(f"spec {spec.arch_id} is not in the table; is it in the space?")
        curve = [{"epoch": i + 1, "val_score": v} for i, v in enumerate(row["val"])]
        if row["status"] != OK:
            return TrialResult(status=row["status"], curve=curve, message=row.get("message", ""))
        return TrialResult(
            status=OK,
            val_score=row["val"][-1],
            test_score=row["test"],
            params=row["params"],
            train_seconds=row["seconds"],
            epochs_run=len(row["val"]),
            curve=curve,
        )


def _complete(row: dict[str, Any], epochs: int) -> bool:
    return row["status"] == OK and len(row["val"]) == epochs and row["val"][-1] is not None


# 1. searchers ---------------------------------------------------------------------------------
def run_search(name: str, table: LookupTable, seed: int, budget: int, batch: int) -> np.ndarray:
    """Best-found validation score after each evaluation (length ``budget``)."""
    searcher = get_searcher(name)(table.space, seed=seed)
    trace = np.empty(budget)
    best, n = -math.inf, 0
    while n < budget:
        specs = searcher.ask(min(batch, budget - n))
        for spec in specs:
            result = table.result(spec)
            if result.val_score is not None:
                best = max(best, result.val_score)
            trace[n] = best
            n += 1
            searcher.tell(spec, result)
    searcher.close()
    return trace


def compare_searchers(
    table: LookupTable, seeds: int, budget: int, batch: int
) -> dict[str, np.ndarray]:
    checkpoints = [c for c in CHECKPOINTS if c <= budget]
    regrets: dict[str, np.ndarray] = {}
    print(
        f"\n1. Searchers: {budget} evaluations, {seeds} seeds, asks of {batch}; "
        "regret = table best val - best found"
    )
    print(
        f"{'searcher':<10} {'evals':>5} {'best found val':>18} {'regret':>18} "
        f"{'median':>7} {'IQR':>7} {'seconds':>8}"
    )
    for name in SEARCHERS:
        try:
            get_searcher(name)
        except AutoDLError:
            print(f"{name:<10} skipped: no searcher {name!r} is registered yet")
            continue
        start = time.perf_counter()
        traces = np.stack([run_search(name, table, s, budget, batch) for s in range(seeds)])
        seconds = time.perf_counter() - start
        at = traces[:, [c - 1 for c in checkpoints]]
        reg = table.best_val - at
        regrets[name] = reg
        for j, c in enumerate(checkpoints):
            print(
                f"{name if j == 0 else '':<10} {c:>5} {at[:, j].mean():9.4f} +- {at[:, j].std():.4f}"
                f" {reg[:, j].mean():9.4f} +- {reg[:, j].std():.4f} {np.median(reg[:, j]):7.4f}"
                f" {_iqr(reg[:, j]):7.4f} {f'{seconds:.1f}' if j == 0 else '':>8}"
            )
    return regrets


def _iqr(x: np.ndarray) -> float:
    q1, q3 = np.percentile(x, [25, 75])
    return float(q3 - q1)


def verdicts(regrets: dict[str, np.ndarray], budget: int) -> None:
    from scipy.stats import mannwhitneyu

    at = min(100, budget)
    j = [c for c in CHECKPOINTS if c <= budget].index(at) if at in CHECKPOINTS else -1
    if "random" not in regrets:
        print("no random baseline: no verdicts")
        return
    base = regrets["random"][:, j]
    print(
        f"\nAt {at} evaluations (one-sided Mann-Whitney U on regrets vs random, "
        f"random mean regret {base.mean():.4f}):"
    )
    for name, claim in (("tpe", "beats"), ("evolution", "beats"), ("reinforce", "matches")):
        if name not in regrets:
            print(f"  {name:<10} not run")
            continue
        reg = regrets[name][:, j]
        p_better = mannwhitneyu(reg, base, alternative="less").pvalue
        p_worse = mannwhitneyu(reg, base, alternative="greater").pvalue
        if claim == "beats":
            ok = reg.mean() < base.mean() and p_better < 0.05
            text = f"beats random: {'YES' if ok else 'NO'}"
        else:
            ok = p_worse >= 0.05
            text = f"at least matches random: {'YES' if ok else 'NO'}"
        print(
            f"  {name:<10} {text:<30} mean regret {reg.mean():.4f}, "
            f"p(better)={p_better:.3g}, p(worse)={p_worse:.3g}"
        )


# 2. pruning -----------------------------------------------------------------------------------
def replay_with_pruning(
    table: LookupTable, specs: list[ArchSpec], pruner: str, target: float
) -> tuple[int, float, int | None]:
    """Random-search candidates ``specs`` trained epoch by epoch from the stored curves, a
    :class:`PruningService` deciding after each epoch. Returns (epochs spent, best final val of
    completed trials, epochs spent when a completed trial first reached ``target``)."""
    from autodlgym.execution.pruning import PruningService

    service = PruningService(pruner, max_epochs=table.epochs, seed=0)
    spent, best, reached = 0, -math.inf, None
    for trial_id, spec in enumerate(specs):
        full = table.result(spec)
        curve = [p["val_score"] for p in full.curve]
        result = full
        for epoch, value in enumerate(curve, 1):
            spent += 1
            stop = service.report(trial_id, epoch, value if value is not None else math.nan)
            if stop and epoch < len(curve):
                result = TrialResult(
                    "pruned", val_score=value, curve=full.curve[:epoch], epochs_run=epoch
                )
                break
        service.finish(trial_id, result)
        if result.status == OK and result.val_score is not None:
            best = max(best, result.val_score)
            if reached is None and best >= target:
                reached = spent
    return spent, best, reached


def compare_pruning(table: LookupTable, seeds: int, budget: int) -> None:
    try:
        import autodlgym.execution.pruning  # noqa: F401
    except ImportError:
        print("\n2. Pruning skipped: autodlgym.execution.pruning is not available yet")
        return
    target = table.best_val * 0.99
    n_target = int((table.finals >= target).sum())
    print(
        f"\n2. Pruning: random search, {budget} candidates x {table.epochs} epochs, {seeds} seeds;"
        f" equal-score target: val >= {target:.4f} (99 % of the best; {n_target} of "
        f"{len(table.finals)} architectures reach it)"
    )
    rows: dict[str, list[tuple[int, float, int | None]]] = {"none": []}
    rows.update({p: [] for p in PRUNERS})
    start = time.perf_counter()
    for seed in range(seeds):
        searcher = get_searcher("random")(table.space, seed=seed)
        specs = searcher.ask(budget)  # random search's asks do not depend on its results
        for pruner in rows:
            rows[pruner].append(replay_with_pruning(table, specs, pruner, target))
    print(f"({time.perf_counter() - start:.1f}s)")
    full = np.array([r[0] for r in rows["none"]], dtype=float)
    full_reach = [r[2] for r in rows["none"]]
    print(
        f"{'pruner':<10} {'epochs spent':>16} {'saved':>7} {'best found':>18} "
        f"{'epochs to target':>18} {'reached':>8} {'saved at equal score':>21}"
    )
    for pruner, res in rows.items():
        spent = np.array([r[0] for r in res], dtype=float)
        best = np.array([r[1] for r in res])
        reach = [r[2] for r in res]
        both = [(a, b) for a, b in zip(reach, full_reach) if a is not None and b is not None]
        reach_mean = np.mean([a for a, _ in both]) if both else math.nan
        saved_eq = (
            1 - np.sum([a for a, _ in both]) / np.sum([b for _, b in both]) if both else math.nan
        )
        print(
            f"{pruner:<10} {spent.mean():9.0f} +- {spent.std():4.0f} {1 - spent.mean() / full.mean():6.1%} "
            f"{best.mean():9.4f} +- {best.std():.4f} {reach_mean:18.0f} "
            f"{sum(r is not None for r in reach):>4}/{seeds:<3} {saved_eq:20.1%}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1, help="asks per round (parallel workers)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")

    table = LookupTable(args.table)
    statuses = {}
    for row in table.rows.values():
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    cost = sum(row["seconds"] for row in table.rows.values())
    print(
        f"table {args.table.name}: {len(table.rows)} architectures of a space of "
        f"{table.space.cardinality()} ({statuses}), {table.settings['task']}, "
        f"{table.epochs} epochs, {cost / 60:.1f} CPU-minutes to make"
    )
    print(
        f"final val: best {table.best_val:.4f}, median {np.median(table.finals):.4f}, "
        f"90th percentile {np.percentile(table.finals, 90):.4f}"
    )
    regrets = compare_searchers(table, args.seeds, args.budget, args.batch)
    verdicts(regrets, args.budget)
    compare_pruning(table, args.seeds, args.budget)
    return 0


if __name__ == "__main__":
    sys.exit(main())
