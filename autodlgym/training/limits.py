"""Trial time limits that follow the machine.

A fixed limit is right for one load only: on a machine busy with other work every trial
trains slower and an idle machine's limit cuts most of them. Instead each process (the search's
own, or each Ray worker) keeps a :class:`Throughput`: how long its training takes, measured
on this machine while the run goes. A trial's limit is its predicted seconds, from the cost
model's FLOPs, times :data:`LIMIT_MARGIN`, and never below :data:`LIMIT_FLOOR`::

    predicted = slowdown * (steps * step_seconds + training_flops / flops_per_second)
    limit     = max(LIMIT_FLOOR, LIMIT_MARGIN * predicted)

``step_seconds`` (what one optimiser step costs beyond its arithmetic) and
``flops_per_second`` are measured once per process (:func:`calibrate`, about 0.2 s, under
whatever load the machine has then); ``slowdown`` is the median, over the last
:data:`WINDOW` stretches of training between two validation checks of any trial of the
process, of the seconds measured over the seconds predicted. So the limit follows the machine
as its load changes, and a candidate that is slow for its FLOPs (many small kernels, a
recurrence) still meets a limit. Training FLOPs count a forward and a backward pass as three
forward passes, evaluation as one.

The measured training speed, ``flops_per_second / slowdown`` (FLOPs of training per second),
is what :attr:`Throughput.flops_per_second_now` reports and each trial records.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from collections import deque
from dataclasses import dataclass, field

#: the least adaptive limit, in seconds (building, diagnostics and a first evaluation fit)
LIMIT_FLOOR = 5.0
#: an adaptive limit is this many times the trial's predicted seconds
LIMIT_MARGIN = 4.0
#: stretches of training the slowdown is the median over
WINDOW = 32
#: the slowdown before any training was measured: candidates of the default space train at
#: about a third of the calibration's speed (measured: median 3.1 over 10 MNIST-1D samples)
PRIOR_SLOWDOWN = 3.0
#: a forward and a backward pass cost about three forward passes
TRAIN_FLOPS_FACTOR = 3
#: optimiser steps' worth of fixed cost per trial (building, diagnostics, FLOP counting)
FIXED_STEPS = 20
#: seconds a trial cut at its limit may spend on its final evaluation: this share of its
#: limit, and at least :data:`GRACE_FLOOR`
GRACE_SHARE = 0.25
GRACE_FLOOR = 5.0
#: the floor is this many times higher while the process has measured no training yet: its
#: first trial also pays one-off costs (the first convolution's kernels chosen and allocated;
#: measured: 10 s for one step of a 32x32 image CNN at load 10, then 0.1 s)
COLD_FLOOR_FACTOR = 3.0


@dataclass
class Throughput:
    """How fast this process trains (see the module docstring).

    Args:
        step_seconds: seconds an optimiser step costs beyond its arithmetic.
        flops_per_second: FLOPs per second of training arithmetic.
    """

    step_seconds: float
    flops_per_second: float
    ratios: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))

    def slowdown(self) -> float:
        """Measured over predicted seconds: the median of the recent stretches
        (:data:`PRIOR_SLOWDOWN` before any)."""
        return statistics.median(self.ratios) if self.ratios else PRIOR_SLOWDOWN

    def base_seconds(self, steps: float, flops: float) -> float:
        """Seconds predicted from the calibration alone."""
        return steps * self.step_seconds + flops / self.flops_per_second

    def predict(self, steps: float, flops: float) -> float:
        """Seconds ``steps`` optimiser steps doing ``flops`` FLOPs in all take now."""
        return self.slowdown() * self.base_seconds(steps, flops)

    def observe(self, steps: int, flops: float, seconds: float) -> None:
        """A stretch of training took ``seconds``."""
        base = self.base_seconds(steps, flops)
        if steps > 0 and base > 0 and seconds > 0 and math.isfinite(seconds):
            self.ratios.append(seconds / base)

    @property
    def flops_per_second_now(self) -> float:
        """Training FLOPs per second as measured now (the calibration over the slowdown)."""
        return self.flops_per_second / self.slowdown()


def trial_limit(
    throughput: Throughput,
    flops_per_example: float,
    train_examples: int,
    steps: int,
    eval_examples: int,
    ceiling: float | None = None,
    floor: float | None = None,
    margin: float | None = None,
) -> float:
    """The time limit of a trial: ``margin`` times its predicted seconds, at least ``floor``,
    at most ``ceiling`` (a limit the trial's fidelity sets; None: none).

    Args:
        throughput: this process's :class:`Throughput`.
        flops_per_example: one example's forward FLOPs (the cost model's).
        train_examples: examples trained on, over all epochs.
        steps: optimiser steps, over all epochs.
        eval_examples: examples scored (validation checks and the test set).
        floor, margin: None: :data:`LIMIT_FLOOR`, :data:`LIMIT_MARGIN`; the floor is
            :data:`COLD_FLOOR_FACTOR` times higher before the process measured any training.
    """
    floor = LIMIT_FLOOR if floor is None else floor
    if not throughput.ratios:
        floor *= COLD_FLOOR_FACTOR
    margin = LIMIT_MARGIN if margin is None else margin
    flops = flops_per_example * (TRAIN_FLOPS_FACTOR * train_examples + eval_examples)
    predicted = throughput.predict(steps + FIXED_STEPS, flops)
    limit = max(floor, margin * predicted)
    return min(limit, ceiling) if ceiling is not None else limit


def grace(limit: float) -> float:
    """Seconds a trial cut at ``limit`` may spend scoring what it learned."""
    return max(GRACE_FLOOR, GRACE_SHARE * limit)


_PROCESS: Throughput | None = None


def process_throughput() -> Throughput:
    """This process's :class:`Throughput`, calibrated on first use (each Ray worker has its
    own)."""
    global _PROCESS
    if _PROCESS is None:
        _PROCESS = calibrate()
    return _PROCESS


def set_process_throughput(throughput: Throughput | None) -> None:
    """Replace this process's :class:`Throughput` (None: calibrate again on next use)."""
    global _PROCESS
    _PROCESS = throughput


