"""Trials per hour on one GPU: 1, 2 and 4 trials sharing it (fractional Ray GPUs), AMP off/on.

For each setting a RayExecutor with ``workers = k`` and ``gpus_per_trial = 1 / k`` trains the
same list of candidates (sampled from the default space with fixed seeds, one epoch of
MNIST-1D each, every candidate twice) after a warm-up pass, and prints trials per hour, the
mean training seconds per trial, the statuses (an ``oom`` beside a neighbour shows here) and
the mean and largest per-trial ``peak_gpu_mb``. Ratios against 1 trial per GPU without AMP,
measured in the same process, are what to compare across machines.

Run:  ``python benchmarks/bench_gpu.py`` (``--help`` for sizes). Without a CUDA GPU it says so
and exits with status 2; nothing is measured.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def _gpu_or_exit() -> str:
    import torch

    if not torch.cuda.is_available():
        sys.stderr.write(
            f"bench_gpu: torch {torch.__version__} sees no CUDA GPU (CUDA build: "
            f"{torch.version.cuda or 'none'}); run this on a machine with a GPU and a CUDA "
            "build of torch. Nothing was measured.\n"
        )
        sys.exit(2)
    name = torch.cuda.get_device_name(0)
    major, minor = torch.cuda.get_device_capability(0)
    return f"{name} (compute capability {major}.{minor}, {torch.cuda.device_count()} visible)"


def _specs(n: int, seed: int):
    from autodlgym.searchspace.space import SearchSpace

    # a narrowed default space: candidates a GPU trains in seconds, every block kind
    space = SearchSpace.from_config(
        {
            "base": "default",
            "max_stages": 2,
            "globals": {"n_stages": {"options": [1, 2]}, "batch_size": {"options": [128]}},
            "stage": {"width": {"options": [32, 64, 128]}, "depth": {"options": [1, 2]}},
        }
    )
    return [space.sample(seed + i) for i in range(n)]


def _run_all(ex, jobs):
    pending, done = list(jobs), []
    while pending or ex.in_flight:
        while pending and ex.in_flight < ex.capacity:
            ex.submit(pending.pop(0))
        done += [r for _, r in ex.wait(timeout=60)]
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=8, help="distinct specs (each run 2x)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-gpu", default="1,2,4", help="trials sharing the GPU, e.g. 1,2,4")
    args = parser.parse_args()
    device = _gpu_or_exit()

    from autodlgym.execution.ray_executor import RayExecutor
    from autodlgym.trial import Fidelity, TrialJob

    specs = _specs(args.candidates, args.seed)
    fid = Fidelity(epochs=args.epochs)
    jobs = [TrialJob(i, s.to_json(), "mnist1d", fid, seed=i) for i, s in enumerate(specs * 2)]
    tiny = Fidelity(epochs=1, max_train_samples=256)
    cpus = os.cpu_count() or 1
    print(f"GPU: {device}; {len(jobs)} trials of {len(specs)} candidates, {args.epochs} epoch(s)")
    base = None
    for k in [int(v) for v in args.per_gpu.split(",")]:
        for amp in (False, True):
            with RayExecutor(
                workers=k,
                gpus_per_trial=1.0 / k,
                cpus_per_trial=max(1, cpus // k),
                amp=amp,
                task_preload=["mnist1d"],
            ) as ex:
                warm = [
                    TrialJob(1000 + i, s.to_json(), "mnist1d", tiny, 0) for i, s in enumerate(specs)
                ]
                _run_all(ex, warm)
                t0 = time.perf_counter()
                results = _run_all(ex, jobs)
                wall = time.perf_counter() - t0
            rate = len(jobs) / wall * 3600
            base = base or rate
            statuses: dict[str, int] = {}
            for r in results:
                statuses[r.status] = statuses.get(r.status, 0) + 1
            peaks = [r.peak_gpu_mb for r in results if r.peak_gpu_mb is not None]
            train = sum(r.train_seconds for r in results) / len(results)
            print(
                f"  {k} per GPU, AMP {'on ' if amp else 'off'}: {rate:8.0f} trials/hour "
                f"({rate / base:.2f}x), {train:.2f} s training/trial, "
                f"statuses {statuses}, peak GPU memory mean "
                f"{sum(peaks) / max(len(peaks), 1):.0f} MiB, max {max(peaks, default=0):.0f} MiB"
            )


if __name__ == "__main__":
    main()
