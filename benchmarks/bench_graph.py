"""A 2-layer GCN through autodlgym against the same model written directly in PyG.

On ``csbm`` (homophily 0.8, snr 1, 3000 nodes, seeds 0..S-1 of both the graph and the
model), the spec ``gcn x 2 (width 16, dropout 0.5) + linear head``, Adam lr 0.01, weight
decay 5e-4, 100 full-graph steps with a validation pass after each, trains through
``train_and_score``; the direct PyG loop builds ``GCNConv -> ReLU -> dropout`` twice and a
``Linear``, copies the autodlgym model's initial weights and trains the same way (same seed,
so the same dropout masks). Printed per seed: test accuracy of both and wall seconds per epoch
from one epoch's validation check to the next: a training step and a validation pass), their
ratio, and the ratio of whole runs (building, the trainer's per-trial bookkeeping and the test
pass included, divided by the epochs); then the median ratio and its range. Both run on one thread, in
the same process, alternating which goes first. Targets: accuracy within 0.5 points, time
ratio <= 1.10.

    OMP_NUM_THREADS=1 python benchmarks/bench_graph.py --seeds 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GCNConv

from autodlgym.nn.build import build_model
from autodlgym.tasks import get_task
from autodlgym.training.trainer import train_and_score
from autodlgym.trial import Fidelity

SPEC = {"n_stages": 1, "stage1.block": "gcn", "stage1.depth": 2, "stage1.width": 16,
        "dropout": 0.5, "lr": 0.01, "weight_decay": 5e-4, "optimizer": "adam",
        "init": "torch_default"}  # fmt: skip


class DirectGCN(nn.Module):
    def __init__(self, f: int, w: int, c: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = GCNConv(f, w), GCNConv(w, w)
        self.lin = nn.Linear(w, c)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        x = F.dropout(F.relu(self.conv1(x, edge_index)), 0.5, self.training)
        x = F.dropout(F.relu(self.conv2(x, edge_index)), 0.5, self.training)
        return self.lin(x)


def direct(task, seed: int, epochs: int) -> tuple[float, float, float]:
    """(test accuracy, seconds per epoch, seconds of the whole run / epochs) of the PyG
    loop."""
    t0 = time.perf_counter()
    data = task.load()
    g = data.graphs[0]
    train, val, test = (torch.as_tensor(i) for i in (data.train, data.val, data.test))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ours = build_model(SPEC, task.io)  # the same draws as the trainer's build
        state = torch.get_rng_state()
        model = DirectGCN(task.io.shape[0], 16, task.io.n_outputs)
        units = [u.block.conv for u in ours.blocks]
        model.conv1.load_state_dict(units[0].state_dict())
        model.conv2.load_state_dict(units[1].state_dict())
        model.lin.load_state_dict(ours.head.linear.state_dict())
        torch.set_rng_state(state)
        opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
        marks = []
        for _ in range(epochs):
            model.train()
            opt.zero_grad()
            loss = F.cross_entropy(model(g.x, g.edge_index)[train], g.y[train])
            loss.backward()
            opt.step()
            model.eval()
            with torch.no_grad():
                float((model(g.x, g.edge_index)[val].argmax(1) == g.y[val]).float().mean())
            marks.append(time.perf_counter())
        with torch.no_grad():
            acc = float((model(g.x, g.edge_index)[test].argmax(1) == g.y[test]).float().mean())
    steady = (marks[-1] - marks[0]) / (epochs - 1)
    return acc, steady, (time.perf_counter() - t0) / epochs


def ours(task, seed: int, epochs: int) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    r = train_and_score(SPEC, task, Fidelity(epochs), seed=seed, diagnostics=False)
    # epoch to epoch: the curve's clock at each epoch's validation check
    steady = (r.curve[-1]["seconds"] - r.curve[0]["seconds"]) / (epochs - 1)
    return float(r.test_score), steady, (time.perf_counter() - t0) / epochs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--nodes", type=int, default=3000)
    args = p.parse_args()
    torch.set_num_threads(1)
    ratios, whole, gaps = [], [], []
    print("seed  acc_autodlgym  acc_pyg  ms/epoch_autodlgym  ms/epoch_pyg  ratio  whole-run ratio")
    for seed in range(args.seeds):
        task = get_task("csbm", homophily=0.8, nodes=args.nodes, seed=seed)
        task.prepare()
        ours(task, seed, 2)  # warm both paths once
        direct(task, seed, 2)
        if seed % 2:
            (b, tb, wb), (a, ta, wa) = (
                direct(task, seed, args.epochs),
                ours(task, seed, args.epochs),
            )
        else:
            (a, ta, wa), (b, tb, wb) = (
                ours(task, seed, args.epochs),
                direct(task, seed, args.epochs),
            )
        ratios.append(ta / tb)
        whole.append(wa / wb)
        gaps.append(100 * (a - b))
        print(
            f"{seed:4d}  {100 * a:13.1f}  {100 * b:7.1f}  {1e3 * ta:18.2f}  {1e3 * tb:12.2f}"
            f"  {ta / tb:5.2f}  {wa / wb:15.2f}"
        )
    print(f"accuracy gap (points): max |gap| {max(abs(g) for g in gaps):.2f} (target <= 0.5)")
    print(f"time ratio: median {statistics.median(ratios):.2f}, range "
          f"{min(ratios):.2f}-{max(ratios):.2f} (target <= 1.10); whole runs (building, "
          f"per-trial bookkeeping, test pass): median {statistics.median(whole):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
