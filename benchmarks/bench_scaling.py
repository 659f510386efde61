"""Scaling and overhead of the Ray workers.

Prints:

1. trials per minute with 1 and 2 Ray workers (one torch thread each) on a fixed list of small
   MLP/CNN candidates trained for one epoch on MNIST-1D, and their ratio (target >= 1.8x on
   two free cores);
2. the per-trial cost of the whole search loop (``run_search``: ask, dispatch, store append,
   searcher tell, state save) on trivial trials that return at once, beside a Ray Tune run of
   the same number of trivial trials on the same Ray (target <= 10 ms per trial);
3. a worker's resident memory after 10 and after 200 tiny real trials (target < 100 MB growth).

Run:  ``python benchmarks/bench_scaling.py`` (``--help`` for sizes). Other processes on the
machine make the figures noisy: compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import ray  # noqa: E402

from autodlgym.execution.ray_executor import RayExecutor, ray_temp_dir  # noqa: E402
from autodlgym.searchspace.space import SearchSpace  # noqa: E402
from autodlgym.searchspace.spec import ArchSpec  # noqa: E402
from autodlgym.trial import Fidelity, TrialJob, TrialResult  # noqa: E402

BASE = {
    "n_stages": 1, "connections": "chain", "activation": "relu", "norm": "none", "dropout": 0.0,
    "init": "he_uniform", "zero_init_residual": False, "trainable": "all", "head_pool": "avg",
    "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "batch_size": 64, "grad_clip": 0.0,
    "stage1.depth": 1,
}  # fmt: skip


def scaling_specs() -> list[ArchSpec]:
    """Ten small candidates: MLPs and CNNs of a few widths and depths."""
    space = SearchSpace.default()
    out = []
    for block, width, depth in [
        ("mlp", 32, 1), ("mlp", 64, 2), ("mlp", 128, 1), ("mlp", 64, 1), ("mlp", 32, 2),
        ("conv", 16, 1), ("conv", 32, 1), ("conv", 16, 2), ("conv", 8, 2), ("conv", 32, 2),
    ]:  # fmt: skip
        values = dict(BASE, **{"stage1.block": block, "stage1.width": width})
        values["stage1.depth"] = depth
        if block == "conv":
            values.update({"stage1.kernel": 5, "stage1.dilation": 1})
        out.append(space.validate(ArchSpec(values)))
    return out


def trivial_job(job: TrialJob, device: str, reporter, worker: str, amp: bool = False):
    """A trial that returns at once: what is left is the loop's own cost."""
    return TrialResult("ok", val_score=0.5, test_score=0.5, device=device, worker=worker)


def run_all(ex: RayExecutor, jobs: list[TrialJob]) -> list[TrialResult]:
    """Keep ``capacity`` jobs in flight until all are done (the runner's pattern)."""
    pending, done = list(jobs), []
    while pending or ex.in_flight:
        while pending and ex.in_flight < ex.capacity:
            ex.submit(pending.pop(0))
        done += [r for _, r in ex.wait(timeout=60)]
    return done


def bench_scaling(epochs: int) -> None:
    specs = scaling_specs()
    fid = Fidelity(epochs=epochs)
    # every candidate twice (two seeds): 20 trials, so the last one's tail weighs less
    jobs = [TrialJob(i, s.to_json(), "mnist1d", fid, seed=i) for i, s in enumerate(specs + specs)]
    rates, train_time = {}, {}
    for n in (1, 2):
        with RayExecutor(workers=n, task_preload=["mnist1d"]) as ex:
            # warm-up: every candidate, tiny, n times over (first-call costs of torch's kernels,
            # the FLOP counter and the data on the device stay out of the timing)
            tiny = Fidelity(epochs=1, max_train_samples=64)
            warm = [s.to_json() for s in specs] * n
            run_all(ex, [TrialJob(100 + i, w, "mnist1d", tiny, 0) for i, w in enumerate(warm)])
            t0 = time.perf_counter()
            results = run_all(ex, jobs)
            wall = time.perf_counter() - t0
        bad = [r for r in results if not r.ok]
        assert not bad, f"trials failed: {[r.message for r in bad]}"
        rates[n] = len(jobs) / wall * 60
        mean_train = train_time[n] = sum(r.train_seconds for r in results) / len(results)
        print(
            f"  {n} worker(s): {len(jobs)} trials in {wall:6.2f} s = {rates[n]:6.1f} trials/min "
            f"(mean train time {mean_train:.2f} s/trial)"
        )
    speedup, contention = rates[2] / rates[1], train_time[2] / train_time[1]
    print(f"  speed-up with 2 workers: {speedup:.2f}x (target >= 1.8x)")
    # on free cores a trial trains as fast beside another one; slower means the cores are shared
    print(
        f"  a trial trained {contention:.2f}x slower beside another; speed-up with that "
        f"contention factored out: {speedup * contention:.2f}x (an estimate)"
    )


