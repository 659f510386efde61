"""``autodlgym bench``: searchers x seeds x budgets on tabular tasks, compared with random search.

Each (task, searcher, seed) is an ordinary search (:func:`autodlgym.runner.run_search`, one run
directory each under ``OUT/runs/``), run in parallel processes, so what is benchmarked is what
users run. One difference: the searcher is made without a run directory, so the Optuna-based
ones keep their study in memory instead of ``RUN/optuna.db``; they propose the same candidates
(a test checks it) at a tenth of the CPU time, which on lookups is all the time there is. A run spends the largest budget; the smaller budgets read its first trials. For each
task, searcher and budget the report gives, over seeds:

- the **validation regret**: the table's best validation score minus the best found (mean, sd,
  median);
- the **test score** of the best candidate by validation (the first to reach it), mean, sd,
  median: what a user would deploy;
- a one-sided **Mann-Whitney U** p-value that the searcher's regret is smaller than random
  search's (scipy; blank for random itself);
- the fraction of runs that found a **top-1 %** architecture by validation.

Beside them, the anchors: the table's optimum (validation and the test score of that
architecture), and what random search is expected to do, computed from the table and the
space's sampling law: the probability of finding a top-1 % architecture within n draws,
``1 - (1 - q)^n`` with q the sampling mass of the top 1 %, and its expected regret. Published
figures are printed where the benchmark's paper gives comparable ones
(:data:`PUBLISHED`; sources in ``docs/benchmarks.md``).

Outputs in ``OUT``: ``bench_runs.csv`` (one row per run and budget), ``bench_summary.csv``
(the printed table), ``bench_anytime.png`` (mean regret after each evaluation with a band of
one standard error, per searcher, one panel per task, and random search's expectation dashed).
The printed layout is stable: tools may parse it, and the CSV columns only grow.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autodlgym.errors import AutoDLError

#: Runs' columns in ``bench_runs.csv``.
RUN_COLUMNS = (
    "task", "searcher", "seed", "budget", "best_val", "regret", "test_at_best_val", "top1",
    "evaluations", "failures", "seconds",
)  # fmt: skip
#: Columns of ``bench_summary.csv`` (and of the printed table, in this order).
SUMMARY_COLUMNS = (
    "task", "budget", "searcher", "runs", "regret_mean", "regret_sd", "regret_median",
    "test_mean", "test_sd", "test_median", "p_vs_random", "top1_fraction",
)  # fmt: skip
TOP_Q = 0.01
BASELINE = "random"

#: Published figures comparable to this report, by task: (label, text). None known so far;
#: see docs/benchmarks.md for what the papers report and why it is not comparable.
PUBLISHED: dict[str, list[tuple[str, str]]] = {}


@dataclass
class BenchResult:
    """What :func:`run_bench` measured.

    Attributes:
        runs: one row per run and budget (:data:`RUN_COLUMNS`).
        summary: one row per task, budget and searcher (:data:`SUMMARY_COLUMNS`).
        anchors: per task: ``best_val``, ``test_at_best_val``, ``top1_threshold``,
            ``top1_mass``, ``architectures``, and per budget ``random_top1`` and
            ``random_regret`` (dicts budget -> value).
        out: the directory holding the CSVs, the plot and the run directories.
        files: paths written.
    """

    runs: Any
    summary: Any
    anchors: dict[str, dict[str, Any]]
    out: Path
    files: list[Path] = field(default_factory=list)
    traces: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)


def _run_one(task: str, searcher: str, seed: int, trials: int, run_dir: str) -> dict[str, Any]:
    """One search (in a worker process): its per-trial validation and test scores."""
    from autodlgym.run import load_results
    from autodlgym.runner import RunConfig, run_search
    from autodlgym.searchers.base import make_searcher
    from autodlgym.tasks import get_task

    table = get_task(task).lookup()
    config = RunConfig(
        out=run_dir,
        task=task,
        searcher=searcher,
        trials=trials,
        seed=seed,
        epochs=table.default_epochs,
    )
    # the searcher keeps no files of its own (an Optuna study lives in memory, not in
    # RUN/optuna.db): the same proposals for a tenth of the CPU on lookups
    # searchers that size themselves to the budget (evolution) hear it, as run_search tells them
    instance = make_searcher(searcher, table.space, seed=seed, run_dir=None, budget=trials)
    summary = run_search(config, searcher=instance)
    df = load_results(run_dir).sort_values("trial_id")
    ok = (df["status"] == "ok").to_numpy()
    val = np.where(ok, df["val_score"].to_numpy(dtype=float, na_value=np.nan), np.nan)
    test = df["test_score"].to_numpy(dtype=float, na_value=np.nan)
    return {
        "task": task,
        "searcher": searcher,
        "seed": seed,
        "val": val,
        "test": test,
        "seconds": summary.seconds,
    }


def best_by_validation(val: np.ndarray, test: np.ndarray, n: int) -> tuple[float, float]:
    """Best validation score among the first ``n`` trials (NaN = failed) and the test score of
    the first trial that reached it; (NaN, NaN) when none succeeded."""
    head = val[:n]
    if not np.isfinite(head).any():
        return math.nan, math.nan
    i = int(np.nanargmax(head))
    return float(head[i]), float(test[i])


def _anchors(task: str, budgets: Sequence[int]) -> dict[str, Any]:
    from autodlgym.tasks import get_task

    table = get_task(task).lookup()
    outcomes = table.outcomes()
    return {
        "architectures": len(outcomes.val),
        "best_val": outcomes.best_val,
        "test_at_best_val": outcomes.test_at_best_val,
        "top1_threshold": outcomes.top_threshold(TOP_Q),
        "top1_mass": outcomes.top_mass(TOP_Q),
        "random_top1": {n: outcomes.random_top_probability(n, TOP_Q) for n in budgets},
        "random_regret": {n: outcomes.random_expected_regret(n) for n in budgets},
        "random_regret_curve": np.array(
            [outcomes.random_expected_regret(n) for n in range(1, max(budgets) + 1)]
        ),
    }


def _check(
    tasks: Sequence[str],
    searchers: Sequence[str],
    seeds: int,
    budgets: Sequence[int],
    first_seed: int = 0,
):
    from autodlgym.searchers.base import get_searcher
    from autodlgym.tasks import get_task

    if not tasks:
        raise AutoDLError("give at least one task: --tasks nasbench-graph:cora,...")
    if not searchers:
        raise AutoDLError("give at least one searcher: --searchers random,tpe,...")
    if seeds < 1:
        raise AutoDLError(f"--seeds must be a positive number of seeds, got {seeds}")
    if first_seed < 0:
        raise AutoDLError(f"--first-seed must be 0 or more, got {first_seed}")
    if not budgets or any(b < 1 for b in budgets):
        raise AutoDLError(f"--budgets must be positive numbers of evaluations, got {budgets}")
    for t in tasks:
        if get_task(t).kind != "lookup":
            raise AutoDLError(
                f"bench runs on tabular tasks (lookups); {t!r} trains. Choose from: "
                + ", ".join(n for n, _ in _tabular_tasks())
            )
    for s in searchers:
        get_searcher(s)


def _tabular_tasks() -> list[tuple[str, str]]:
    from autodlgym.tasks import list_tasks

    return list_tasks(tabular=True)


def run_bench(
    tasks: Sequence[str],
    searchers: Sequence[str],
    seeds: int = 10,
    budgets: Sequence[int] = (50, 100),
    out: str | Path | None = None,
    jobs: int | None = None,
    log: Callable[[str], None] | None = None,
    first_seed: int = 0,
) -> BenchResult:
    """Run every (task, searcher, seed) and summarise; see the module docstring.

    Args:
        tasks: tabular task names (``autodlgym tasks``).
        searchers: searcher names; random search is added as the baseline when missing.
        seeds: seeds ``first_seed`` .. ``first_seed + seeds - 1`` for every task and
            searcher (a run is determined by its task, searcher and seed).
        budgets: numbers of evaluations to report; each run spends the largest.
        out: directory for the CSVs, the plot and the runs (default: a new temporary
            directory, kept).
        jobs: processes running searches at once (default: the CPU count).
        log: where progress lines go (default: stderr).
        first_seed: the first seed: another range checks a result on seeds it was not
            tuned on.

    Raises:
        AutoDLError: an unknown task or searcher, a task that trains, bad counts.
    """
    tasks, budgets = list(tasks), sorted(set(int(b) for b in budgets))
    searchers = list(dict.fromkeys(searchers))
    if BASELINE not in searchers:
        searchers.insert(0, BASELINE)
    _check(tasks, searchers, seeds, budgets, first_seed)
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    out_dir = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="autodlgym-bench-"))
    (out_dir / "runs").mkdir(parents=True, exist_ok=True)
    jobs = max(1, int(jobs or os.cpu_count() or 1))

    work = []
    for t in tasks:
        for s in searchers:
            for seed in range(first_seed, first_seed + seeds):
                run_dir = out_dir / "runs" / _safe(t) / s / f"seed{seed}"
                if run_dir.exists():
                    raise AutoDLError(
                        f"{run_dir} already holds a run; give bench a fresh --out directory"
                    )
                work.append((t, s, seed, max(budgets), str(run_dir)))
    log(f"bench: {len(work)} searches of {max(budgets)} evaluations on {jobs} process(es)")
    results = run_searches(work, jobs, log)
    return collect(results, tasks, searchers, budgets, out_dir)


def run_searches(
    work: Sequence[tuple[str, str, int, int, str]], jobs: int, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Run each ``(task, searcher, seed, trials, run_dir)`` search (in ``jobs`` spawned
    processes when more than one): per search its validation and test score per trial."""
    t0 = time.monotonic()
    results: list[dict[str, Any]] = []
    if jobs == 1:
        for i, args in enumerate(work, 1):
            results.append(_run_one(*args))
            _progress(log, i, len(work), t0)
        return results
    import multiprocessing

    # spawn: workers start clean (no inherited locks or threads), as on every platform
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = [pool.submit(_run_one, *args) for args in work]
        for i, fut in enumerate(as_completed(futures), 1):
            results.append(fut.result())
            _progress(log, i, len(work), t0)
    return results


