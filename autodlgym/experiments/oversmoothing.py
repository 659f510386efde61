"""Deep graph convolutions over-smooth; residual connections keep them apart.

Li et al. (2018): repeated GCN propagation is Laplacian smoothing, so node features of a deep
plain stack converge to the same value within each connected component and accuracy falls;
Chen et al. (2020, GCNII): residual and initial-residual connections keep deep GCNs trainable.
Here stacks of 2 to 64 ``gcn`` blocks train on ``csbm``, plain (``connections: chain``) and
residual (``skip2``: the input of every two blocks added to their output); beside the test
accuracy, the Dirichlet energy of the last block's node features,
``E(X) = (1/N) sum_(i,j) || x_i / sqrt(1 + d_i) - x_j / sqrt(1 + d_j) ||^2`` over the edges
(Cai & Wang, 2020), measured after training and divided by that of the input features:
over-smoothing is this ratio collapsing towards 0.
"""

from __future__ import annotations

from typing import Any

from autodlgym.experiments.base import Outcome, figure, make_spec, pct

NAME = "oversmoothing"
CLAIM = "plain deep GCN stacks over-smooth (energy and accuracy collapse); residual ones do not"
SOURCE = "Li et al. 2018; Chen et al. 2020 (GCNII)"

CONNECTIONS = {"chain": "plain", "skip2": "residual"}


def dirichlet_energy(x: Any, edge_index: Any) -> float:
    """``(1/N) sum over directed edges (i, j) of ||x_i/sqrt(1+d_i) - x_j/sqrt(1+d_j)||^2``."""
    import torch

    n = x.shape[0]
    deg = torch.zeros(n).index_add_(0, edge_index[0], torch.ones(edge_index.shape[1]))
    z = x / (1.0 + deg).sqrt()[:, None]
    diff = z[edge_index[0]] - z[edge_index[1]]
    return float(diff.pow(2).sum() / n)


def run(quick: bool = False, seed: int = 0) -> Outcome:
    import pandas as pd

    from autodlgym.tasks import get_task
    from autodlgym.training.trainer import train_model
    from autodlgym.trial import Fidelity

    depths = (2, 16) if quick else (2, 4, 8, 16, 32, 64)
    nodes, epochs = (300, 30) if quick else (1000, 100)
    task = get_task("csbm", homophily=0.8, nodes=nodes, seed=seed)
    space = task.default_space()
    graph = task.load().graphs[0]
    base = dirichlet_energy(graph.x, graph.edge_index)
    rows = []
    for connections, kind in CONNECTIONS.items():
        for depth in depths:
            # depth blocks in stages of at most 2 (the space's depths), all gcn, width 16
            n_stages, per = -(-depth // 2), 2
            values: dict[str, Any] = {}
            for i in range(1, n_stages + 1):
                values.update({f"stage{i}.block": "gcn", f"stage{i}.depth": per,
                               f"stage{i}.width": 16})  # fmt: skip
            spec = _deep_spec(space, n_stages, values, connections)
            result, model = train_model(spec, task, Fidelity(epochs), seed=seed, diagnostics=False)
            energy = None
            if model is not None:
                energy = _last_block_energy(model, graph) / base
            rows.append(
                {
                    "connections": kind,
                    "depth": depth,
                    "status": result.status,
                    "measured": pct(result.test_score),
                    "energy_ratio": energy,
                    "published": "collapses with depth" if kind == "plain" else "stays",
                }
            )
    table = pd.DataFrame(rows)
    fig, (ax, bx) = figure(ncols=2, width=4.8)
    for i, kind in enumerate(CONNECTIONS.values()):
        sub = table[table.connections == kind]
        ls = "--" if kind == "plain" else "-"
        ax.plot(sub.depth, sub.measured.astype(float), ls=ls, marker="o", color=f"C{i}", label=kind)
        bx.plot(sub.depth, sub.energy_ratio.astype(float), ls=ls, marker="o", color=f"C{i}")
    for a in (ax, bx):
        a.set_xscale("log", base=2)
        a.set_xlabel("gcn blocks")
    ax.set_ylabel("test accuracy (%)")
    bx.set_ylabel("Dirichlet energy, last block / input")
    bx.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    deep = max(depths)
    at = table[table.depth == deep].set_index("connections")
    lines = [
        f"at {deep} gcn blocks: plain {at.measured['plain']} % (energy ratio "
        f"{_fmt(at.energy_ratio['plain'])}), residual {at.measured['residual']} % (energy "
        f"ratio {_fmt(at.energy_ratio['residual'])})."
    ]
    return Outcome(table, fig, lines)


def _last_block_energy(model: Any, graph: Any) -> float:
    """The Dirichlet energy of the last block's output on the whole graph."""
    import torch

    feats: list[Any] = []
    hook = model.blocks[-1].register_forward_hook(lambda m, a, o: feats.append(o))
    try:
        with torch.no_grad():
            model(graph.x, graph.edge_index)
    finally:
        hook.remove()
    return dirichlet_energy(feats[-1], graph.edge_index)


def _deep_spec(space: Any, n_stages: int, values: dict[str, Any], connections: str) -> Any:
    """A spec of gcn stages; deeper than the space's 3 stages, it is built as given (the
    builder takes any number of stages)."""
    from autodlgym.searchspace.spec import ArchSpec

    if n_stages <= 3:
        return make_spec(space, n_stages=n_stages, connections=connections, lr=1e-2,
                         weight_decay=5e-4, **values)  # fmt: skip
    first = make_spec(space, n_stages=3, connections=connections, lr=1e-2, weight_decay=5e-4,
                      **{k: v for k, v in values.items() if int(k[5]) <= 3 and k[6] == "."})  # fmt: skip
    return ArchSpec({**dict(first), **values, "n_stages": n_stages})


def _fmt(x: Any) -> str:
    return "n/a" if x is None or x != x else f"{float(x):.2g}"