def bench_overhead(n_trials: int, tune_trials: int, workdir: Path) -> None:
    from autodlgym.runner import RunConfig, run_search

    def timed_search(name: str, trials: int) -> float:
        config = RunConfig(out=str(workdir / name), trials=trials, epochs=1, workers=2, seed=0)
        ex = RayExecutor(workers=2, job_fn=trivial_job)
        try:
            t0 = time.perf_counter()
            summary = run_search(config, executor=ex)
            wall = time.perf_counter() - t0
        finally:
            ex.close()
        assert summary.finished == trials, summary
        return wall

    # first-use costs (imports, the task's data in this process) are not per-trial costs
    warm = timed_search("warm-up", 10)
    print(f"  warm-up search of 10 trivial trials (first-use costs included): {warm:.2f} s")
    wall = timed_search("loop", n_trials)
    ours = wall / n_trials
    print(
        f"  autodlgym loop (2 workers, ask + dispatch + store append + tell): {n_trials} trials "
        f"in {wall:.2f} s = {ours * 1e3:.2f} ms/trial (target <= 10 ms)"
    )
    try:
        from ray import tune
    except ImportError:
        print('  Ray Tune is not installed: pip install "ray[tune]" to compare')
        return

    def trainable(config):
        return {"score": 0.5}

    def tune_fit(name: str, trials: int) -> float:
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space={"i": tune.grid_search(list(range(trials)))},
            tune_config=tune.TuneConfig(max_concurrent_trials=2, reuse_actors=True),
            run_config=tune.RunConfig(name=name, storage_path=str(workdir / "tune"), verbose=0),
        )
        t0 = time.perf_counter()
        grid = tuner.fit()
        wall = time.perf_counter() - t0
        assert len(grid) == trials and not grid.errors
        return wall

    small = max(2, tune_trials // 5)
    tune_fit("warmup", small)  # Tune's own first-use costs stay out of both timings
    t_small, t_large = tune_fit("small", small), tune_fit("large", tune_trials)
    theirs = (t_large - t_small) / (tune_trials - small)  # per extra trial: startup cancels
    print(
        f"  Ray Tune (2 concurrent, reused actors): {tune_trials} trials in {t_large:.2f} s "
        f"({t_large / tune_trials * 1e3:.1f} ms/trial); {small} trials in {t_small:.2f} s; "
        f"marginal {theirs * 1e3:.1f} ms/trial"
    )
    print(f"  Ray Tune marginal / autodlgym per-trial cost: {theirs / ours:.1f}x")
    print(
        f"  Ray Tune per-trial (whole run) / autodlgym per-trial cost: {t_large / tune_trials / ours:.1f}x"
    )


def bench_memory(checkpoints: tuple[int, ...]) -> None:
    import psutil

    spec = scaling_specs()[0].to_json()
    fid = Fidelity(epochs=1, max_train_samples=64)
    with RayExecutor(workers=1, task_preload=["mnist1d"]) as ex:
        proc = psutil.Process(ex.workers()[0]["pid"])
        done, rss = 0, {}
        for target in checkpoints:
            jobs = [TrialJob(i, spec, "mnist1d", fid, seed=i) for i in range(done, target)]
            results = run_all(ex, jobs)
            assert all(r.ok for r in results), [r.message for r in results if not r.ok]
            done = target
            rss[target] = proc.memory_info().rss / 2**20
            print(f"  worker RSS after {target:4d} tiny trials: {rss[target]:7.1f} MB")
    first, last = checkpoints[0], checkpoints[-1]
    print(
        f"  growth from {first} to {last} trials: {rss[last] - rss[first]:+.1f} MB (target < 100 MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epochs", type=int, default=5, help="epochs per scaling trial (5: about a second each)"
    )
    parser.add_argument("--loop-trials", type=int, default=300, help="trivial trials, our loop")
    parser.add_argument("--tune-trials", type=int, default=100, help="trivial trials, Ray Tune")
    parser.add_argument("--memory-trials", type=int, default=200)
    parser.add_argument("--skip", nargs="*", default=[], choices=["scaling", "overhead", "memory"])
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="autodlgym-bench-"))
    os.environ.setdefault("AUTODLGYM_CACHE", str(workdir / "cache"))
    temp = ray_temp_dir()
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False,
             logging_level="ERROR")  # fmt: skip
    print(
        f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f} (other work adds noise)"
    )
    try:
        if "scaling" not in args.skip:
            print(f"[scaling] {len(scaling_specs())} MNIST-1D candidates, {args.epochs} epoch(s)")
            bench_scaling(args.epochs)
        if "overhead" not in args.skip:
            print("[overhead] trivial trials")
            bench_overhead(args.loop_trials, args.tune_trials, workdir)
        if "memory" not in args.skip:
            print("[memory] one worker, real tiny trials (64 samples, 1 epoch)")
            bench_memory((10, args.memory_trials))
    finally:
        ray.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(temp, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
