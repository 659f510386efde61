"""Graph blocks, readouts and top-k pooling, built on PyTorch Geometric's layers.

How a block sees a graph. On a graph task (:class:`~autodlgym.searchspace.io.IOSpec` modality
``node`` or ``graph``) the state between blocks is a node-feature matrix ``(N, D)``: **nodes
are the batch axis**, so the state is a ``vector`` state of D features and every plain block
(``mlp``, ``highway``, a conv reading one position...) acts on each node alone. The graph's
structure travels beside the state through the stage stack as a :class:`Graph`
(``edge_index`` ``(2, E)``, and ``batch``, the graph of each node, for a mini-batch of graphs);
blocks registered with ``reads="graph"`` get it as a second argument, ``forward(x, graph)``.
Only a stage's ``downsample: topk`` changes the graph (it keeps the top half of each graph's
nodes and the edges between them); a node-level task keeps every node, so there it is skipped.
On a task that is not a graph (vector, sequence, image), a graph block reads the flattened
state and each example is a graph of one node without edges (:data:`Graph` is None): the
message-passing layers reduce to their self term, so every spec still builds everywhere.

Built-in graph blocks (each ends with the spec's norm, activation and dropout, as every block
does; norms over the node axis):

* ``gcn`` (Kipf & Welling, 2017): ``GCNConv``, ``D^-1/2 (A + I) D^-1/2 X W``.
* ``gat`` (Velickovic et al., 2018): ``GATConv`` with ``heads`` heads of ``d / heads``
  channels, concatenated; ``d`` is the width rounded up to a multiple of ``heads``.
* ``gin`` (Xu et al., 2019): ``GINConv`` with ``eps = 0`` (GIN-0) and a two-layer MLP
  ``Linear(w) - act - Linear(w)``.
* ``sage`` (Hamilton et al., 2017): ``SAGEConv``, mean aggregation, ``W_1 x_i + W_2 mean_j x_j``.
* ``cheb`` (Defferrard et al., 2016): ``ChebConv`` with ``cheb_k`` Chebyshev terms (a
  decision), symmetric normalisation, ``lambda_max = 2``.
* ``arma`` (Bianchi et al., 2021): ``ARMAConv``, one stack, one layer.
* ``graphconv`` (Morris et al., 2019, the k-GNN layer NAS-Bench-Graph calls ``graph``):
  ``GraphConv``, ``W_1 x_i + W_2 sum_j x_j``.
* ``fc``: ``Linear(w)`` on each node (NAS-Bench-Graph's fully connected operation).
* ``skip``: the identity (NAS-Bench-Graph's skip); its width is its input's.

Readouts (the head of a graph-level task, decision ``readout``): ``mean``, ``max``, ``sum``
(PyG's aggregations over each graph's nodes) and ``attention`` (``AttentionalAggregation``,
Li et al., 2016: ``sum_i softmax(gate(x_i)) x_i`` with a linear gate).
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import (
    ARMAConv,
    ChebConv,
    GATConv,
    GCNConv,
    GINConv,
    GraphConv,
    SAGEConv,
    TopKPooling,
    aggr,
)

from autodlgym.errors import SpecError
from autodlgym.nn.blocks import Adapter, BlockContext, Graph, Shape, _post, make_activation

#: readouts of a graph-level head
READOUTS = ("mean", "max", "sum", "attention")
#: the fraction of each graph's nodes ``downsample: topk`` keeps (Gao & Ji, 2019)
TOPK_RATIO = 0.5


def edges_of(x: torch.Tensor, graph: Graph | None) -> torch.Tensor:
    """The graph's edges, or none (each row of ``x`` an isolated node) without a graph."""
    if graph is None:
        return torch.zeros(2, 0, dtype=torch.long, device=x.device)
    return graph.edge_index


class _ConvBlock(nn.Module):
    """A PyG convolution ``conv(x, edge_index)`` followed by the spec's norm, act, dropout."""

    def __init__(self, conv: nn.Module, width: int, ctx: BlockContext) -> None:
        super().__init__()
        self.conv = conv
        self.post = _post(ctx, (width,))
        self.out_shape: Shape = (width,)
        self.hidden_widths = [width]

    def forward(self, x: torch.Tensor, graph: Graph | None = None) -> torch.Tensor:
        return self.post(self.conv(x, edges_of(x, graph)))


