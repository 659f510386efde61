"""MNIST-1D reference models, trained through autodlgym, beside the paper's accuracies.

Greydanus (2020), "Scaling down deep learning", reports test accuracies of an MLP, a CNN and a
GRU on MNIST-1D (68 %, 94 %, 91 %) and on its spatially shuffled variant (68 %, 56 %, 57 %):
the shuffle leaves the MLP unchanged and costs the models with spatial priors most of their
advantage. This script expresses the three models as autodlgym specs in a space widened to the
paper's sizes and trains them with the paper's settings (Adam, lr 1e-2, batch 100, no weight
decay, 6000 steps). The paper's models, in the mnist1d repository:

- MLP: Linear(40, 100), ReLU, h + ReLU(Linear(100, 100)), Linear(100, 10).
- CNN: three Conv1d of 25 channels, kernels 5, 3, 3 with stride 2, ReLU, flatten, Linear.
- GRU: bidirectional GRU with 6 units per direction over the 40 steps, all outputs flattened,
  Linear.

The specs (shared with ``autodlgym experiment conv-prior``) follow them within this search space's vocabulary: the MLP uses two ``mlp`` blocks
of width 100 with a skip connection; the CNN uses ``conv`` stages of width 25 with kernels 5, 3,
3 and max-pooling between stages in place of stride 2; the GRU is a bidirectional ``recurrent``
block of width 12 (6 per direction) with a flattening head. Our data split holds 500 of the
4000 training examples out for validation, so the models train on 3500.

    OMP_NUM_THREADS=1 python benchmarks/mnist1d_reference.py [--steps 6000] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import time

from autodlgym.experiments.base import load_space
from autodlgym.experiments.conv_prior import PAPER, SPECS, TRAINING
from autodlgym.tasks import get_task
from autodlgym.training.trainer import train_and_score
from autodlgym.trial import Fidelity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000, help="optimizer steps (paper: 6000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=list(SPECS), choices=list(SPECS))
    args = parser.parse_args()

    space = load_space("mnist1d_reference")
    rows = []
    for task_name in ("mnist1d", "mnist1d_shuffled"):
        task = get_task(task_name)
        n_train = task.load().sizes()[0]
        steps_per_epoch = math.ceil(n_train / TRAINING["batch_size"])
        epochs = max(1, round(args.steps / steps_per_epoch))
        for model in args.models:
            spec = space.validate(SPECS[model])
            t0 = time.perf_counter()
            r = train_and_score(spec, task, Fidelity(epochs=epochs), seed=args.seed,
                                diagnostics=False)  # fmt: skip
            seconds = time.perf_counter() - t0
            paper = PAPER[model][task_name == "mnist1d_shuffled"]
            rows.append((task_name, model, r, paper, epochs * steps_per_epoch, seconds))
            test = f"{100 * r.test_score:5.1f}" if r.test_score is not None else "  n/a"
            print(f"{task_name:<17} {model:<4} test {test} %  paper {paper} %  ({r.status}, "
                  f"{seconds:.0f} s)", flush=True)  # fmt: skip

    print()
    print(f"{'task':<17} {'model':<5} {'params':>7} {'steps':>6} {'val %':>6} {'test %':>7} "
          f"{'paper %':>8} {'seconds':>8}")  # fmt: skip
    for task_name, model, r, paper, steps, seconds in rows:
        val = f"{100 * r.val_score:.1f}" if r.val_score is not None else r.status
        test = f"{100 * r.test_score:.1f}" if r.test_score is not None else r.status
        print(f"{task_name:<17} {model:<5} {r.params or 0:>7} {steps:>6} {val:>6} {test:>7} "
              f"{paper:>8} {seconds:>8.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
