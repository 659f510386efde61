"""How a graph task's data reaches the model (the trainer's :class:`GraphFeed`).

* Node level (one graph): the graph is held on the device and every step runs the whole
  graph, its loss over the training nodes (full-batch training, as Kipf & Welling train GCN):
  an epoch is one step, and ``batch_size`` is not used. A fidelity's ``max_train_samples``
  keeps a fixed subset of the training nodes (a prefix of one seeded permutation). Scoring
  runs the whole graph and reads the validation or test nodes.
* Graph level: mini-batches of graphs from PyG's ``DataLoader`` (its ``Batch`` concatenates
  the graphs into one disconnected graph with a ``batch`` vector), shuffled by the trial's
  seeded generator; ``max_train_samples`` keeps a fixed subset of the training graphs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from autodlgym.training.trainer import EVAL_BATCH, SUBSET_SEED, Batch, Feed

if TYPE_CHECKING:  # pragma: no cover
    from autodlgym.tasks import Task

_GRAPHS: dict[tuple[str, tuple, str], tuple[Any, ...]] = {}


def device_graphs(task: Task, dev: torch.device) -> tuple[Any, ...]:
    """The task's graphs on ``dev``, moved once per process."""
    key = (task.name, task.kwargs, str(dev))
    graphs = _GRAPHS.get(key)
    if graphs is None:
        graphs = _GRAPHS[key] = tuple(g.to(dev) for g in task.load().graphs)
    return graphs


def _subset(idx: torch.Tensor, k: int | None) -> torch.Tensor:
    if k is None or k >= len(idx):
        return idx
    gen = torch.Generator().manual_seed(SUBSET_SEED)
    return idx[torch.randperm(len(idx), generator=gen)[:k]]


class GraphFeed(Feed):
    """See the module docstring."""

    def __init__(self, task: Task, dev: torch.device, max_train_samples: int | None) -> None:
        data = task.load()
        self.level = data.level
        self.graphs = device_graphs(task, dev)
        self.dev = dev
        self.index = {
            split: torch.as_tensor(getattr(data, split), dtype=torch.long)
            for split in ("train", "val", "test")
        }
        self.index["train"] = _subset(self.index["train"], max_train_samples)
        self.n = len(self.index["train"])
        if self.level == "node":
            g = self.graphs[0]
            self.index = {k: v.to(dev) for k, v in self.index.items()}
            self.inputs = (g.x, g.edge_index)
            self.y = g.y

    def _node_batch(self, idx: torch.Tensor) -> Batch:
        return Batch(self.inputs, self.y[idx], select=idx)

    def _loader(self, idx: torch.Tensor, batch_size: int, order: Any = None) -> Any:
        from torch_geometric.loader import DataLoader

        graphs = [self.graphs[int(i)] for i in idx]
        return DataLoader(graphs, batch_size=batch_size, shuffle=order is not None, generator=order)

    @staticmethod
    def _graph_batch(b: Any) -> Batch:
        return Batch((b.x, b.edge_index, b.batch), b.y.reshape(-1))

    def n_batches(self, batch_size: int) -> int:
        return 1 if self.level == "node" else -(-self.n // batch_size)

    def epoch(self, order: torch.Generator, batch_size: int) -> Any:
        if self.level == "node":
            yield self._node_batch(self.index["train"])
            return
        for b in self._loader(self.index["train"], batch_size, order):
            yield self._graph_batch(b)

    def batches(self, split: str, size: int = EVAL_BATCH) -> Any:
        if self.level == "node":
            yield self._node_batch(self.index[split])
            return
        for b in self._loader(self.index[split], size):
            yield self._graph_batch(b)

    def split_size(self, split: str) -> int:
        return len(self.index[split])

    def sample(self, k: int) -> Batch:
        if self.level == "node":
            return self._node_batch(self.index["train"][:k])
        return self._graph_batch(next(iter(self._loader(self.index["train"][:k], k))))
