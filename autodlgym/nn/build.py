"""build_model(spec, io): turn an ArchSpec into an initialised torch module.

The network is ``stages -> head``. Stage ``I`` (1 to ``n_stages``) is an optional
``stageI.downsample`` followed by ``stageI.depth`` blocks of type ``stageI.block`` with
``stageI.width`` (see :mod:`autodlgym.nn.blocks` for blocks and the state kinds they
read). Decisions missing from the spec (a user space may remove them) take these defaults:
``n_stages`` 1, ``connections`` chain, ``activation`` relu, ``norm`` none, ``dropout`` 0,
``init`` torch_default, ``zero_init_residual`` False, ``head_pool`` avg; per stage ``block``
conv, ``depth`` 1, ``width`` 64, ``downsample`` none, ``chrono_init`` False; block options as in
the blocks' docs (kernel 3, dilation 1, growth 16, heads 1, cell gru, unidirectional).

Downsampling (windows of 2 along every spatial axis longer than 1, floor division; an axis of
length 1 is left alone and a state with a single position is not downsampled): ``max``,
``avg``, ``lp`` (Lp pooling ``(sum |x|^p + 1e-6)^(1/p)`` with ``p`` the stage's ``lp_p``,
default 2; the epsilon keeps its gradient finite when a window is all zeros, which torch's
LPPool is not), ``lse`` (log-sum-exp pooling ``log(mean exp(r x)) / r`` with ``r`` the stage's
``lse_r``, default 1: mean pooling as r -> 0, max pooling as r -> inf, exact on constant
windows), ``strided`` (a 3-wide conv with stride 2 and padding 1, same channels, initialised
as a linear layer since no nonlinearity follows it). On a vector state
downsampling is skipped: a vector has no positions.

Connections inside a stage (the state after block ``i`` is ``s_{i+1}``; ``s_0`` is the
stage's input):

* ``chain``: ``s_{i+1} = block_i(s_i)``.
* ``skip2`` / ``skip3`` (k = 2, 3): blocks form windows of ``k`` from the first; the input of a
  window's first block is added to the output of its last block (the stage's last block when
  the window is cut short), through a projection when shapes differ.
* ``dense`` (DenseNet, Huang et al., 2017): block ``i`` reads the concatenation, along
  channels, of the stage input and all earlier outputs ``[s_0, s_1, ..., s_i]``, each brought
  without parameters to the positions of ``s_i`` (see :func:`dense_feed`); so block ``i`` sees
  ``sum_j channels(s_j)`` input channels. The stage outputs its last block's state.

Projections are 1x1 convs (channels), adaptive average pools (positions), or flatten + linear
(to a vector, or where state kinds cannot be matched otherwise).

Head: ``head_pool`` reduces the positions of a sequence or image (``avg``, ``max``,
``flatten`` (pooled as a vector block's input when over 4096 features), ``last`` position;
all are the identity on a vector), then ``Linear(n_outputs)``.

After building, ``apply_init`` runs with the spec's law, activation and zero-init flag, and
each stage with ``chrono_init`` chrono-inits its recurrent cells with ``T_max`` = the length of
the sequence those cells read.

Randomness: building and initialising draw from torch's global generator. For reproducible
models callers seed it inside ``torch.random.fork_rng(devices=[])`` with
``torch.manual_seed(seed)``, which also restores the global state afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autodlgym.errors import AutoDLError, SpecError
from autodlgym.nn.blocks import (
    Adapter,
    BlockContext,
    Graph,
    Shape,
    make_activation,
    make_conv,
    state_kind,
)
from autodlgym.nn.init import apply_init, chrono_init_, mark
from autodlgym.searchspace.cost import parse_trainable
from autodlgym.searchspace.io import GRAPH_MODALITIES, IOSpec
from autodlgym.searchspace.registry import BLOCKS
from autodlgym.searchspace.spec import ArchSpec

DOWNSAMPLES = ("none", "max", "avg", "lp", "lse", "strided", "topk")
#: keeps lp pooling's gradient finite on an all-zero window
LP_EPS = 1e-6
CONNECTIONS = ("chain", "skip2", "skip3", "dense")
HEAD_POOLS = ("avg", "max", "flatten", "last")
TRAINABLE = ("all", "head", "fraction_<p>")


# Downsampling ----------------------------------------------------------------------------
class Downsample(nn.Module):
    """Halve every spatial axis longer than 1 (see the module docstring).

    Args:
        kind: one of :data:`DOWNSAMPLES` but ``none``.
        shape: the state it reads.
        p: the power of ``lp`` pooling (p >= 1).
        r: the sharpness of ``lse`` pooling (r > 0).
    """

    def __init__(self, kind: str, shape: Shape, p: float = 2.0, r: float = 1.0) -> None:
        super().__init__()
        if not float(p) >= 1.0:
            raise SpecError(f"lp pooling needs p >= 1, got {p!r}")
        if not float(r) > 0.0:
            raise SpecError(f"lse pooling needs r > 0, got {r!r}")
        self.kind = kind
        self.p = float(p)
        self.r = float(r)
        spatial = shape[1:]
        self.window = tuple(2 if s > 1 else 1 for s in spatial)
        self.conv: nn.Module | None = None
        if kind == "strided":
            cls = nn.Conv1d if len(spatial) == 1 else nn.Conv2d
            # linear: no nonlinearity follows it, so it keeps the signal's scale (gain 1)
            self.conv = mark(
                cls(shape[0], shape[0], 3, stride=self.window, padding=1), gain="linear"
            )
            out = tuple((s - 1) // w + 1 for s, w in zip(spatial, self.window))
        else:
            out = tuple(s // w for s, w in zip(spatial, self.window))
        self.out_shape: Shape = (shape[0], *out)
        self._pool_fn = (
            (F.max_pool1d, F.avg_pool1d) if len(spatial) == 1 else (F.max_pool2d, F.avg_pool2d)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.window if len(self.window) > 1 else self.window[0]
        if self.kind == "max":
            return self._pool_fn[0](x, w, w)
        if self.kind == "avg":
            return self._pool_fn[1](x, w, w)
        if self.kind == "lp":
            n = math.prod(self.window)
            power = x.abs() if self.p == 1.0 else x.abs().pow(self.p)
            return (self._pool_fn[1](power, w, w) * n + LP_EPS).pow(1.0 / self.p)
        if self.kind == "lse":
            n = math.prod(self.window)
            for axis, size in enumerate(self.window):
                x = x.unfold(2 + axis, size, size)
            z = torch.logsumexp(self.r * x.flatten(-len(self.window)), dim=-1)
            return (z - math.log(n)) / self.r
        return self.conv(x)


def make_downsample(
    kind: str, shape: Shape, p: float = 2.0, r: float = 1.0, graphs: bool = False
) -> nn.Module | None:
    """A downsampling layer, or None when ``kind`` is none or the state has no positions.

    ``topk`` pools the nodes of a graph-level task's graphs (``graphs`` True; see
    :class:`~autodlgym.nn.graph.TopKDownsample`); anywhere else it is skipped, as the other
    kinds are on a vector (a node-level task must keep every node)."""
    if kind not in DOWNSAMPLES:
        raise SpecError(f"downsample {kind!r} is unknown; use one of {', '.join(DOWNSAMPLES)}")
    if kind == "topk":
        if not graphs:
            return None
        from autodlgym.nn.graph import TopKDownsample

        return TopKDownsample(shape)
    if kind == "none" or len(shape) == 1 or math.prod(shape[1:]) == 1:
        return None
    return Downsample(kind, shape, p=p, r=r)


# Projections between states ----------------------------------------------------------------
class _Reshape(nn.Module):
    def __init__(self, shape: Shape) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


def make_projection(in_shape: Shape, out_shape: Shape) -> nn.Module:
    """A linear map from a state of ``in_shape`` to one of ``out_shape`` (identity if equal)."""
    if tuple(in_shape) == tuple(out_shape):
        return nn.Identity()
    layers: list[nn.Module] = []
    shape = tuple(in_shape)
    out_kind = state_kind(out_shape)
    if out_kind == "sequence" and len(shape) != 2:
        adapter = Adapter(shape, "sequence")  # a vector as a signal, an image's positions in a row
        layers.append(adapter)
        shape = adapter.out_shape
    if out_kind != "vector" and len(shape) == len(out_shape):
        if shape[1:] != tuple(out_shape[1:]):
            pool = nn.AdaptiveAvgPool1d if len(shape) == 2 else nn.AdaptiveAvgPool2d
            layers.append(pool(tuple(out_shape[1:])))
            shape = (shape[0], *out_shape[1:])
        if shape[0] != out_shape[0]:
            layers.append(mark(make_conv(shape, out_shape[0]), gain="linear"))
    else:
        flat = Adapter(shape, "vector")
        layers.append(flat)
        layers.append(mark(nn.Linear(flat.out_shape[0], math.prod(out_shape)), gain="linear"))
        if out_kind != "vector":
            layers.append(_Reshape(out_shape))
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


# Dense connections -------------------------------------------------------------------------
class _Broadcast(nn.Module):
    """A vector ``(B, D)`` as ``D`` channels at every position of a grid."""

    def __init__(self, positions: Shape) -> None:
        super().__init__()
        self.positions = tuple(positions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        view = x.reshape(*x.shape, *([1] * len(self.positions)))
        return view.expand(*x.shape, *self.positions)


def dense_feed(src: Shape, dst: Shape) -> tuple[nn.Module, int]:
    """A parameter-free map from a state of ``src`` to the kind and positions of ``dst``, and
    the channels (features for a vector) it yields: how an earlier state joins a dense
    concatenation. Same positions: as is; other positions: adaptive average pooling; to a
    vector: flattened (pooled first above ``VECTOR_CAP``, as a vector block's input); a vector
    into a grid: its features as channels at every position; an image into a sequence: its
    positions in a row."""
    src, dst = tuple(src), tuple(dst)
    if len(src) == len(dst) and src[1:] == dst[1:]:
        return nn.Identity(), src[0]
    if len(dst) == 1:
        flat = Adapter(src, "vector")
        return flat, flat.out_shape[0]
    if len(src) == 1:
        return _Broadcast(dst[1:]), src[0]
    layers: list[nn.Module] = []
    if len(src) == 3 and len(dst) == 2:
        layers.append(nn.Flatten(2))
    if len(src) == 2 and len(dst) == 3:
        # a sequence laid out on the image's grid, row by row
        layers += [nn.AdaptiveAvgPool1d(dst[1] * dst[2]), nn.Unflatten(2, dst[1:])]
    else:
        pool = nn.AdaptiveAvgPool1d if len(dst) == 2 else nn.AdaptiveAvgPool2d
        layers.append(pool(dst[1:] if len(dst) == 3 else dst[1]))
    return (layers[0] if len(layers) == 1 else nn.Sequential(*layers)), src[0]


def dense_input_shape(shapes: list[Shape]) -> Shape:
    """What block ``i`` of a dense stage reads, given the shapes ``s_0 .. s_i`` of the stage
    input and the earlier blocks' outputs: all of them concatenated along channels, at the
    positions (and state kind) of ``s_i``."""
    dst = tuple(shapes[-1])
    return (sum(dense_feed(s, dst)[1] for s in shapes), *dst[1:])


# Units, stages, head -------------------------------------------------------------------------
class BlockUnit(nn.Module):
    """One block with the adapter that feeds it; the unit diagnostics hook into."""

    def __init__(
        self, name: str, adapter: Adapter, block: nn.Module, out_shape: Shape, reads: str = "any"
    ) -> None:
        super().__init__()
        self.name = name
        self.adapter = adapter
        self.block = block
        self.in_shape: Shape = adapter.in_shape
        self.out_shape: Shape = tuple(out_shape)
        self.reads_graph = reads == "graph"

    def forward(self, x: torch.Tensor, graph: Graph | None = None) -> Any:
        if self.reads_graph:
            return self.block(self.adapter(x), graph)
        return self.block(self.adapter(x))


class Stage(nn.Module):
    """Downsample, then blocks linked by ``connections`` (see the module docstring)."""

    def __init__(
        self,
        downsample: nn.Module | None,
        units: list[BlockUnit],
        connections: str,
        in_shape: Shape,
        activation: str,
    ) -> None:
        super().__init__()
        self.downsample = downsample if downsample is not None else nn.Identity()
        self.units = nn.ModuleList(units)
        self.connections = connections
        self.k = {"skip2": 2, "skip3": 3}.get(connections, 0)
        shapes = [tuple(in_shape)] + [u.out_shape for u in units]
        n = len(units)
        self.proj = nn.ModuleDict()
        self.window_ends: dict[int, int] = {}
        if self.k:
            for start in range(0, n, self.k):
                end = min(start + self.k - 1, n - 1)
                self.window_ends[end] = start
                self.proj[str(end)] = make_projection(shapes[start], shapes[end + 1])
        elif connections == "dense":
            for i in range(1, n):
                for j in range(i + 1):
                    self.proj[f"{j}_{i}"] = dense_feed(shapes[j], shapes[i])[0]
        self.emits_skip = any(getattr(u.block, "emits_skip", False) for u in units)
        self.skip_act = make_activation(activation) if self.emits_skip else None
        self.out_shape: Shape = shapes[-1]

    def forward(self, x: torch.Tensor, graph: Graph | None = None) -> Any:
        """The stage's output state; with a ``graph``, ``(state, graph)`` (a ``topk``
        downsample changes the graph)."""
        if getattr(self.downsample, "changes_graph", False):
            x, graph = self.downsample(x, graph)
        else:
            x = self.downsample(x)
        states = [x]
        anchor = x
        skips = []
        for i, unit in enumerate(self.units):
            inp = x
            if self.connections == "dense" and i > 0:
                inp = torch.cat([self.proj[f"{j}_{i}"](states[j]) for j in range(i + 1)], dim=1)
            if self.k and i % self.k == 0:
                anchor = x
            y = unit(inp, graph)
            if isinstance(y, tuple):
                y, skip = y
                skips.append(skip)
            if i in self.window_ends:
                y = y + self.proj[str(i)](anchor)
            x = y
            states.append(y)
        if skips:
            # the state joins the skips, so the last block's residual path is used too
            x = self.skip_act(x + (torch.stack(skips).sum(0) if len(skips) > 1 else skips[0]))
        return x if graph is None else (x, graph)


class Head(nn.Module):
    """Pool positions (``head_pool``), then a linear readout to ``n_outputs``."""

    def __init__(self, shape: Shape, pool: str, n_outputs: int) -> None:
        super().__init__()
        if pool not in HEAD_POOLS:
            raise SpecError(f"head_pool {pool!r} is unknown; use one of {', '.join(HEAD_POOLS)}")
        self.pool = "identity" if len(shape) == 1 else pool
        self.flatten = Adapter(shape, "vector") if self.pool == "flatten" else None
        features = shape[0] if self.flatten is None else self.flatten.out_shape[0]
        self.linear = mark(nn.Linear(features, n_outputs), gain="linear")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool == "avg":
            x = x.flatten(2).mean(-1)
        elif self.pool == "max":
            x = x.flatten(2).amax(-1)
        elif self.pool == "last":
            x = x.flatten(2)[..., -1]
        elif self.flatten is not None:
            x = self.flatten(x)
        return self.linear(x)


class GraphHead(nn.Module):
    """The head of a graph task: a linear readout of every node (``node``), or of each
    graph after a ``readout`` of its nodes (``graph``; see :mod:`autodlgym.nn.graph`)."""

    def __init__(self, shape: Shape, level: str, readout: str, n_outputs: int) -> None:
        super().__init__()
        self.flatten = Adapter(shape, "graph")
        features = self.flatten.out_shape[0]
        self.readout: nn.Module | None = None
        if level == "graph":
            from autodlgym.nn.graph import Readout

            self.readout = Readout(readout, features)
        self.linear = mark(nn.Linear(features, n_outputs), gain="linear")

    def forward(self, x: torch.Tensor, graph: Graph) -> torch.Tensor:
        x = self.flatten(x)
        if self.readout is not None:
            x = self.readout(x, graph.batch)
        return self.linear(x)


class AutoDLNet(nn.Module):
    """The model :func:`build_model` returns.

    Attributes:
        stages: the stages, in order.
        head: pooling and linear readout.
        blocks: every block unit in forward order (what diagnostics hook into).
        block_widths: output width (channels or features) of each block.
        hidden_widths: the width of every hidden layer the signal passes through, in order: each
            block's ``hidden_widths`` (its internal layers: a dense block's growth layers, an
            attention block's feed-forward layer, an Inception block's reductions...), or its
            output width for a block that does not list them. Hanin's sum reads these.
        spec: the ArchSpec it was built from; io: the IOSpec it was built for.

    A spec with ``links`` and ``op1`` .. ``op4`` builds NAS-Bench-Graph's cell
    (:class:`CellStage`) as its one stage, ``width`` (default 64) channels wide.

    A graph task's network (``io.modality`` ``node`` or ``graph``) is called
    ``model(x, edge_index, batch=None)``: node features ``(N, F)``, edges ``(2, E)`` and, for a
    mini-batch of graphs, the graph of each node; it returns one row per node (``node``) or
    per graph (``graph``). See :mod:`autodlgym.nn.graph`.
    """

    def __init__(self, stages: list[Stage], head: Head, spec: ArchSpec, io: IOSpec) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.spec = spec
        self.io = io
        # a plain list: the units are registered once, under their stage
        self.blocks: list[BlockUnit] = [u for s in stages for u in s.units]
        self.block_widths: list[int] = [int(u.out_shape[0]) for u in self.blocks]
        self.hidden_widths: list[int] = [
            int(w)
            for u in self.blocks
            for w in getattr(u.block, "hidden_widths", None) or [u.out_shape[0]]
        ]

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor | None = None,
        batch: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.io.modality not in GRAPH_MODALITIES:
            for stage in self.stages:
                x = stage(x)
            return self.head(x)
        if edge_index is None:  # nodes without edges
            edge_index = torch.zeros(2, 0, dtype=torch.long, device=x.device)
        graph = Graph(edge_index, batch)
        for stage in self.stages:
            x, graph = stage(x, graph)
        return self.head(x, graph)


# NAS-Bench-Graph's cells --------------------------------------------------------------------
#: NAS-Bench-Graph's operation names -> blocks (its ``graph`` is the k-GNN layer, ``graphconv``)
CELL_OPS = {"gat": "gat", "gcn": "gcn", "gin": "gin", "cheb": "cheb", "sage": "sage",
            "arma": "arma", "graph": "graphconv", "fc": "fc", "skip": "skip"}  # fmt: skip
#: the link patterns of NAS-Bench-Graph (``architecture.link_list``)
CELL_LINKS = ("0-0-0-0", "0-0-0-1", "0-0-1-1", "0-0-1-2", "0-0-1-3", "0-1-1-1", "0-1-1-2",
              "0-1-2-2", "0-1-2-3")  # fmt: skip
#: NAS-Bench-Graph's settings of the operations that have one (GAT with 2 heads, K = 2)
CELL_OPTIONS = {"heads": 2, "cheb_k": 2}


def read_cell(spec: Mapping[str, Any]) -> tuple[list[int], list[str]]:
    """The links (input of each node) and blocks of a NAS-Bench-Graph spec (one line errors)."""
    links = str(spec["links"])
    if links not in CELL_LINKS:
        raise SpecError(f"links={links!r} is unknown; use one of {', '.join(CELL_LINKS)}")
    ops = []
    for i in range(1, 5):
        op = spec.get(f"op{i}")
        if op not in CELL_OPS:
            raise SpecError(f"op{i}={op!r} is unknown; use one of {', '.join(CELL_OPS)}")
        ops.append(CELL_OPS[op])
    return [int(v) for v in links.split("-")], ops


class CellStage(nn.Module):
    """NAS-Bench-Graph's computation cell (Qin et al., 2022) as the network's one stage: a
    linear layer takes the input to the width (node 0), node ``i`` applies its operation to
    node ``links[i-1]``'s output, and the nodes that feed no other node are summed."""

    def __init__(self, in_shape: Shape, spec: ArchSpec, width: int, ctx: dict[str, Any]) -> None:
        super().__init__()
        self.links, ops = read_cell(spec)
        self.adapter = Adapter(in_shape, "graph")
        self.pre = mark(nn.Linear(self.adapter.out_shape[0], width), gain="linear")
        units, shape = [], (width,)
        for i, op in enumerate(ops):
            block_ctx = BlockContext(width, index=i, stage=1, options=CELL_OPTIONS, **ctx)
            units.append(_make_unit(op, shape, block_ctx))
        self.units = nn.ModuleList(units)
        used = set(self.links)
        self.leaves = [i for i in range(1, 5) if i not in used]
        self.out_shape: Shape = (width,)

    def forward(self, x: torch.Tensor, graph: Graph | None = None) -> Any:
        states = [self.pre(self.adapter(x))]
        for link, unit in zip(self.links, self.units):
            states.append(unit(states[link], graph))
        out = states[self.leaves[0]]
        for i in self.leaves[1:]:
            out = out + states[i]
        return out if graph is None else (out, graph)