def calibrate(seconds: float = 0.05) -> Throughput:
    """Measure this machine now, on torch's threads of this process, each for about
    ``seconds``: the seconds of a tiny optimiser step (its fixed cost), and the FLOPs per
    second of a training step of a small network at batch 128 (a 64-256-256-10 MLP, the size
    of a typical candidate, so its speed is near what candidates reach)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        tiny = torch.nn.Linear(8, 8)
        x8 = torch.randn(8, 8)
        step_seconds = _time_per_call(
            functools.partial(_step, tiny, torch.optim.Adam(tiny.parameters()), x8), seconds, 3
        )
        sizes = (64, 256, 256, 10)
        layers: list[torch.nn.Module] = []
        for a, b in zip(sizes, sizes[1:]):
            layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
        mlp = torch.nn.Sequential(*layers[:-1])
        x = torch.randn(128, sizes[0])
        step = functools.partial(_step, mlp, torch.optim.Adam(mlp.parameters()), x)
        # the median of three: one measurement of a busy machine's speed varies by 3x
        per_step = statistics.median(_time_per_call(step, seconds, 3) for _ in range(3))
    flops = TRAIN_FLOPS_FACTOR * 128 * sum(2 * a * b for a, b in zip(sizes, sizes[1:]))
    arithmetic = max(per_step - step_seconds, per_step / 2)
    return Throughput(step_seconds=step_seconds, flops_per_second=flops / arithmetic)


def _step(model, opt, x) -> None:
    opt.zero_grad(set_to_none=True)
    model(x).square().mean().backward()
    opt.step()


def _time_per_call(fn, seconds: float, warm: int) -> float:
    for _ in range(warm):
        fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds or n >= 10_000:
            return elapsed / n
