"""What the one-shot tests share: a tiny sub-space and a 64-example slice of MNIST-1D."""

from __future__ import annotations

from autodlgym.tasks.base import get_task
from autodlgym.tasks.files import from_arrays

#: 2 blocks x 2 widths x 2 depths (x 2 kernels for conv) x 2 learning rates x 2 init laws
TINY = {
    "base": "default",
    "max_stages": 1,
    "remove": ["growth", "heads", "momentum"],
    "globals": {
        "n_stages": {"options": [1]},
        "connections": {"options": ["chain"]},
        "activation": {"options": ["relu"]},
        "norm": {"options": ["none"]},
        "dropout": {"options": [0.0]},
        "init": {"options": ["he_normal", "orthogonal"]},
        "zero_init_residual": {"options": [False]},
        "trainable": {"options": ["all", "head"]},
        "head_pool": {"options": ["avg"]},
        "optimizer": {"options": ["adam"]},
        "lr": {"options": [1e-3, 1e-2]},
        "weight_decay": {"options": [0.0]},
        "batch_size": {"options": [32]},
        "grad_clip": {"options": [0.0]},
    },
    "stage": {
        "block": {"options": ["conv", "recurrent"]},
        "depth": {"options": [1, 2]},
        "width": {"options": [4, 8]},
        "kernel": {"options": [3, 5], "when": {"block": ["conv"]}},
        "dilation": {"options": [1]},
        "cell": {"options": ["gru"]},
        "bidirectional": {"options": [False]},
        "chrono_init": {"options": [False], "when": {"cell": ["gru"]}},
    },
}


def mnist1d_slice(path):
    """A task of 64 training and 64 validation examples of MNIST-1D, stored at ``path``."""
    data = get_task("mnist1d").load()
    return from_arrays(
        data.x_train[:64], data.y_train[:64], data.x_val[:64], data.y_val[:64],
        data.x_test[:32], data.y_test[:32], path=path,
    )  # fmt: skip
