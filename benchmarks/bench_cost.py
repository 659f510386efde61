"""Cost model: time per spec and FLOP error per block kind.

Prints the median and 95th percentile milliseconds of ``estimate_cost`` per spec over specs of
the default space on MNIST-1D (a cold cache: every spec distinct), and, per block kind, the
largest relative FLOP error and parameter mismatch against the built model: torch's
``FlopCounterMode`` over a meta-device forward (where LSTMs and attention run unfused, so it
sees every matrix product), parameters counted on the same model.

    python benchmarks/bench_cost.py [--specs 200] [--per-block 12] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", type=int, default=200, help="specs timed")
    ap.add_argument("--per-block", type=int, default=12, help="specs checked per block kind")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from autodlgym.searchspace.cost import _SPEC_CACHE, estimate_cost
    from autodlgym.searchspace.io import IOSpec
    from autodlgym.searchspace.registry import BLOCKS
    from autodlgym.searchspace.space import SearchSpace

    space = SearchSpace.default()
    io = IOSpec("sequence", (1, 40), 10)
    rng = np.random.default_rng(args.seed)
    specs = [space.sample(rng) for _ in range(args.specs)]
    estimate_cost(specs[0], io)  # imports
    _SPEC_CACHE.clear()
    times = []
    for spec in specs:
        t0 = time.perf_counter()
        estimate_cost(spec, io)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    print(
        f"estimate_cost over {len(specs)} default-space specs (MNIST-1D, cold cache): "
        f"median {np.median(ms):.3f} ms, p95 {np.percentile(ms, 95):.3f} ms, "
        f"max {ms.max():.2f} ms (shared 2-core machine: timings are noisy)"
    )

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from autodlgym.nn.build import build_model

    ios = [io, IOSpec("image", (1, 8, 8), 10), IOSpec("vector", (40,), 10)]
    worst: dict[str, float] = defaultdict(float)
    param_misses: dict[str, int] = defaultdict(int)
    checked: dict[str, int] = defaultdict(int)
    t0 = time.perf_counter()
    builtin_blocks = BLOCKS.builtins()
    for block in builtin_blocks:
        narrowed = SearchSpace.from_config(
            {"base": "default", "stage": {"block": {"options": [block]}}}
        )
        for k in range(args.per_block):
            spec, spec_io = narrowed.sample(rng), ios[k % len(ios)]
            cost = estimate_cost(spec, spec_io)
            with torch.device("meta"):
                model = build_model(spec, spec_io)
            model.eval()
            counter = FlopCounterMode(display=False)
            with torch.no_grad(), counter:
                model(torch.zeros(1, *spec_io.shape, device="meta"))
            flops = counter.get_total_flops()
            worst[block] = max(worst[block], abs(cost.flops - flops) / max(flops, 1))
            param_misses[block] += cost.params != sum(p.numel() for p in model.parameters())
            checked[block] += 1
    print(
        f"largest FLOP error per block kind vs FlopCounterMode on the built model "
        f"({args.per_block} specs each over 3 modalities, {time.perf_counter() - t0:.0f} s):"
    )
    for block in builtin_blocks:
        print(
            f"  {block:<10} max |error| {100 * worst[block]:.4f} %   "
            f"param mismatches {param_misses[block]}/{checked[block]}"
        )


if __name__ == "__main__":
    main()