def collect(
    results: Sequence[dict[str, Any]],
    tasks: Sequence[str],
    searchers: Sequence[str],
    budgets: Sequence[int],
    out_dir: Path,
) -> BenchResult:
    """The report's figures from searches' per-trial scores (``task``, ``searcher``, ``seed``,
    ``val`` with NaN for failures, ``test``, ``seconds`` each): rows per run and budget, the
    summary, the anchors, the CSVs and the anytime plot in ``out_dir``. Any producer of such
    traces (a searcher run by :func:`run_searches`, an agent stepping an env) shares it."""
    import pandas as pd

    anchors = {t: _anchors(t, budgets) for t in tasks}
    rows, traces = [], {}
    for r in sorted(results, key=lambda r: (r["task"], r["searcher"], r["seed"])):
        a = anchors[r["task"]]
        val, test = r["val"], r["test"]
        running = np.fmax.accumulate(np.where(np.isfinite(val), val, -np.inf))
        traces.setdefault((r["task"], r["searcher"]), []).append(a["best_val"] - running)
        for n in budgets:
            best, test_at = best_by_validation(val, test, n)
            rows.append(
                {
                    "task": r["task"],
                    "searcher": r["searcher"],
                    "seed": r["seed"],
                    "budget": n,
                    "best_val": best,
                    "regret": a["best_val"] - best,
                    "test_at_best_val": test_at,
                    "top1": bool(best >= a["top1_threshold"]),
                    "evaluations": int(min(n, len(val))),
                    "failures": int((~np.isfinite(val[:n])).sum()),
                    "seconds": r["seconds"],
                }
            )
    runs = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    summary = summarise(runs, tasks, searchers, budgets)
    result = BenchResult(
        runs=runs,
        summary=summary,
        anchors=anchors,
        out=out_dir,
        traces={k: np.array(v) for k, v in traces.items()},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out_dir / "bench_runs.csv", index=False)
    summary.to_csv(out_dir / "bench_summary.csv", index=False)
    result.files = [out_dir / "bench_runs.csv", out_dir / "bench_summary.csv"]
    result.files.append(plot_anytime(result, out_dir / "bench_anytime.png"))
    return result


