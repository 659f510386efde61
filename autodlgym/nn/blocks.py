"""Blocks: the layers a stage repeats, and the registry users extend.

States. Between blocks a network carries one of three state kinds (shapes without batch):

* vector ``(D,)`` -> tensor ``(B, D)``
* sequence ``(C, L)`` -> tensor ``(B, C, L)``: channels x positions
* image ``(C, H, W)`` -> tensor ``(B, C, H, W)``

Contract. A block is registered with :func:`register_block` on a factory::

    @register_block("my_block", reads="spatial")
    def my_block(in_shape: tuple[int, ...], ctx: BlockContext) -> torch.nn.Module: ...

The factory gets the state shape the block reads (already adapted, see ``reads`` below) and a
:class:`BlockContext` (width, activation, norm, dropout, the block's index in its stage, and
all of its stage's decisions in ``ctx.options``, so a block may read its own new decisions,
e.g. ``ctx.get("ratio", 4)``). It returns a module whose ``forward(x)`` returns the next state
as a tensor, or a pair ``(state, skip)`` of equal shapes: a stage whose blocks emit skips
outputs ``act(state + sum of skips)`` with the spec's activation (WaveNet's skip path; the
final state is included so that every parameter of the stage gets a gradient). The module should set
``out_shape`` (the state shape it returns); without it the builder finds it by a dry run. It
may set ``hidden_widths``, the widths of its hidden layers in the order the signal passes them
(Hanin's sum in the diagnostics reads them); without it the block counts as one layer of its
output width. Write nonlinearities as modules (``nn.Sigmoid()``, not ``torch.sigmoid``) so the
diagnostics see their pre-activations. docs/blocks.md lists each built-in block's paper and
what differs from it.
Factories use torch's global generator only; :func:`~autodlgym.nn.init.apply_init`
re-initialises every weight afterwards. A block that cannot be built for a shape raises
:class:`~autodlgym.errors.SpecError` with one line. Layers may be tagged with
:func:`~autodlgym.nn.init.mark` (gain, per-gate gains, zero-init of a residual
branch's last layer).

``reads`` says what the factory is given, and how every state is adapted to it, so that every
block works on every state:

=================  ===========================  ============================  =====================
reads              vector (D,)                  sequence (C, L)               image (C, H, W)
=================  ===========================  ============================  =====================
``"vector"``       as is                        flattened to (C*L,)           flattened to (C*H*W,)
``"spatial"``      one position (D, 1)          as is                         as is (2-D layers)
``"sequence"``     one position (D, 1)          as is                         sequence (C, H*W)
``"any"``          as is                        as is                         as is
``"graph"``        as is                        flattened to (C*L,)           flattened to (C*H*W,)
=================  ===========================  ============================  =====================

A ``"graph"`` block reads node features as a vector block does and is called
``forward(x, graph)`` with the :class:`Graph` (None where the task is not a graph: each
example is then a node without edges); see :mod:`autodlgym.nn.graph`.

A vector read by a spatial or sequence block is a signal of one position with D channels, so
such a block acts on it pointwise and costs what an MLP of the same width costs. (Reading it
as a D-long one-channel signal would make a wide conv after a wide MLP stage cost
``width**2 * kernel * D`` per example: hundreds of times more, for an ordering of features
that a vector does not have. Inputs that are signals are ``sequence`` tasks, shape (C, L).)

Flattening first average-pools the positions (adaptively, to a grid as square as possible)
when the flattened size would exceed ``VECTOR_CAP = 4096`` features, so that a vector block
after a wide sequence stays small; a state with more than 4096 channels is pooled to one
position.

Built-in blocks (``reads`` in brackets; every block ends with the spec's norm, activation and
dropout unless noted). Each is a class here and a row of the table in
:mod:`autodlgym.searchspace.builtins` (its name, ``reads``, the stage decisions it uses, a line
for listings), which registers it without importing this module:

* ``mlp`` [vector]: Linear(width).
* ``highway`` [vector] (Srivastava et al., 2015): ``y = t * act(W x) + (1 - t) * x`` with gate
  ``t = sigmoid(W_t x + b_t)``, ``b_t`` initialised to ``gate_bias`` (stage option, default -2,
  whatever the init law) so the block starts close to its carry path; input projected to width
  by a linear layer when sizes differ.
* ``conv`` [spatial]: conv with ``kernel``, ``dilation`` ("same" padding).
* ``residual`` [spatial] (He et al., 2016): conv-norm-act-conv-norm plus shortcut (1x1 conv when
  channels differ), then act; the branch's last layer is marked for zero-init.
* ``dense`` [spatial] (Huang et al., 2017): ``DENSE_LAYERS = 3`` conv layers of ``growth``
  channels, each fed the concatenation of the input and all earlier layers' outputs, then a
  1x1 transition conv to width.
* ``inception`` [spatial] (Szegedy et al., 2015): parallel 1, 3 and 5 kernel convs and a
  3-window max-pool followed by a 1x1 conv, ``width // 4`` channels each (the remainder goes to
  the first branches), concatenated to width; the 3 and 5 kernel branches read a 1x1 reduction
  to half their width (rounded up) followed by the activation.
* ``se`` [spatial] (Hu et al., 2018): conv block then squeeze-excitation (mean over positions,
  bottleneck of ``max(1, width // reduction)`` units (stage option ``reduction``, default 16)
  with ReLU as in the paper, sigmoid, channel scaling).
* ``attention`` [sequence] (Vaswani et al., 2017): pre-norm transformer encoder layer:
  ``x + MHA(norm(x))`` then ``x + FFN(norm(x))`` (FFN hidden ``2 * d``), with
  ``torch.nn.MultiheadAttention``. ``d`` is the width rounded up to a multiple of ``heads``
  (so every legal spec builds; the block's output has ``d`` channels). The input is projected
  to ``d`` by a 1x1 conv when channels differ; the first attention block of a stage adds
  sinusoidal position encodings. The norm is the spec's norm; there is no norm/act after the
  residual sums. Attention's out-projection and the FFN's last layer are marked for zero-init.
* ``recurrent`` [sequence]: ``cell`` rnn (Elman, tanh), gru, lstm or minimal, optionally
  ``bidirectional`` (then ``width // 2`` units per direction, so output width stays about the
  same). ``minimal`` is the MinimalRNN of Chen (2017): ``z_t = tanh(W_x x_t)``,
  ``u_t = sigmoid(U_h h_{t-1} + U_z z_t + b_u)``, ``h_t = u_t * h_{t-1} + (1 - u_t) * z_t``.
  Cells use their own nonlinearities; the spec's activation is not used inside them.
* ``wavenet`` [sequence] (van den Oord et al., 2016): causal conv with ``kernel`` and dilation
  ``2 ** index`` (doubling per block in the stage, starting again at 1 before the causal padding
  would reach the sequence length: :func:`wavenet_dilation`), gated ``tanh(f) * sigmoid(g)``, then the
  spec's norm and dropout; a 1x1 residual conv (marked for zero-init) added to the input (1x1
  projected when channels differ) and a 1x1 skip conv. The stage outputs
  ``act(state + sum of skips)``.

Norms (``norm``): ``batch`` (BatchNorm over batch and positions), ``layer`` (LayerNorm over the
channels at each position; over the features of a vector), ``instance`` (InstanceNorm over the
positions of each channel; a vector, or a state with a single position, has no positions to
normalise over, so there it is layer norm), ``none``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from autodlgym.errors import SpecError
from autodlgym.nn.init import mark

# re-exported: a user's block module may import the decorator from here
from autodlgym.searchspace.registry import READS, register_block  # noqa: F401

Shape = tuple[int, ...]
BlockFactory = Callable[[Shape, "BlockContext"], nn.Module]

VECTOR_CAP = 4096
DENSE_LAYERS = 3
#: squeeze-excitation bottleneck: width // SE_REDUCTION units (Hu et al.'s r = 16)
SE_REDUCTION = 16
KINDS = {1: "vector", 2: "sequence", 3: "image"}

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "elu": nn.ELU,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}
NORMS = ("none", "batch", "layer", "instance")
#: the graph blocks' classes, in :mod:`autodlgym.nn.graph` (imported, with PyTorch Geometric,
#: when one of them is first asked for)
GRAPH_CLASSES = (
    "GCNBlock", "GATBlock", "GINBlock", "SAGEBlock", "ChebBlock", "ARMABlock",
    "GraphConvBlock", "FCBlock", "SkipBlock",
)  # fmt: skip


class Graph(NamedTuple):
    """The structure of a graph state, passed beside the node features ``(N, D)`` to blocks
    that read ``"graph"`` (see :mod:`autodlgym.nn.graph`).

    Attributes:
        edge_index: ``(2, E)`` int64, source and target node of each edge.
        batch: ``(N,)`` int64, the graph of each node in a mini-batch of graphs (None: one
            graph).
    """

    edge_index: torch.Tensor
    batch: torch.Tensor | None = None


def __getattr__(name: str) -> Any:
    # the registry asks this module for every built-in block's class; the graph blocks live
    # in nn/graph.py so that PyTorch Geometric is imported only for them
    if name in GRAPH_CLASSES:
        from autodlgym.nn import graph

        return getattr(graph, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class BlockContext:
    """What a block factory knows besides its input shape.

    Args:
        width: output channels (features for vector blocks).
        activation: a name in ``ACTIVATIONS``.
        norm: one of ``NORMS``.
        dropout: dropout probability.
        index: the block's position in its stage (0-based).
        stage: the stage number (1-based).
        options: all decisions of the block's stage (``kernel``, ``cell``, user decisions...).
    """

    width: int
    activation: str = "relu"
    norm: str = "none"
    dropout: float = 0.0
    index: int = 0
    stage: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any) -> Any:
        """A stage decision, or ``default`` when the stage does not set it."""
        return self.options.get(key, default)


# Helpers ---------------------------------------------------------------------------------
def state_kind(shape: Shape) -> str:
    """``"vector"``, ``"sequence"`` or ``"image"`` for a state shape without batch."""
    try:
        return KINDS[len(shape)]
    except KeyError:
        raise SpecError(
            f"state shape {shape} has {len(shape)} dimensions; blocks handle 1 to 3"
        ) from None


def make_activation(name: str) -> nn.Module:
    """A fresh activation module."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise SpecError(
            f"activation {name!r} is unknown; use one of {', '.join(ACTIVATIONS)}"
        ) from None


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis (dim 1) at every position."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.movedim(1, -1), self.weight.shape, self.weight, self.bias, self.eps)
        return y.movedim(-1, 1)


