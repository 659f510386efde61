"""Time to sample, build + initialise and diagnose models of the default space.

Input is MNIST-1D shaped (sequence (1, 40), 10 classes). For each of ``--n`` specs it times
sampling, ``build_model`` (which includes ``apply_init``), ``configure_trainable`` and
``diagnose`` on a batch of ``--batch``, and, as the baseline measured in the same process, one
training step (forward, backward, Adam step) of the same model on the same batch, so that the
cost of diagnostics can be read in training steps. Both wall-clock and process CPU time are
printed: on a shared machine CPU time is the steadier of the two.

    OMP_NUM_THREADS=1 python benchmarks/bench_build.py --n 200
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from autodlgym.nn.build import build_model, configure_trainable
from autodlgym.searchspace.io import IOSpec
from autodlgym.searchspace.space import SearchSpace
from autodlgym.training.diagnostics import diagnose

TARGET_MS = 50.0


class Clock:
    """Wall and process CPU time of a block, in milliseconds."""

    def __enter__(self) -> Clock:
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = (time.perf_counter() - self.w) * 1e3
        self.cpu = (time.process_time() - self.c) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="number of sampled specs")
    ap.add_argument("--batch", type=int, default=64, help="diagnostics batch size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    space = SearchSpace.default()
    io = IOSpec("sequence", (1, 40), 10)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.batch, *io.shape, generator=gen)
    y = torch.randint(10, (args.batch,), generator=gen)

    # warm-up: first calls import and allocate
    with torch.random.fork_rng(devices=[]):
        diagnose(build_model(space.sample(0), io), x, y)

    rows: dict[str, list[tuple[float, float]]] = {
        k: [] for k in ("sample", "build+init", "trainable", "diagnose", "total", "train step")
    }
    for i in range(args.n):
        with Clock() as c_sample:
            spec = space.sample(rng)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed + i)
            with Clock() as c_build:
                model = build_model(spec, io)
            with Clock() as c_train:
                configure_trainable(model, str(spec.get("trainable", "all")), args.seed + i)
            with Clock() as c_diag:
                diagnose(model, x, y)
            opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], 1e-3)
            with Clock() as c_step:
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
        parts = (c_sample, c_build, c_train, c_diag)
        for key, c in zip(rows, parts):
            rows[key].append((c.wall, c.cpu))
        rows["total"].append((sum(c.wall for c in parts), sum(c.cpu for c in parts)))
        rows["train step"].append((c_step.wall, c_step.cpu))

    print(
        f"default space, sequence (1, 40) -> 10 classes, {args.n} specs, batch {args.batch}, "
        f"{args.threads} thread(s)"
    )
    print(
        f"{'phase':<12} {'wall median':>12} {'wall p95':>10} {'cpu median':>11} {'cpu p95':>9}  (ms)"
    )
    for key, vals in rows.items():
        a = np.asarray(vals)
        print(
            f"{key:<12} {np.median(a[:, 0]):12.2f} {np.percentile(a[:, 0], 95):10.1f} "
            f"{np.median(a[:, 1]):11.2f} {np.percentile(a[:, 1], 95):9.1f}"
        )
    step = np.asarray(rows["train step"])[:, 1]
    diag = np.asarray(rows["diagnose"])[:, 1]
    build = np.asarray(rows["build+init"])[:, 1] + np.asarray(rows["sample"])[:, 1]
    print(f"diagnose / train step (cpu, median of per-spec ratios): {np.median(diag / step):.2f}")
    print(f"sample+build+init / train step (cpu, median of ratios): {np.median(build / step):.2f}")
    total = float(np.median(np.asarray(rows["total"])[:, 1]))
    met = "met" if total < TARGET_MS else "NOT met"
    print(
        f"target: median total (sample+build+init+diagnose) < {TARGET_MS:.0f} ms -> {total:.1f} ms cpu, {met}"
    )


if __name__ == "__main__":
    main()