# Reading the spec --------------------------------------------------------------------------
def _num(where: str, value: Any, kind: type, lo: float, hi: float = math.inf) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{where}={value!r} must be a number")
    if kind is int and value != int(value):
        raise SpecError(f"{where}={value!r} must be an integer")
    value = kind(value)
    if not lo <= value <= hi:
        raise SpecError(f"{where}={value!r} must lie in [{lo}, {hi}]")
    return value


def _choice(where: str, value: Any, options: tuple[str, ...]) -> str:
    if value not in options:
        raise SpecError(f"{where}={value!r} is unknown; use one of {', '.join(options)}")
    return value


def _infer_out_shape(block: nn.Module, in_shape: Shape, reads: str) -> Shape:
    was = block.training
    block.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(2, *in_shape)
            y = block(x, None) if reads == "graph" else block(x)
    finally:
        block.train(was)
    y = y[0] if isinstance(y, tuple) else y
    return tuple(y.shape[1:])


def _make_unit(name: str, in_shape: Shape, ctx: BlockContext) -> BlockUnit:
    if name not in BLOCKS:
        raise SpecError(
            f"block {name!r} is not registered; known blocks: {', '.join(BLOCKS.names())}"
        )
    reads = BLOCKS.meta(name).get("reads", "any")
    adapter = Adapter(in_shape, reads)
    where = f"stage {ctx.stage} block {ctx.index + 1} ({name}) for a state of shape {in_shape}"
    try:
        block = BLOCKS.get(name)(adapter.out_shape, ctx)
        out_shape = getattr(block, "out_shape", None)
        if out_shape is None:
            out_shape = _infer_out_shape(block, adapter.out_shape, reads)
    except AutoDLError:
        raise
    except Exception as exc:  # noqa: BLE001 - a user block's failure becomes a one-line SpecError
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(f"{where} cannot be built: {msg}") from None
    out_shape = tuple(int(s) for s in out_shape)
    if not 1 <= len(out_shape) <= 3 or min(out_shape) < 1:
        raise SpecError(
            f"{where} returns a state of shape {out_shape}; blocks must return 1 to 3 positive sizes"
        )
    return BlockUnit(name, adapter, block, out_shape, reads)


