"""Speed of tabular tasks: a search of 1,000 lookups, and Gym env steps per second.

1. ``run_search`` with random search for 1,000 evaluations on each task, in-process, store
   writes included (target < 5 s wall); printed with the per-trial cost split into the
   searcher, the lookup and the store (from cProfile on a second run).
2. ``AutoDLEnv`` steps per second on each task (random actions, episodes of 100
   evaluations, through ``gymnasium.make`` with its checker wrappers; target >= 1,000), and
   the vector env (4 copies) in copy-steps per second.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_tabular.py [--tasks nasbench-graph:cora,mnist1d-table]

The machine may be shared: timings are wall clock and vary with the load.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

import gymnasium

import autodlgym  # noqa: F401 - registers the env ids
from autodlgym.envs.registration import env_id, env_names
from autodlgym.runner import RunConfig, run_search
from autodlgym.tasks import get_task


def search_seconds(task: str, trials: int, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds of a whole random search."""
    epochs = get_task(task).lookup().default_epochs
    t0, c0 = time.perf_counter(), time.process_time()
    summary = run_search(
        RunConfig(out=str(out), task=task, searcher="random", trials=trials, epochs=epochs)
    )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert summary.finished == trials
    return wall, cpu


def split(task: str, trials: int, out: Path) -> dict[str, float]:
    """Milliseconds per trial in the searcher, the lookup and the store (cProfile)."""
    epochs = get_task(task).lookup().default_epochs
    prof = cProfile.Profile()
    prof.enable()
    run_search(RunConfig(out=str(out), task=task, searcher="random", trials=trials, epochs=epochs))
    prof.disable()
    stats = pstats.Stats(prof).stats
    parts = {"searcher ask": "ask", "lookup": "evaluate_lookup", "store": "append"}
    out_ms = {}
    for label, func in parts.items():
        cum = [v[3] for k, v in stats.items() if k[2] == func]
        out_ms[label] = 1000 * max(cum, default=0.0) / trials
    total = [v[3] for k, v in stats.items() if k[2] == "run_search"]
    out_ms["total"] = 1000 * max(total, default=0.0) / trials
    return out_ms


def env_rate(task: str, steps: int = 3000) -> tuple[float, float]:
    """Steps per second of wall and of CPU time."""
    env = gymnasium.make(env_id(task), budget=100)
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(steps)]
    t0, c0 = time.perf_counter(), time.process_time()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    rates = steps / (time.perf_counter() - t0), steps / (time.process_time() - c0)
    env.close()
    return rates


def vector_rate(task: str, steps: int = 750, copies: int = 4) -> tuple[float, float]:
    """Copy-steps per second of wall and of CPU time."""
    env = gymnasium.make_vec(env_id(task), num_envs=copies, budget=100)
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(steps)]
    t0, c0 = time.perf_counter(), time.process_time()
    for action in actions:
        env.step(action)
    rates = copies * steps / (time.perf_counter() - t0), copies * steps / (time.process_time() - c0)
    env.close()
    return rates


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="nasbench-graph:cora,mnist1d-table")
    p.add_argument("--trials", type=int, default=1000)
    args = p.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    for t in tasks:
        if t not in env_names():
            sys.exit(f"{t} has no Gym id; choose from {', '.join(env_names())}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall times suffer)")
    print(f"1. random search, {args.trials} evaluations in-process (store included)")
    with tempfile.TemporaryDirectory() as tmp:
        for i, t in enumerate(tasks):
            get_task(t).lookup()  # the table's one-off load is not the per-trial cost
            wall, cpu = search_seconds(t, args.trials, Path(tmp) / f"a{i}")
            ms = split(t, args.trials, Path(tmp) / f"b{i}")
            print(
                f"  {t:<24} {wall:5.2f} s wall, {cpu:5.2f} s CPU (target < 5 s); per trial "
                f"(cProfile, inflated) {ms['total']:.2f} ms: searcher ask "
                f"{ms['searcher ask']:.2f}, lookup {ms['lookup']:.2f}, store append "
                f"{ms['store']:.2f}"
            )
    print("2. Gym steps per second (gymnasium.make, random actions; target >= 1000): wall / CPU")
    for t in tasks:
        (w, c), (vw, vc) = env_rate(t), vector_rate(t)
        print(
            f"  {t:<24} AutoDLEnv {w:6.0f} / {c:6.0f} steps/s;  "
            f"vector env x4 {vw:6.0f} / {vc:6.0f} copy-steps/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