def _safe(task: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in task)


def _progress(log: Callable[[str], None], i: int, n: int, t0: float) -> None:
    step = max(1, n // 10)
    if i == n or i % step == 0:
        log(f"bench: {i}/{n} searches done ({time.monotonic() - t0:.1f} s)")


def summarise(runs: Any, tasks: Sequence[str], searchers: Sequence[str], budgets: Sequence[int]):
    """The summary table from the per-run rows (see :data:`SUMMARY_COLUMNS`)."""
    import pandas as pd
    from scipy.stats import mannwhitneyu

    out = []
    for t in tasks:
        for n in budgets:
            here = runs[(runs["task"] == t) & (runs["budget"] == n)]
            base = here.loc[here["searcher"] == BASELINE, "regret"].dropna().to_numpy()
            for s in searchers:
                mine = here[here["searcher"] == s]
                regret = mine["regret"].dropna().to_numpy()
                test = mine["test_at_best_val"].dropna().to_numpy()
                p = math.nan
                if s != BASELINE and len(regret) and len(base):
                    # one-sided: is this searcher's regret stochastically smaller than random's?
                    p = float(mannwhitneyu(regret, base, alternative="less").pvalue)
                out.append(
                    {
                        "task": t,
                        "budget": n,
                        "searcher": s,
                        "runs": len(mine),
                        "regret_mean": _stat(np.mean, regret),
                        "regret_sd": _stat(lambda x: np.std(x, ddof=1), regret, 2),
                        "regret_median": _stat(np.median, regret),
                        "test_mean": _stat(np.mean, test),
                        "test_sd": _stat(lambda x: np.std(x, ddof=1), test, 2),
                        "test_median": _stat(np.median, test),
                        "p_vs_random": p,
                        "top1_fraction": float(mine["top1"].mean()) if len(mine) else math.nan,
                    }
                )
    return pd.DataFrame(out, columns=list(SUMMARY_COLUMNS))


def _stat(fn: Callable[[np.ndarray], Any], x: np.ndarray, least: int = 1) -> float:
    return float(fn(x)) if len(x) >= least else math.nan


def format_report(result: BenchResult) -> str:
    """The printed report: per task its anchors, then one line per budget and searcher."""
    lines = []
    s = result.summary
    for task, a in result.anchors.items():
        lines.append(
            f"== {task}: {a['architectures']:,} architectures; optimum val {a['best_val']:.4f} "
            f"(its test {a['test_at_best_val']:.4f}); top-1% by val: val >= "
            f"{a['top1_threshold']:.4f}, {a['top1_mass']:.2%} of the space's samples"
        )
        lines.append(
            f"{'budget':>6}  {'searcher':<12} {'runs':>4}  {'val regret mean +- sd':>22} "
            f"{'median':>7}  {'test@best-val mean +- sd':>25} {'median':>7}  "
            f"{'p<random':>8}  {'top1%':>5}"
        )
        for n in sorted(set(s["budget"])):
            for _, row in s[(s["task"] == task) & (s["budget"] == n)].iterrows():
                p = "" if math.isnan(row["p_vs_random"]) else f"{row['p_vs_random']:.3g}"
                lines.append(
                    f"{n:>6}  {row['searcher']:<12} {row['runs']:>4}  "
                    f"{_pm(row['regret_mean'], row['regret_sd']):>22} "
                    f"{row['regret_median']:>7.4f}  "
                    f"{_pm(row['test_mean'], row['test_sd']):>25} {row['test_median']:>7.4f}  "
                    f"{p:>8}  {row['top1_fraction']:>5.2f}"
                )
            lines.append(
                f"{n:>6}  {'(random expectation)':<17}  {a['random_regret'][n]:>22.4f} "
                f"{'':>7}  {'':>25} {'':>7}  {'':>8}  {a['random_top1'][n]:>5.2f}"
            )
        published = PUBLISHED.get(task)
        if published:
            for label, text in published:
                lines.append(f"  published ({label}): {text}")
        else:
            lines.append("  published: none comparable for this task (see docs/benchmarks.md)")
    lines.append(
        "regret = table's best val - best val found; test@best-val = test score of the "
        "best-by-val candidate; p<random = one-sided Mann-Whitney U on regret; top1% = fraction "
        "of runs that found a top-1% architecture by val"
    )
    lines.append("wrote " + ", ".join(str(f) for f in result.files))
    return "\n".join(lines)


def _pm(mean: float, sd: float) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.4f} +- {sd:.4f}" if not math.isnan(sd) else f"{mean:.4f}"


