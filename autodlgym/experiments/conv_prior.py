"""Convolution as a spatial prior: the MNIST-1D paper's 2 x 3 table.

Greydanus (2020) trains an MLP, a CNN and a GRU on MNIST-1D (test accuracy 68 / 94 / 91 %) and
on its spatially shuffled variant (68 / 56 / 57 %): the shuffle leaves the MLP unchanged and
takes most of the advantage of the models whose prior is locality or order. The three models
are autodlgym specs in ``mnist1d_reference.yaml`` (the default space widened to the paper's
sizes), trained with the paper's settings (Adam, lr 1e-2, batch 100, 6000 steps):

- MLP: two ``mlp`` blocks of width 100 with a skip connection, flattening head.
- CNN: three ``conv`` stages of 25 channels, kernels 5, 3, 3, max-pooling between stages (the
  paper uses stride 2), flattening head.
- GRU: a bidirectional ``recurrent`` GRU block of 6 units per direction, flattening head.

Our split holds 500 of the 4000 training examples out for validation.
"""

from __future__ import annotations

import math

from autodlgym.experiments.base import Outcome, figure, load_space, pct, train

NAME = "conv-prior"
CLAIM = "locality (CNN) and order (GRU) help on MNIST-1D and lose their edge when it is shuffled"
SOURCE = "Greydanus 2020 (MNIST-1D)"

#: test accuracy in % reported by the paper: (mnist1d, mnist1d_shuffled)
PAPER = {"mlp": (68, 68), "cnn": (94, 56), "gru": (91, 57)}

TRAINING = {
    "optimizer": "adam", "lr": 1e-2, "weight_decay": 0.0, "batch_size": 100, "grad_clip": 0.0,
    "activation": "relu", "norm": "none", "dropout": 0.0, "init": "torch_default",
    "zero_init_residual": False, "trainable": "all",
}  # fmt: skip

SPECS = {
    "mlp": {
        "n_stages": 1, "stage1.block": "mlp", "stage1.depth": 2, "stage1.width": 100,
        "connections": "skip2", "head_pool": "flatten", **TRAINING,
    },
    "cnn": {
        "n_stages": 3,
        "stage1.block": "conv", "stage1.depth": 1, "stage1.width": 25, "stage1.kernel": 5,
        "stage1.dilation": 1,
        "stage2.downsample": "max", "stage2.block": "conv", "stage2.depth": 1,
        "stage2.width": 25, "stage2.kernel": 3, "stage2.dilation": 1,
        "stage3.downsample": "max", "stage3.block": "conv", "stage3.depth": 1,
        "stage3.width": 25, "stage3.kernel": 3, "stage3.dilation": 1,
        "connections": "chain", "head_pool": "flatten", **TRAINING,
    },
    "gru": {
        "n_stages": 1, "stage1.block": "recurrent", "stage1.depth": 1, "stage1.width": 12,
        "stage1.cell": "gru", "stage1.bidirectional": True, "stage1.chrono_init": False,
        "connections": "chain", "head_pool": "flatten", **TRAINING,
    },
}  # fmt: skip

TASKS = ("mnist1d", "mnist1d_shuffled")


def run(quick: bool = False, seed: int = 0, steps: int | None = None) -> Outcome:
    import pandas as pd

    from autodlgym.tasks import get_task

    steps = steps or (40 if quick else 6000)
    space = load_space("mnist1d_reference")
    rows = []
    for task_name in TASKS:
        task = get_task(task_name)
        n_train = task.load().sizes()[0]
        epochs = max(1, round(steps / math.ceil(n_train / TRAINING["batch_size"])))
        for model, values in SPECS.items():
            r = train(space, values, task, epochs=epochs, seed=seed)
            rows.append(
                {
                    "task": task_name,
                    "model": model,
                    "params": r.params,
                    "epochs": epochs,
                    "status": r.status,
                    "val": pct(r.val_score),
                    "measured": pct(r.test_score),
                    "published": PAPER[model][task_name == "mnist1d_shuffled"],
                }
            )
    table = pd.DataFrame(rows)
    fig, (ax,) = figure(width=6.0)
    width = 0.2
    for i, task_name in enumerate(TASKS):
        sub = table[table.task == task_name]
        xs = [j + (i - 0.5) * 2 * width for j in range(len(sub))]
        ax.bar([x - width / 2 for x in xs], sub.measured.astype(float), width, label=f"{task_name}")
        ax.bar([x + width / 2 for x in xs], sub.published, width, alpha=0.35, hatch="//",
               color=f"C{i}", label=f"{task_name} (paper)")  # fmt: skip
    ax.set_xticks(range(len(SPECS)), list(SPECS))
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("MNIST-1D: ordered against shuffled positions")
    fig.tight_layout()
    m = table.set_index(["task", "model"]).measured
    lines = [
        f"ordered: MLP {m['mnist1d', 'mlp']} / CNN {m['mnist1d', 'cnn']} / GRU "
        f"{m['mnist1d', 'gru']} % (paper 68 / 94 / 91); shuffled: MLP "
        f"{m['mnist1d_shuffled', 'mlp']} / CNN {m['mnist1d_shuffled', 'cnn']} / GRU "
        f"{m['mnist1d_shuffled', 'gru']} % (paper 68 / 56 / 57), after {steps} steps.",
    ]
    return Outcome(table, fig, lines)