def make_norm(kind: str, shape: Shape) -> nn.Module:
    """A normalisation layer for a state of ``shape`` (see the module docstring)."""
    if kind == "none":
        return nn.Identity()
    if kind not in NORMS:
        raise SpecError(f"norm {kind!r} is unknown; use one of {', '.join(NORMS)}")
    c = shape[0]
    positions = math.prod(shape[1:])
    if len(shape) == 1:
        return nn.BatchNorm1d(c) if kind == "batch" else nn.LayerNorm(c)
    if kind == "batch":
        return (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(c)
    if kind == "instance" and positions > 1:
        return (nn.InstanceNorm1d if len(shape) == 2 else nn.InstanceNorm2d)(c, affine=True)
    return ChannelLayerNorm(c)


def make_dropout(p: float) -> nn.Module:
    if not 0.0 <= float(p) < 1.0:
        raise SpecError(f"dropout {p!r} must lie in [0, 1)")
    return nn.Dropout(float(p)) if p > 0 else nn.Identity()


def make_conv(
    shape: Shape, out_channels: int, kernel: int = 1, dilation: int = 1, padding: Any = "same"
) -> nn.Module:
    """A Conv1d (sequence) or Conv2d (image) reading ``shape``; stride 1."""
    cls = nn.Conv1d if len(shape) == 2 else nn.Conv2d
    return cls(shape[0], out_channels, int(kernel), dilation=int(dilation), padding=padding)


def _pool_grid(shape: Shape, positions: int) -> tuple[int, ...]:
    """A grid of at most ``positions`` cells for the spatial part of ``shape``, as square as
    the state allows."""
    if len(shape) == 2:
        return (max(1, min(shape[1], positions)),)
    h, w = shape[1], shape[2]
    gh = max(1, min(h, math.isqrt(positions)))
    gw = max(1, min(w, positions // gh))
    gh = max(1, min(h, positions // gw))  # an axis shorter than the square gives cells back
    return gh, gw


class Adapter(nn.Module):
    """Turns a state into the kind a block reads (see the module docstring's table)."""

    def __init__(self, in_shape: Shape, reads: str) -> None:
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.mode = "as_is"
        self.pool: nn.Module | None = None
        kind = state_kind(in_shape)
        out: Shape = self.in_shape
        if reads in ("vector", "graph") and kind != "vector":
            c = in_shape[0]
            spatial = in_shape[1:]
            if math.prod(in_shape) > VECTOR_CAP:
                grid = _pool_grid(in_shape, max(1, VECTOR_CAP // c))
                pool_cls = nn.AdaptiveAvgPool1d if len(spatial) == 1 else nn.AdaptiveAvgPool2d
                self.pool = pool_cls(grid)
                spatial = grid
            self.mode = "flatten"
            out = (c * math.prod(spatial),)
        elif reads in ("spatial", "sequence") and kind == "vector":
            self.mode = "unsqueeze"
            out = (in_shape[0], 1)
        elif reads == "sequence" and kind == "image":
            self.mode = "flatten_positions"
            out = (in_shape[0], in_shape[1] * in_shape[2])
        self.out_shape: Shape = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "flatten":
            if self.pool is not None:
                x = self.pool(x)
            return x.flatten(1)
        if self.mode == "unsqueeze":
            return x.unsqueeze(-1)
        if self.mode == "flatten_positions":
            return x.flatten(2)
        return x


def _post(ctx: BlockContext, shape: Shape, act: bool = True) -> nn.Sequential:
    """The spec's norm, activation and dropout for a block output of ``shape``."""
    layers = [make_norm(ctx.norm, shape)]
    if act:
        layers.append(make_activation(ctx.activation))
    layers.append(make_dropout(ctx.dropout))
    return nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])


# Vector blocks ---------------------------------------------------------------------------
class MLPBlock(nn.Module):
    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        super().__init__()
        self.linear = nn.Linear(in_shape[0], ctx.width)
        self.post = _post(ctx, (ctx.width,))
        self.out_shape: Shape = (ctx.width,)
        self.hidden_widths = [ctx.width]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.linear(x))


class HighwayBlock(nn.Module):
    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        super().__init__()
        w = ctx.width
        self.proj = (
            nn.Identity() if in_shape[0] == w else mark(nn.Linear(in_shape[0], w), gain="linear")
        )
        self.transform = nn.Linear(w, w)
        # a negative gate bias starts the block close to its carry path (Srivastava et al.)
        self.gate = mark(nn.Linear(w, w), gain="sigmoid", bias=float(ctx.get("gate_bias", -2.0)))
        self.gate_act = nn.Sigmoid()
        self.act = make_activation(ctx.activation)
        self.post = _post(ctx, (w,), act=False)
        self.out_shape: Shape = (w,)
        self.hidden_widths = [w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        t = self.gate_act(self.gate(x))
        return self.post(t * self.act(self.transform(x)) + (1.0 - t) * x)


# Spatial blocks --------------------------------------------------------------------------
class ConvBlock(nn.Module):
    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        super().__init__()
        self.out_shape: Shape = (ctx.width, *in_shape[1:])
        self.conv = make_conv(in_shape, ctx.width, ctx.get("kernel", 3), ctx.get("dilation", 1))
        self.post = _post(ctx, self.out_shape)
        self.hidden_widths = [ctx.width]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.conv(x))


class ResidualBlock(nn.Module):
    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        super().__init__()
        w, k, d = ctx.width, ctx.get("kernel", 3), ctx.get("dilation", 1)
        self.out_shape: Shape = (w, *in_shape[1:])
        self.conv1 = make_conv(in_shape, w, k, d)
        self.norm1 = make_norm(ctx.norm, self.out_shape)
        self.act1 = make_activation(ctx.activation)
        self.conv2 = make_conv(self.out_shape, w, k, d)
        self.norm2 = make_norm(ctx.norm, self.out_shape)
        # the branch's last layer with weights: zeroing it makes the block its shortcut
        mark(self.conv2 if isinstance(self.norm2, nn.Identity) else self.norm2, zero_init=True)
        self.shortcut = (
            nn.Identity() if in_shape[0] == w else mark(make_conv(in_shape, w), gain="linear")
        )
        self.act2 = make_activation(ctx.activation)
        self.drop = make_dropout(ctx.dropout)
        self.hidden_widths = [w, w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm2(self.conv2(self.act1(self.norm1(self.conv1(x)))))
        return self.drop(self.act2(h + self.shortcut(x)))


class DenseBlock(nn.Module):
    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        super().__init__()
        g, k = int(ctx.get("growth", 16)), ctx.get("kernel", 3)
        if g < 1:
            raise SpecError(f"dense block growth must be positive, got {g}")
        spatial = in_shape[1:]
        self.layers = nn.ModuleList()
        c = in_shape[0]
        for _ in range(DENSE_LAYERS):
            shape_in = (c, *spatial)
            self.layers.append(
                nn.Sequential(make_conv(shape_in, g, k), *_post_no_drop(ctx, (g, *spatial)))
            )
            c += g
        self.out_shape: Shape = (ctx.width, *spatial)
        self.transition = make_conv((c, *spatial), ctx.width)
        self.post = _post(ctx, self.out_shape)
        self.hidden_widths = [g] * DENSE_LAYERS + [ctx.width]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, dim=1)))
        return self.post(self.transition(torch.cat(feats, dim=1)))


def _post_no_drop(ctx: BlockContext, shape: Shape) -> list[nn.Module]:
    layers = [make_norm(ctx.norm, shape), make_activation(ctx.activation)]
    return [m for m in layers if not isinstance(m, nn.Identity)]


class InceptionBlock(nn.Module):
    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        super().__init__()
        w = ctx.width
        widths = [w // 4 + (1 if i < w % 4 else 0) for i in range(4)]
        pool_cls = nn.MaxPool1d if len(in_shape) == 2 else nn.MaxPool2d
        spatial = tuple(in_shape[1:])
        self.branches = nn.ModuleList()
        self.hidden_widths: list[int] = []
        for kind, bw in zip((1, 3, 5, "pool"), widths):
            if bw == 0:
                continue
            if kind == "pool":
                branch = nn.Sequential(pool_cls(3, stride=1, padding=1), make_conv(in_shape, bw))
            elif kind == 1:
                branch = make_conv(in_shape, bw, 1)
            else:
                # the 1x1 reduction (with its nonlinearity) in front of the wide kernel is what
                # keeps Inception's cost down (Szegedy et al., 2015, section 4)
                r = inception_reduction(bw)
                branch = nn.Sequential(
                    make_conv(in_shape, r, 1),
                    make_activation(ctx.activation),
                    make_conv((r, *spatial), bw, kind),
                )
                self.hidden_widths.append(r)
            self.branches.append(branch)
        self.out_shape: Shape = (w, *spatial)
        self.post = _post(ctx, self.out_shape)
        self.hidden_widths.append(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(torch.cat([b(x) for b in self.branches], dim=1))


class SEBlock(nn.Module):
    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        super().__init__()
        w = ctx.width
        self.out_shape: Shape = (w, *in_shape[1:])
        self.conv = make_conv(in_shape, w, ctx.get("kernel", 3), ctx.get("dilation", 1))
        self.body = nn.Sequential(*_post_no_drop(ctx, self.out_shape))
        reduction = int(ctx.get("reduction", SE_REDUCTION))
        if reduction < 1:
            raise SpecError(f"squeeze-excitation reduction must be positive, got {reduction}")
        r = max(1, w // reduction)
        self.squeeze = mark(nn.Linear(w, r), gain="relu")
        self.squeeze_act = nn.ReLU()  # the paper's delta, whatever the spec's activation
        self.excite = mark(nn.Linear(r, w), gain="sigmoid")
        self.excite_act = nn.Sigmoid()
        self.drop = make_dropout(ctx.dropout)
        self.hidden_widths = [w, r]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(self.conv(x))
        s = self.excite_act(self.excite(self.squeeze_act(self.squeeze(h.flatten(2).mean(-1)))))
        return self.drop(h * s.view(*s.shape, *([1] * (h.dim() - 2))))


def inception_reduction(branch_width: int) -> int:
    """Channels of the 1x1 reduction in front of a 3- or 5-wide Inception branch: half the
    branch's output, rounded up (GoogLeNet's inception(3a) reduces 128 to 96 and 32 to 16)."""
    return max(1, -(-int(branch_width) // 2))


# Sequence blocks -------------------------------------------------------------------------
def wavenet_dilation(index: int, kernel: int, length: int) -> int:
    """Dilation of the ``index``-th WaveNet block of a stage on a sequence of ``length``.

    Dilations double, ``1, 2, 4, ...``, and start again at 1 once the next one would look
    further back than the sequence (``(kernel - 1) * d >= length``), as WaveNet repeats its
    ``1, 2, ..., 512`` cycle (van den Oord et al., 2016). A sequence of one position has
    dilation 1.
    """
    reach = max(1, int(kernel) - 1)
    cycle = 1
    while reach * 2**cycle < length:
        cycle += 1
    return 2 ** (int(index) % cycle)


def sinusoidal_positions(channels: int, length: int) -> torch.Tensor:
    """Fixed sin/cos position encodings of shape (channels, length) (Vaswani et al., 2017)."""
    pos = torch.arange(length, dtype=torch.float32)
    i = torch.arange(channels, dtype=torch.float32)
    freq = torch.exp(-math.log(10000.0) * (2 * torch.div(i, 2, rounding_mode="floor")) / channels)
    angles = freq[:, None] * pos[None, :]
    return torch.where((i % 2 == 0)[:, None], torch.sin(angles), torch.cos(angles))


def _may_backprop(module: nn.Module, h: torch.Tensor) -> bool:
    """Whether a CPU forward pass may be followed by a backward one (a module training, with
    gradients), decided in Python: an exported (eval-mode) graph holds no data-dependent
    branch."""
    return (
        module.training
        and h.device.type == "cpu"
        and h.requires_grad
        and torch.is_grad_enabled()
        and not torch.compiler.is_compiling()
    )


class AttentionBlock(nn.Module):
    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        super().__init__()
        heads = int(ctx.get("heads", 1))
        if heads < 1:
            raise SpecError(f"attention heads must be positive, got {heads}")
        c, length = in_shape
        d = -(-ctx.width // heads) * heads
        self.out_shape: Shape = (d, length)
        self.proj = nn.Identity() if c == d else mark(nn.Conv1d(c, d, 1), gain="linear")
        if ctx.index == 0:
            self.register_buffer("positions", sinusoidal_positions(d, length), persistent=False)
        else:
            self.positions = None
        self.norm1 = make_norm(ctx.norm, self.out_shape)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        mark(self.attn.out_proj, gain="linear", zero_init=True)
        self.norm2 = make_norm(ctx.norm, self.out_shape)
        self.ffn1 = nn.Conv1d(d, 2 * d, 1)
        self.act = make_activation(ctx.activation)
        self.ffn2 = mark(nn.Conv1d(2 * d, d, 1), gain="linear", zero_init=True)
        self.drop = make_dropout(ctx.dropout)
        self.hidden_widths = [d, 2 * d]  # the attention sublayer's stream, the FFN's hidden layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        if self.positions is not None:
            x = x + self.positions
        h = self.norm1(x).transpose(1, 2)
        if _may_backprop(self, h) and float(h.detach().abs().amax()) > 1e3:
            # PyTorch's CPU flash-attention backward returns NaN gradients when the logits are
            # huge (without a norm, deep stacks reach |h| ~ 1e5 and logits ~ 1e10 at init);
            # the math kernel's stay finite. Only then: it is 2.3x slower at length 256. A
            # guard of training only: inference (and so torch.export / ONNX) never reads it
            with sdpa_kernel(SDPBackend.MATH):
                a, _ = self.attn(h, h, h, need_weights=False)
        else:
            a, _ = self.attn(h, h, h, need_weights=False)
        x = x + self.drop(a.transpose(1, 2))
        return x + self.drop(self.ffn2(self.drop(self.act(self.ffn1(self.norm2(x))))))


class MinimalRNN(nn.Module):
    """MinimalRNN (Chen, 2017) over (B, L, C) inputs, batch first; see the module docstring."""

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool = False) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.bidirectional = bidirectional
        self.directions = nn.ModuleList()
        for _ in range(2 if bidirectional else 1):
            cell = nn.Module()
            cell.phi = mark(nn.Linear(input_size, hidden_size), gain="tanh")
            cell.gate_z = mark(nn.Linear(hidden_size, hidden_size), gain="sigmoid")
            cell.gate_h = mark(nn.Linear(hidden_size, hidden_size, bias=False), gain="sigmoid")
            cell.phi_act = nn.Tanh()
            cell.gate_act = nn.Sigmoid()
            self.directions.append(cell)

    def chrono_gates(self) -> list[list[tuple[torch.Tensor, float]]]:
        """The update gate u keeps the previous state, like an LSTM's forget gate."""
        return [[(cell.gate_z.bias, 1.0)] for cell in self.directions]

    @staticmethod
    def _run(cell: nn.Module, x: torch.Tensor) -> torch.Tensor:
        z = cell.phi_act(cell.phi(x))
        gz = cell.gate_z(z)  # the input part of the gate, for all steps at once
        # z's dtype, not x's: under autocast (AMP) z is bf16/fp16 while x stays fp32, and
        # lerp needs one dtype
        h = z.new_zeros(x.shape[0], z.shape[-1])
        w_h = cell.gate_h.weight
        outs = []
        for t in range(x.shape[1]):
            u = cell.gate_act(torch.addmm(gz[:, t], h, w_h.t()))
            h = torch.lerp(z[:, t], h, u)  # u * h + (1 - u) * z
            outs.append(h)
        return torch.stack(outs, dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        outs = [self._run(self.directions[0], x)]
        if self.bidirectional:
            outs.append(self._run(self.directions[1], x.flip(1)).flip(1))
        return torch.cat(outs, dim=-1), None


class RecurrentBlock(nn.Module):
    CELLS = ("rnn", "gru", "lstm", "minimal")

    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        super().__init__()
        cell = ctx.get("cell", "gru")
        bi = bool(ctx.get("bidirectional", False))
        hidden = max(1, ctx.width // 2) if bi else ctx.width
        c, length = in_shape
        if cell == "minimal":
            self.cell = MinimalRNN(c, hidden, bidirectional=bi)
        elif cell in ("rnn", "gru", "lstm"):
            cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]
            self.cell = cls(c, hidden, batch_first=True, bidirectional=bi)
        else:
            raise SpecError(
                f"recurrent cell {cell!r} is unknown; use one of {', '.join(self.CELLS)}"
            )
        self.out_shape: Shape = (hidden * (2 if bi else 1), length)
        self.post = _post(ctx, self.out_shape, act=False)
        self.hidden_widths = [self.out_shape[0]]  # one layer: the recurrence is not unrolled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.cell(x.transpose(1, 2))
        return self.post(y.transpose(1, 2))


class WaveNetBlock(nn.Module):
    emits_skip = True

    def __init__(self, in_shape: Shape, ctx: BlockContext) -> None:
        super().__init__()
        w, k = ctx.width, int(ctx.get("kernel", 3))
        c, length = in_shape
        self.dilation = wavenet_dilation(ctx.index, k, length)
        self.left_pad = (k - 1) * self.dilation
        self.conv = mark(
            nn.Conv1d(c, 2 * w, k, dilation=self.dilation), gate_gains=("tanh", "sigmoid")
        )
        self.out_shape: Shape = (w, length)
        self.post = _post(ctx, self.out_shape, act=False)
        self.res = mark(nn.Conv1d(w, w, 1), gain="linear", zero_init=True)
        self.skip = mark(nn.Conv1d(w, w, 1), gain="linear")
        self.shortcut = nn.Identity() if c == w else mark(nn.Conv1d(c, w, 1), gain="linear")
        self.filter_act = nn.Tanh()
        self.gate_act = nn.Sigmoid()
        self.hidden_widths = [w]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f, g = self.conv(F.pad(x, (self.left_pad, 0))).chunk(2, dim=1)
        z = self.post(self.filter_act(f) * self.gate_act(g))
        return self.shortcut(x) + self.res(z), self.skip(z)