def plot_anytime(result: BenchResult, path: Path) -> Path:
    """Mean validation regret after each evaluation, a band of one standard error, per
    searcher; one panel per task; random search's expectation dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(result.anchors)
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for (t, searcher), trace in result.traces.items():
            if t != task:
                continue
            x = np.arange(1, trace.shape[1] + 1)
            finite = np.where(np.isfinite(trace), trace, np.nan)
            mean = np.nanmean(finite, axis=0)
            sem = np.nanstd(finite, axis=0, ddof=1) / math.sqrt(len(trace)) if len(trace) > 1 else 0
            ax.plot(x, mean, label=searcher)
            ax.fill_between(x, mean - sem, mean + sem, alpha=0.2)
        expected = result.anchors[task]["random_regret_curve"]
        ax.plot(np.arange(1, len(expected) + 1), expected, "k--", lw=1, label="random (expected)")
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_title(task)
        ax.set_xlabel("evaluations")
        ax.set_ylabel("validation regret")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(
    tasks: str,
    searchers: str,
    seeds: int,
    budgets: str,
    out: str | None,
    jobs: int | None,
    first_seed: int = 0,
) -> int:
    """The ``autodlgym bench`` command: run, print the report, return the exit code."""
    budget_list = []
    for b in budgets.split(","):
        try:
            budget_list.append(int(b))
        except ValueError:
            raise AutoDLError(f"--budgets takes integers such as 50,100; got {budgets!r}") from None
    result = run_bench(
        [t for t in tasks.split(",") if t],
        [s for s in searchers.split(",") if s],
        seeds=seeds,
        budgets=budget_list,
        out=out,
        jobs=jobs,
        first_seed=first_seed,
    )
    print(format_report(result))
    return 0