class GCNBlock(_ConvBlock):
    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        super().__init__(GCNConv(in_shape[0], ctx.width), ctx.width, ctx)


def gat_width(width: int, heads: int) -> int:
    """A GAT block's output channels: the width rounded up to a multiple of ``heads``."""
    if heads < 1:
        raise SpecError(f"gat heads must be positive, got {heads}")
    return -(-int(width) // heads) * heads


class GATBlock(_ConvBlock):
    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        heads = int(ctx.get("heads", 1))
        d = gat_width(ctx.width, heads)
        super().__init__(GATConv(in_shape[0], d // heads, heads=heads), d, ctx)


class GINBlock(_ConvBlock):
    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        w = ctx.width
        mlp = nn.Sequential(
            nn.Linear(in_shape[0], w), make_activation(ctx.activation), nn.Linear(w, w)
        )
        super().__init__(GINConv(mlp, eps=0.0, train_eps=False), w, ctx)
        self.hidden_widths = [w, w]


class SAGEBlock(_ConvBlock):
    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        super().__init__(SAGEConv(in_shape[0], ctx.width), ctx.width, ctx)


class ChebBlock(_ConvBlock):
    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        k = int(ctx.get("cheb_k", 2))
        if k < 1:
            raise SpecError(f"cheb_k (Chebyshev terms) must be positive, got {k}")
        super().__init__(ChebConv(in_shape[0], ctx.width, K=k), ctx.width, ctx)


class ARMABlock(_ConvBlock):
    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        conv = ARMAConv(in_shape[0], ctx.width, num_stacks=1, num_layers=1)
        # the recurrent weight of layers 2..T: one layer never reads it (and it would get no
        # gradient)
        conv.register_parameter("weight", None)
        super().__init__(conv, ctx.width, ctx)


class GraphConvBlock(_ConvBlock):
    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        super().__init__(GraphConv(in_shape[0], ctx.width), ctx.width, ctx)


class FCBlock(nn.Module):
    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        super().__init__()
        self.linear = nn.Linear(in_shape[0], ctx.width)
        self.post = _post(ctx, (ctx.width,))
        self.out_shape: Shape = (ctx.width,)
        self.hidden_widths = [ctx.width]

    def forward(self, x: torch.Tensor, graph: Graph | None = None) -> torch.Tensor:
        return self.post(self.linear(x))


class SkipBlock(nn.Module):
    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        super().__init__()
        self.out_shape: Shape = tuple(in_shape)
        self.hidden_widths: list[int] = []

    def forward(self, x: torch.Tensor, graph: Graph | None = None) -> torch.Tensor:
        return x


# Pooling and readouts --------------------------------------------------------------------------
class TopKDownsample(nn.Module):
    """``downsample: topk`` on a graph-level task: PyG's ``TopKPooling`` keeps the
    ``TOPK_RATIO`` best-scoring nodes of each graph (score ``tanh(x p / |p|)``, which also
    gates the kept features) and the edges among them."""

    changes_graph = True

    def __init__(self, shape: Shape) -> None:
        super().__init__()
        self.adapter = Adapter(shape, "graph")  # a state that is not a vector is flattened
        self.out_shape: Shape = self.adapter.out_shape
        self.pool = TopKPooling(self.out_shape[0], ratio=TOPK_RATIO)

    def forward(self, x: torch.Tensor, graph: Graph) -> tuple[torch.Tensor, Graph]:
        x = self.adapter(x)
        batch = graph.batch
        if batch is None:
            batch = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        x, edge_index, _, batch, _, _ = self.pool(x, graph.edge_index, batch=batch)
        return x, Graph(edge_index, batch)


class Readout(nn.Module):
    """A graph-level readout: one of :data:`READOUTS` over each graph's nodes."""

    def __init__(self, kind: str, features: int) -> None:
        super().__init__()
        if kind not in READOUTS:
            raise SpecError(f"readout {kind!r} is unknown; use one of {', '.join(READOUTS)}")
        self.kind = kind
        self.aggr = {
            "mean": aggr.MeanAggregation,
            "max": aggr.MaxAggregation,
            "sum": aggr.SumAggregation,
        }.get(kind, lambda: aggr.AttentionalAggregation(nn.Linear(features, 1)))()

    def forward(self, x: torch.Tensor, batch: torch.Tensor | None) -> torch.Tensor:
        if batch is None:
            batch = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        return self.aggr(x, batch)
