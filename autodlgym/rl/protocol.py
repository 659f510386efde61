"""Judge an agent on a suite's held-out tasks, with the figures of ``autodlgym bench``.

:func:`evaluate` runs, for every fold, the agent on the fold's test tasks (one search of
``budget`` evaluations per seed) beside the baselines (searchers run exactly as ``autodlgym
bench`` runs them), and reports through the same code (:func:`autodlgym.analysis.bench.collect`):
per task and budget the mean / sd / median validation regret, the test score of the best by
validation, the one-sided Mann-Whitney U p-value against random search and the fraction of
runs that found a top-1 % architecture. So agents and searchers share one leaderboard.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autodlgym.analysis.bench import BASELINE, BenchResult, collect, run_searches
from autodlgym.errors import AutoDLError
from autodlgym.rl.suites import Fold, Suite, get


def evaluate(
    agent: Any,
    suite: str | Suite,
    *,
    folds: Sequence[str] | None = None,
    seeds: int = 30,
    budget: int | None = None,
    baselines: Sequence[str] = (BASELINE,),
    first_seed: int = 0,
    name: str = "agent",
    out: str | Path | None = None,
    jobs: int = 1,
    log: Callable[[str], None] | None = None,
) -> BenchResult:
    """The agent's and the baselines' figures on the held-out tasks of ``suite``.

    Args:
        agent: what searches, per fold (a mapping fold name -> agent gives each fold its own,
            e.g. a policy trained on that fold): a searcher name such as ``"rl:PATH"`` or
            ``"tpe"`` (run as ``autodlgym bench`` runs searchers), a callable
            ``agent(obs, info) -> action`` on :class:`~autodlgym.envs.search_env.SearchEpisodeEnv`
            (its ``reset()``, if any, is called before each search), or a Stable-Baselines3
            model (``predict``; a recurrent model's state is carried through the search).
        suite: a suite or its name (:func:`autodlgym.rl.suites.names`).
        folds: the folds to run (default all).
        seeds: searches per test task and method, seeds ``first_seed`` onwards (a search is
            determined by its task, method and seed).
        budget: evaluations per search (default the suite's).
        baselines: searchers run beside the agent; random search is always one of them.
        name: the agent's label in the report.
        out: directory for the CSVs, the plot and the baselines' runs (default: a new
            temporary directory, kept).
        jobs: processes running the baselines' searches.
        log: where progress lines go (default stderr).

    Raises:
        AutoDLError: an unknown suite or fold, a test task that trains (the figures need a
            table's optimum), bad counts.
    """
    the_suite = get(suite) if isinstance(suite, str) else suite
    chosen = [the_suite.fold(f) for f in folds] if folds is not None else list(the_suite.folds)
    budget = int(budget or the_suite.budget)
    if seeds < 1 or budget < 1:
        raise AutoDLError(f"seeds and budget must be positive, got {seeds} and {budget}")
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    out_dir = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="autodlgym-rl-"))
    methods = list(dict.fromkeys([BASELINE, *baselines]))
    from autodlgym.tasks import get_task

    for fold in chosen:
        for task in fold.test:
            if get_task(task).kind != "lookup":
                raise AutoDLError(
                    f"evaluate reports regret against a table's optimum; test task {task!r} "
                    "trains its candidates (run the agent with --searcher and compare runs)"
                )
    results: list[dict[str, Any]] = []
    work = []
    for fold in chosen:
        for task in fold.test:
            for method in methods:
                for seed in range(first_seed, first_seed + seeds):
                    run_dir = out_dir / "runs" / _safe(task) / method / f"seed{seed}"
                    work.append((task, method, seed, budget, str(run_dir)))
    results.extend(run_searches(work, jobs, log))
    t0 = time.monotonic()
    for fold in chosen:
        the_agent = agent[fold.name] if isinstance(agent, Mapping) else agent
        for task in fold.test:
            for seed in range(first_seed, first_seed + seeds):
                results.append(_run_agent(the_agent, fold, task, seed, budget, name))
        log(f"evaluate: fold {fold.name} done ({time.monotonic() - t0:.1f} s)")
    tasks = list(dict.fromkeys(t for f in chosen for t in f.test))
    return collect(results, tasks, [*methods, name], [budget], out_dir)


def _safe(task: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in task)


def _run_agent(agent: Any, fold: Fold, task: str, seed: int, budget: int, name: str) -> dict:
    """One search of the agent on ``task``: its validation and test score per evaluation."""
    started = time.monotonic()
    if isinstance(agent, str | Path):
        from autodlgym.analysis.bench import _run_one

        with tempfile.TemporaryDirectory() as tmp:
            r = _run_one(task, str(agent), seed, budget, str(Path(tmp) / "run"))
        r["searcher"] = name
        return r
    from autodlgym.envs.search_env import SearchEpisodeEnv

    env = SearchEpisodeEnv(task, budget=budget, report_test=True)
    obs, info = env.reset(seed=seed)
    if hasattr(agent, "reset"):
        agent.reset()
    state, start = None, np.ones(1, dtype=bool)
    val, test = [], []
    for _ in range(budget):
        if hasattr(agent, "predict"):  # a Stable-Baselines3 model
            action, state = agent.predict(obs, state=state, episode_start=start)
            start = np.zeros(1, dtype=bool)
        else:
            action = agent(obs, info)
        obs, _, terminated, _, info = env.step(action)
        ok = info["status"] == "ok" and "val_score" in info
        val.append(info["val_score"] if ok else np.nan)
        test.append(info.get("test_score", np.nan) if ok else np.nan)
        if terminated:
            break
    env.close()
    return {
        "task": task,
        "searcher": name,
        "seed": seed,
        "val": np.array(val, dtype=float),
        "test": np.array(test, dtype=float),
        "seconds": time.monotonic() - started,
    }
