"""Skip connections make depth trainable.

He et al. (2016): plain stacks get worse as they deepen (higher training error at 56 than at
20 layers on CIFAR-10), residual stacks do not; Srivastava et al. (2015): highway networks
train at depths where plain ones fail. Here one stage of 2 to 32 blocks of ``deep_stacks.yaml``
(plain ``mlp`` and ``conv``, skip ``highway`` and ``residual``) trains for a fixed budget on
MNIST-1D (batch norm in every stack, as in the papers), and the init diagnostics at step 0 (gradient-norm ratio between the blocks) are
recorded beside the accuracy.
"""

from __future__ import annotations

from autodlgym.experiments.base import Outcome, figure, load_space, make_spec, pct

NAME = "skip-depth"
CLAIM = "plain stacks degrade with depth; residual and highway stacks stay trainable"
SOURCE = "He et al. 2016; Srivastava et al. 2015"

KINDS = {"mlp": "plain", "highway": "skip", "conv": "plain", "residual": "skip"}


def run(quick: bool = False, seed: int = 0) -> Outcome:
    import pandas as pd

    from autodlgym.tasks import get_task
    from autodlgym.training.trainer import train_and_score
    from autodlgym.trial import Fidelity

    depths, epochs, samples = ((2, 8), 1, 1000) if quick else ((2, 4, 8, 16, 32), 4, None)
    space = load_space("deep_stacks")
    task = get_task("mnist1d")
    rows = []
    for block in KINDS:
        for depth in depths:
            values = {"stage1.block": block, "stage1.depth": depth, "stage1.width": 32}
            # batch norm in every stack, as in both papers' plain and skip networks
            spec = make_spec(space, n_stages=1, **values, lr=1e-3, batch_size=64, norm="batch")
            fidelity = Fidelity(epochs=epochs, max_train_samples=samples)
            r = train_and_score(spec, task, fidelity, seed=seed)
            d = r.diagnostics
            rows.append(
                {
                    "block": block,
                    "kind": KINDS[block],
                    "depth": depth,
                    "status": r.status,
                    "measured": pct(r.test_score),
                    "grad_ratio_at_init": _grad_ratio(d),
                    "published": "degrades with depth"
                    if KINDS[block] == "plain"
                    else "stays trainable",
                }
            )
    table = pd.DataFrame(rows)
    fig, (ax, bx) = figure(ncols=2, width=4.8)
    for i, block in enumerate(KINDS):
        sub = table[table.block == block]
        ls = "--" if KINDS[block] == "plain" else "-"
        ax.plot(
            sub.depth, sub.measured.astype(float), ls=ls, marker="o", color=f"C{i}", label=block
        )
        bx.plot(sub.depth, sub.grad_ratio_at_init.astype(float), ls=ls, marker="o", color=f"C{i}")
    for a in (ax, bx):
        a.set_xscale("log", base=2)
        a.set_xlabel("blocks")
    ax.set_ylabel(f"test accuracy after {epochs} epochs (%)")
    bx.set_ylabel("max / min block gradient norm at init")
    bx.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    deep = max(depths)
    at = table[table.depth == deep].set_index("block").measured
    lines = [
        f"at {deep} blocks: mlp {at['mlp']} %, highway {at['highway']} %, conv {at['conv']} %, "
        f"residual {at['residual']} % test accuracy after {epochs} epoch(s)."
    ]
    return Outcome(table, fig, lines)


def _grad_ratio(diagnostics: dict) -> float | None:
    """Max / min gradient norm over the blocks at step 0 (the diagnostics' ratio)."""
    return diagnostics.get("grad_norm_ratio")
