"""Random features: how much of a network must train?

Saxe et al. (2011) found that random convolutional filters with a trained linear readout keep
much of the accuracy of fully trained networks; Rosenfeld & Tsotsos (2019) that training a
small fraction (~10 %) of each layer's units gets close to full training, that a single
trained layer does best in the middle of the network, and that batch norm matters for random
features. The ``trainable`` decision (``trainable.yaml``) expresses each setting: ``all``,
``fraction_0.1``, ``head`` (random features, trained readout) and ``block_<k>`` (one block
and the readout), for a 3-block CNN and a 3-block MLP, with and without batch norm.
"""

from __future__ import annotations

import numpy as np

from autodlgym.experiments.base import Outcome, figure, load_space, make_spec, pct, train

NAME = "random-features"
CLAIM = "random features with a trained readout keep much of the accuracy; ~10 % of units suffice"
SOURCE = "Saxe et al. 2011; Rosenfeld & Tsotsos 2019"

MODES = ("all", "fraction_0.1", "head", "block_1", "block_2", "block_3")
PUBLISHED = {
    "all": "reference",
    "fraction_0.1": "close to all",
    "head": "well above chance, below all",
    "block_1": "below block_2",
    "block_2": "best single layer",
    "block_3": "below block_2",
}


def _model(space, kind: str, norm: str):
    if kind == "cnn":
        values = {"n_stages": 3}
        for i in (1, 2, 3):
            values |= {f"stage{i}.block": "conv", f"stage{i}.depth": 1, f"stage{i}.width": 32,
                       f"stage{i}.kernel": 5 if i == 1 else 3}  # fmt: skip
            if i > 1:
                values[f"stage{i}.downsample"] = "max"
    else:
        values = {"n_stages": 1, "stage1.block": "mlp", "stage1.depth": 3, "stage1.width": 256}
    return make_spec(space, **values, norm=norm, lr=1e-2 if kind == "cnn" else 2e-3)


def run(quick: bool = False, seed: int = 0) -> Outcome:
    import pandas as pd

    from autodlgym.tasks import get_task

    epochs, seeds, models = (1, 1, ("cnn", "mlp")) if quick else (20, 3, ("cnn", "mlp"))
    space = load_space("trainable")
    task = get_task("mnist1d")
    rows = []
    for kind in models:
        for norm in ("none", "batch"):
            base = _model(space, kind, norm)
            for mode in MODES:
                spec = space.validate({**base, "trainable": mode})
                results = [
                    train(space, spec, task, epochs, seed=s) for s in range(seed, seed + seeds)
                ]
                tests = [r.test_score for r in results if r.test_score is not None]
                rows.append(
                    {
                        "model": kind,
                        "norm": norm,
                        "trainable": mode,
                        "trainable_params": results[0].trainable_params,
                        "measured": pct(np.mean(tests)) if tests else None,
                        "sd": pct(np.std(tests)) if tests else None,
                        "published": PUBLISHED[mode],
                    }
                )
    table = pd.DataFrame(rows)
    fig, axes = figure(ncols=len(models), width=5.0)
    for ax, kind in zip(axes, models):
        sub = table[table.model == kind]
        for j, norm in enumerate(("none", "batch")):
            s = sub[sub.norm == norm]
            xs = np.arange(len(MODES)) + (j - 0.5) * 0.38
            ax.bar(xs, s.measured.astype(float), 0.38, label=f"norm={norm}")
        ax.set_xticks(range(len(MODES)), MODES, rotation=30, fontsize=8)
        ax.set_title(f"{kind.upper()} on MNIST-1D: which weights train")
        ax.set_ylabel("test accuracy (%)")
        ax.axhline(10, color="grey", lw=0.8, ls=":")
        ax.legend(fontsize=8)
    fig.tight_layout()
    acc = table.set_index(["model", "norm", "trainable"]).measured
    lines = []
    for kind in models:
        best_block = max(("block_1", "block_2", "block_3"), key=lambda m: acc[kind, "batch", m])
        lines.append(
            f"{kind}: all {acc[kind, 'batch', 'all']} %, 10 % of units "
            f"{acc[kind, 'batch', 'fraction_0.1']} %, readout only {acc[kind, 'batch', 'head']} % "
            f"(without batch norm {acc[kind, 'none', 'head']} %); best single block: {best_block}."
        )
    return Outcome(table, fig, lines)