def measure_unit(
    name: str, in_shape: Shape, **ctx: Any
) -> tuple[Shape, list[tuple[int, int]], int, int]:
    """Build block ``name`` on the meta device (no memory, no initialisation) and count it:
    what :mod:`autodlgym.searchspace.cost` uses for a block without a cost formula.

    Args:
        name: a registered block.
        in_shape: the state it reads, already adapted to its ``reads`` (so the adapter in
            front of it is the identity).
        ctx: the fields of its :class:`~autodlgym.nn.blocks.BlockContext`.

    Returns:
        ``(out_shape, tensors, flops, activations)``: the state shape it returns, each
        parameter as ``(size of dim 0, numel)``, the forward FLOPs of one example
        (``FlopCounterMode``) and the elements of its output.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        # an adapted shape is a fixed point of the adapter _make_unit puts in front
        unit = _make_unit(name, in_shape, BlockContext(**ctx))
    unit.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        y = unit(torch.zeros(1, *in_shape, device="meta"))
    y = y[0] if isinstance(y, tuple) else y
    tensors = [(int(p.shape[0]) if p.dim() else 0, p.numel()) for p in unit.parameters()]
    return (
        tuple(int(s) for s in unit.out_shape),
        tensors,
        int(counter.get_total_flops()),
        int(y.numel()),
    )


def build_model(spec: Mapping[str, Any], io: IOSpec) -> AutoDLNet:
    """Build and initialise the network a spec describes, for a task's inputs and outputs.

    Args:
        spec: an ArchSpec (or mapping) with the decisions of ``DEFAULT_CONFIG``; missing
            decisions take the defaults in the module docstring; decisions not used here
            (optimizer, lr, ...) are ignored.
        io: the task's modality, input shape (without batch) and number of outputs.

    Returns:
        An :class:`AutoDLNet` in training mode, taking ``(B, *io.shape)`` float inputs and
        returning ``(B, io.n_outputs)``.

    Raises:
        SpecError: a value the builder cannot use, or a block that cannot be built for this
            input (one line). Every spec of the default space builds for every modality.
    """
    spec = spec if isinstance(spec, ArchSpec) else ArchSpec(spec)
    n_stages = _num("n_stages", spec.get("n_stages", 1), int, 0, 64)
    connections = _choice("connections", spec.get("connections", "chain"), CONNECTIONS)
    activation = str(spec.get("activation", "relu"))
    make_activation(activation)  # fail early with the list of known activations
    norm = str(spec.get("norm", "none"))
    dropout = _num("dropout", spec.get("dropout", 0.0), float, 0.0, 0.999)

    shape: Shape = tuple(io.shape)
    graphs = io.modality == "graph"
    stages: list[nn.Module] = []
    chrono: list[Stage] = []
    if "links" in spec:  # a NAS-Bench-Graph cell (its space file: --space nasbench-graph)
        width = _num("width", spec.get("width", 64), int, 1, 1 << 16)
        cell = CellStage(shape, spec, width, {"activation": activation, "norm": norm,
                                              "dropout": dropout})  # fmt: skip
        stages.append(cell)
        shape = cell.out_shape
        n_stages = 0
    for i in range(1, n_stages + 1):
        st = spec.stage(i)
        down = make_downsample(
            str(st.get("downsample", "none")),
            shape,
            p=_num(f"stage{i}.lp_p", st.get("lp_p", 2.0), float, 1.0),
            r=_num(f"stage{i}.lse_r", st.get("lse_r", 1.0), float, 1e-6),
            graphs=graphs,
        )
        if down is not None:
            shape = down.out_shape
        in_shape = shape
        block = st.get("block", "conv")
        depth = _num(f"stage{i}.depth", st.get("depth", 1), int, 0, 256)
        width = _num(f"stage{i}.width", st.get("width", 64), int, 1, 1 << 16)
        units = []
        states = [shape]
        for j in range(depth):
            ctx = BlockContext(width, activation, norm, dropout, index=j, stage=i, options=st)
            reads = dense_input_shape(states) if connections == "dense" and j > 0 else shape
            unit = _make_unit(block, reads, ctx)
            units.append(unit)
            shape = unit.out_shape
            states.append(shape)
        stage = Stage(down, units, connections, in_shape, activation)
        shape = stage.out_shape
        stages.append(stage)
        if st.get("chrono_init", False):
            chrono.append(stage)
    if io.modality in GRAPH_MODALITIES:
        head: nn.Module = GraphHead(
            shape, io.modality, str(spec.get("readout", "mean")), io.n_outputs
        )
    else:
        head = Head(shape, str(spec.get("head_pool", "avg")), io.n_outputs)
    model = AutoDLNet(stages, head, spec, io)
    apply_init(
        model,
        str(spec.get("init", "torch_default")),
        activation=activation,
        zero_init_residual=bool(spec.get("zero_init_residual", False)),
    )
    for stage in chrono:
        for unit in stage.units:
            # the cells read the adapted state: its last axis is the sequence length
            chrono_init_(unit.block, int(unit.adapter.out_shape[-1]))
    return model


# Trainable subsets -------------------------------------------------------------------------
def _masked_grad(mask: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    return grad * mask.to(device=grad.device, dtype=grad.dtype)


def configure_trainable(model: nn.Module, mode: str, seed: int = 0) -> nn.Module:
    """Choose which weights train; returns the model. Call once, after :func:`build_model`.

    Args:
        model: a model with a ``head`` submodule (an :class:`AutoDLNet`).
        mode: ``"all"``; ``"head"`` (``requires_grad`` False outside the head: random features
            with a trained readout); or ``"fraction_<p>"``: in every layer outside the head, a
            random ``p`` of the output units (rows along dim 0, at least one; the same rows for
            all of a layer's parameters of that size, e.g. weight and bias) is trained and the
            rest keep their initial values: a gradient hook multiplies gradients by a 0/1 mask.
            Those parameters carry the mask as ``param._autodl_mask``; give them zero weight
            decay so the frozen units stay at init. The head trains fully. ``"block_<k>"``:
            only the k-th block (1-based, in forward order) and the head train.
        seed: seeds the choice of units (a local torch Generator; the global state is untouched).

    Raises:
        SpecError: an unknown mode, or a block number past the model's blocks.
    """
    parsed = parse_trainable(mode)
    head = getattr(model, "head", None)
    head_params = {id(p) for p in head.parameters()} if head is not None else set()
    if parsed == "all":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if parsed == "head":
        for p in model.parameters():
            p.requires_grad_(id(p) in head_params)
        return model
    if isinstance(parsed, tuple):
        blocks = getattr(model, "blocks", [])
        k = parsed[1]
        if k > len(blocks):
            raise SpecError(f"trainable={mode!r}: the model has only {len(blocks)} blocks")
        train = head_params | {id(p) for p in blocks[k - 1].parameters()}
        for p in model.parameters():
            p.requires_grad_(id(p) in train)
        return model
    frac = float(parsed)
    gen = torch.Generator().manual_seed(int(seed))
    for m in model.modules():
        rows: dict[int, torch.Tensor] = {}
        for p in m.parameters(recurse=False):
            if id(p) in head_params or not p.requires_grad or p.dim() == 0:
                continue
            n = p.shape[0]
            if n not in rows:
                k = max(1, round(frac * n))
                keep = torch.zeros(n, dtype=torch.bool)
                keep[torch.randperm(n, generator=gen)[:k]] = True
                rows[n] = keep
            mask = rows[n].to(p.dtype).view(n, *([1] * (p.dim() - 1)))
            p._autodl_mask = mask
            p.register_hook(partial(_masked_grad, mask))
    return model
