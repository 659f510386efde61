"""The cost of a candidate without training it: ``estimate_cost(spec, io) -> Cost``.

A :class:`Cost` holds the parameter count, the trainable parameter count, the forward FLOPs of
one example and the activation memory of one example's forward pass. It is computed from
per-layer formulas that follow the builder (:mod:`autodlgym.nn.build`) shape by shape:
state shapes through downsampling, adapters, blocks, connections and the head. No module is
built and torch is not imported, so a spec costs well under a millisecond and searchers can
reject over-budget candidates before anything trains.

Conventions (the ones ``torch.utils.flop_counter.FlopCounterMode`` uses):

* FLOPs are 2 per multiply-add of matrix products, convolutions and attention (``Q K^T`` and
  the weighted sum of values); biases, norms, activations and pooling add nothing.
  Recurrent cells count their gates at every step (4 gate blocks for an LSTM, 3 for a GRU, 1 for
  an Elman RNN, per direction): what torch's counter sees of an LSTM on a meta device, where
  the cell is not fused. ``tests/searchspace/test_cost.py`` checks every block kind against
  ``FlopCounterMode`` over a meta-device forward of the built model.
* Parameters are exact: the same tensors :func:`~autodlgym.nn.build.build_model`
  creates. Trainable parameters follow
  :func:`~autodlgym.nn.build.configure_trainable` (``head``: the readout only;
  ``fraction_<p>``: ``max(1, round(p * rows))`` rows of every tensor outside the head).
* Activation memory is float32 bytes of the tensors one example's forward pass writes
  (layer outputs, gates, attention scores): what autograd can keep for the backward pass, so
  a training step needs about ``batch_size`` times this. It is an estimate: on 120 samples of
  the default space over the three modalities, 0.45 to 1.26 times (median 0.9) the sum of the
  outputs of every op an eval-mode forward runs (views not counted; the extremes are
  recurrent stages, whose gates the formula counts as an unfused cell writes them; fused
  kernels keep less, the backward pass needs more).

Blocks registered by users (:func:`~autodlgym.searchspace.registry.register_block`) without
a formula are measured once per input shape and context: built on the meta device (no memory,
no initialisation) and run under ``FlopCounterMode``, by
:func:`~autodlgym.nn.build.measure_unit`, which is imported (with torch) only then; a formula can
be added with :func:`register_cost`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from autodlgym.errors import SpecError
from autodlgym.searchspace import builtins
from autodlgym.searchspace.io import IOSpec
from autodlgym.searchspace.registry import BLOCKS
from autodlgym.searchspace.spec import ArchSpec

Shape = tuple[int, ...]

# Mirrors of the builder's constants (nn/blocks.py and nn/build.py import torch; this module
# must not).
VECTOR_CAP = 4096
DENSE_LAYERS = 3
SE_REDUCTION = 16
TOPK_RATIO = 0.5
BYTES = 4  # float32
_CACHE_SIZE = 8192


@dataclass(frozen=True)
class Cost:
    """What a candidate costs (see the module docstring for the conventions).

    Attributes:
        params: number of parameters.
        trainable_params: parameters that train under the spec's ``trainable`` setting.
        flops: forward FLOPs of one example.
        activation_bytes: float32 bytes of one example's forward activations.
    """

    params: int
    trainable_params: int
    flops: int
    activation_bytes: int

    @property
    def activation_mb(self) -> float:
        return self.activation_bytes / 2**20

    def to_dict(self) -> dict[str, int]:
        return {
            "params": self.params,
            "trainable_params": self.trainable_params,
            "flops": self.flops,
            "activation_bytes": self.activation_bytes,
        }


@dataclass(frozen=True)
class UnitContext:
    """What a block's cost formula knows: the block's width, norm, index in its stage, stage
    number and all of its stage's decisions (as :class:`~autodlgym.nn.blocks.BlockContext`
    gives its factory)."""

    width: int
    norm: str = "none"
    index: int = 0
    stage: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)
    activation: str = "relu"
    dropout: float = 0.0

    def get(self, key: str, default: Any) -> Any:
        return self.options.get(key, default)


@dataclass
class UnitCost:
    """A block's cost for one example: output shape, parameter tensors as ``(rows, numel)``
    (rows = size of dim 0, which :func:`configure_trainable` masks), FLOPs and activation
    elements."""

    out_shape: Shape
    tensors: list[tuple[int, int]] = field(default_factory=list)
    flops: int = 0
    activations: int = 0

    def linear(self, n_in: int, n_out: int, uses: int = 1, bias: bool = True) -> None:
        """A Linear(n_in, n_out) applied ``uses`` times (positions or steps) per example."""
        self.tensors.append((n_out, n_in * n_out))
        if bias:
            self.tensors.append((n_out, n_out))
        self.flops += 2 * n_in * n_out * uses
        self.activations += n_out * uses

    def conv(self, c_in: int, c_out: int, taps: int, positions: int) -> None:
        """A stride-1 conv (``taps`` = kernel elements) with ``positions`` output positions."""
        self.tensors.append((c_out, c_out * c_in * taps))
        self.tensors.append((c_out, c_out))
        self.flops += 2 * c_out * c_in * taps * positions
        self.activations += c_out * positions

    def norm(self, kind: str, shape: Shape) -> None:
        if kind == "none":
            return
        if kind not in ("batch", "layer", "instance"):
            raise SpecError(f"norm {kind!r} is unknown; use one of none, batch, layer, instance")
        c = shape[0]
        self.tensors += [(c, c), (c, c)]
        self.activations += math.prod(shape)

    def act(self, shape: Shape, times: int = 1) -> None:
        self.activations += math.prod(shape) * times


CostFormula = Callable[[Shape, UnitContext], UnitCost]

_UNIT_CACHE: OrderedDict[tuple, UnitCost] = OrderedDict()
_SPEC_CACHE: OrderedDict[tuple, Cost] = OrderedDict()

#: block name -> cost formula ``(adapted in_shape, UnitContext) -> UnitCost``
COST_FORMULAS: dict[str, CostFormula] = {}


def register_cost(name: str) -> Callable[[CostFormula], CostFormula]:
    """Decorator giving a registered block a cost formula (without one its cost is measured
    on the meta device, once per input shape and context)."""

    def deco(fn: CostFormula) -> CostFormula:
        COST_FORMULAS[name] = fn
        _UNIT_CACHE.clear()
        _SPEC_CACHE.clear()
        return fn

    return deco


# Built-in block formulas (they mirror blocks.py) ---------------------------------------------
def _positions(shape: Shape) -> int:
    return math.prod(shape[1:])


def _taps(shape: Shape, k: int) -> int:
    return int(k) ** (len(shape) - 1)


@register_cost("mlp")
def _mlp(s: Shape, ctx: UnitContext) -> UnitCost:
    u = UnitCost((ctx.width,))
    u.linear(s[0], ctx.width)
    u.norm(ctx.norm, u.out_shape)
    u.act(u.out_shape)
    return u


@register_cost("highway")
def _highway(s: Shape, ctx: UnitContext) -> UnitCost:
    w = ctx.width
    u = UnitCost((w,))
    if s[0] != w:
        u.linear(s[0], w)
    u.linear(w, w)  # transform
    u.linear(w, w)  # gate
    u.act((w,), 5)  # sigmoid, act, products and sum
    u.norm(ctx.norm, u.out_shape)
    return u


@register_cost("conv")
def _conv(s: Shape, ctx: UnitContext) -> UnitCost:
    u = UnitCost((ctx.width, *s[1:]))
    u.conv(s[0], ctx.width, _taps(s, ctx.get("kernel", 3)), _positions(s))
    u.norm(ctx.norm, u.out_shape)
    u.act(u.out_shape)
    return u


@register_cost("residual")
def _residual(s: Shape, ctx: UnitContext) -> UnitCost:
    w, taps, p = ctx.width, _taps(s, ctx.get("kernel", 3)), _positions(s)
    u = UnitCost((w, *s[1:]))
    u.conv(s[0], w, taps, p)
    u.norm(ctx.norm, u.out_shape)
    u.act(u.out_shape)
    u.conv(w, w, taps, p)
    u.norm(ctx.norm, u.out_shape)
    if s[0] != w:
        u.conv(s[0], w, 1, p)
    u.act(u.out_shape, 2)  # sum, activation
    return u


@register_cost("dense")
def _dense(s: Shape, ctx: UnitContext) -> UnitCost:
    g, taps, p = int(ctx.get("growth", 16)), _taps(s, ctx.get("kernel", 3)), _positions(s)
    if g < 1:
        raise SpecError(f"dense block growth must be positive, got {g}")
    u = UnitCost((ctx.width, *s[1:]))
    c = s[0]
    for _ in range(DENSE_LAYERS):
        u.act((c, *s[1:]))  # the concatenation this layer reads
        u.conv(c, g, taps, p)
        u.norm(ctx.norm, (g, *s[1:]))
        u.act((g, *s[1:]))
        c += g
    u.act((c, *s[1:]))
    u.conv(c, ctx.width, 1, p)
    u.norm(ctx.norm, u.out_shape)
    u.act(u.out_shape)
    return u


@register_cost("inception")
def _inception(s: Shape, ctx: UnitContext) -> UnitCost:
    w, p = ctx.width, _positions(s)
    u = UnitCost((w, *s[1:]))
    widths = [w // 4 + (1 if i < w % 4 else 0) for i in range(4)]
    for kind, bw in zip((1, 3, 5, "pool"), widths):
        if bw == 0:
            continue
        if kind == "pool":
            u.act(s)
            u.conv(s[0], bw, 1, p)
        elif kind == 1:
            u.conv(s[0], bw, 1, p)
        else:  # 1x1 reduction to half the branch width (rounded up), activation, wide conv
            r = max(1, -(-bw // 2))
            u.conv(s[0], r, 1, p)
            u.act((r, *s[1:]))
            u.conv(r, bw, _taps(s, kind), p)
    u.act(u.out_shape)  # concatenation
    u.norm(ctx.norm, u.out_shape)
    u.act(u.out_shape)
    return u


@register_cost("se")
def _se(s: Shape, ctx: UnitContext) -> UnitCost:
    w, p = ctx.width, _positions(s)
    u = UnitCost((w, *s[1:]))
    u.conv(s[0], w, _taps(s, ctx.get("kernel", 3)), p)
    u.norm(ctx.norm, u.out_shape)
    u.act(u.out_shape)
    reduction = int(ctx.get("reduction", SE_REDUCTION))
    if reduction < 1:
        raise SpecError(f"squeeze-excitation reduction must be positive, got {reduction}")
    r = max(1, w // reduction)
    u.linear(w, r)
    u.act((r,))  # ReLU
    u.linear(r, w)
    u.act((w,))  # sigmoid
    u.act(u.out_shape)  # channel scaling
    return u


@register_cost("attention")
def _attention(s: Shape, ctx: UnitContext) -> UnitCost:
    heads = int(ctx.get("heads", 1))
    if heads < 1:
        raise SpecError(f"attention heads must be positive, got {heads}")
    c, length = s
    d = -(-ctx.width // heads) * heads
    u = UnitCost((d, length))
    if c != d:
        u.conv(c, d, 1, length)
    if ctx.index == 0:
        u.act(u.out_shape)  # position encodings added
    u.norm(ctx.norm, u.out_shape)
    u.linear(d, 3 * d, uses=length)  # packed q, k, v projection
    u.flops += 4 * length * length * d  # Q K^T and the weighted sum of values
    u.activations += 2 * heads * length * length + 5 * d * length  # scores, softmax, head copies
    u.linear(d, d, uses=length)  # out projection
    u.act(u.out_shape)  # residual sum
    u.norm(ctx.norm, u.out_shape)
    u.conv(d, 2 * d, 1, length)
    u.act((2 * d, length))
    u.conv(2 * d, d, 1, length)
    u.act(u.out_shape)
    return u


_GATES = {"rnn": 1, "gru": 3, "lstm": 4}


@register_cost("recurrent")
def _recurrent(s: Shape, ctx: UnitContext) -> UnitCost:
    cell = ctx.get("cell", "gru")
    bi = bool(ctx.get("bidirectional", False))
    h = max(1, ctx.width // 2) if bi else ctx.width
    c, length = s
    dirs = 2 if bi else 1
    u = UnitCost((h * dirs, length))
    for _ in range(dirs):
        if cell == "minimal":
            u.linear(c, h, uses=length)  # phi
            u.linear(h, h, uses=length)  # input part of the gate
            u.linear(h, h, uses=length, bias=False)  # recurrent part, one step at a time
            u.act((h, length), 3)
        elif cell in _GATES:
            g = _GATES[cell]
            # weight_ih, weight_hh, bias_ih, bias_hh, as torch's RNN modules hold them
            u.tensors += [(g * h, g * h * c), (g * h, g * h * h), (g * h, g * h), (g * h, g * h)]
            u.flops += 2 * length * g * h * (c + h)
            u.activations += length * h * (4 * g + 2)  # both gate products, their sum, state
        else:
            raise SpecError(
                f"recurrent cell {cell!r} is unknown; use one of rnn, gru, lstm, minimal"
            )
    u.norm(ctx.norm, u.out_shape)
    return u


def _wavenet_dilation(index: int, kernel: int, length: int) -> int:
    """Mirror of :func:`~autodlgym.nn.blocks.wavenet_dilation`: doubling dilations
    that start again at 1 before the causal padding would reach the sequence length."""
    reach = max(1, int(kernel) - 1)
    cycle = 1
    while reach * 2**cycle < length:
        cycle += 1
    return 2 ** (int(index) % cycle)


@register_cost("wavenet")
def _wavenet(s: Shape, ctx: UnitContext) -> UnitCost:
    w, k = ctx.width, int(ctx.get("kernel", 3))
    c, length = s
    u = UnitCost((w, length))
    u.act((c, length + (k - 1) * _wavenet_dilation(ctx.index, k, length)))  # causal padding
    u.conv(c, 2 * w, k, length)
    u.act((w, length), 3)  # tanh, sigmoid, gated product
    u.norm(ctx.norm, u.out_shape)
    u.conv(w, w, 1, length)  # residual
    u.conv(w, w, 1, length)  # skip
    if c != w:
        u.conv(c, w, 1, length)
    u.act(u.out_shape)
    return u


# Graph blocks (mirror nn/graph.py; per node: message passing is gathers and scatter sums,
# which add no FLOPs by the counter's convention, as pooling adds none) ------------------------
def _graph_unit(s: Shape, ctx: UnitContext, w: int, lins: int, bias: bool = True) -> UnitCost:
    """``lins`` Linear(F, w) layers without bias read each node, one bias of ``w``."""
    u = UnitCost((w,))
    for _ in range(lins):
        u.linear(s[0], w, bias=False)
    u.activations -= w * (lins - 1)  # the layers' outputs are summed into one
    if bias:
        u.tensors.append((w, w))
    u.norm(ctx.norm, u.out_shape)
    u.act(u.out_shape)
    return u


@register_cost("gcn")
def _gcn(s: Shape, ctx: UnitContext) -> UnitCost:
    return _graph_unit(s, ctx, ctx.width, 1)


@register_cost("gat")
def _gat(s: Shape, ctx: UnitContext) -> UnitCost:
    heads = int(ctx.get("heads", 1))
    if heads < 1:
        raise SpecError(f"gat heads must be positive, got {heads}")
    d = -(-ctx.width // heads) * heads
    u = _graph_unit(s, ctx, d, 1)
    u.tensors += [(1, d), (1, d)]  # attention vectors of sources and targets, (1, heads, d/h)
    return u


@register_cost("gin")
def _gin(s: Shape, ctx: UnitContext) -> UnitCost:
    w = ctx.width
    u = UnitCost((w,))
    u.linear(s[0], w)
    u.act((w,))
    u.linear(w, w)
    u.norm(ctx.norm, u.out_shape)
    u.act(u.out_shape)
    return u


@register_cost("sage")
@register_cost("graphconv")
def _two_lins(s: Shape, ctx: UnitContext) -> UnitCost:
    return _graph_unit(s, ctx, ctx.width, 2)


@register_cost("cheb")
def _cheb(s: Shape, ctx: UnitContext) -> UnitCost:
    k = int(ctx.get("cheb_k", 2))
    if k < 1:
        raise SpecError(f"cheb_k (Chebyshev terms) must be positive, got {k}")
    return _graph_unit(s, ctx, ctx.width, k)


@register_cost("arma")
def _arma(s: Shape, ctx: UnitContext) -> UnitCost:
    w = ctx.width
    u = UnitCost((w,))
    # PyG keeps its tensors as (stacks, ...): the init and root weights and the bias each
    # have one row (the block drops the recurrent weight one layer does not use)
    u.tensors += [(1, s[0] * w), (1, s[0] * w), (1, w)]
    u.flops += 2 * 2 * s[0] * w
    u.activations += w
    u.norm(ctx.norm, u.out_shape)
    u.act(u.out_shape)
    return u


@register_cost("fc")
def _fc(s: Shape, ctx: UnitContext) -> UnitCost:
    return _mlp(s, ctx)


@register_cost("skip")
def _skip(s: Shape, ctx: UnitContext) -> UnitCost:
    return UnitCost(tuple(s))


# Shapes between blocks (mirror blocks.Adapter and build.py) ------------------------------------
def _pool_grid(shape: Shape, positions: int) -> Shape:
    if len(shape) == 2:
        return (max(1, min(shape[1], positions)),)
    h, w = shape[1], shape[2]
    gh = max(1, min(h, math.isqrt(positions)))
    gw = max(1, min(w, positions // gh))
    gh = max(1, min(h, positions // gw))
    return gh, gw


def _adapt(shape: Shape, reads: str) -> Shape:
    kind = len(shape)
    if reads in ("vector", "graph") and kind != 1:
        c, spatial = shape[0], shape[1:]
        if math.prod(shape) > VECTOR_CAP:
            spatial = _pool_grid(shape, max(1, VECTOR_CAP // c))
        return (c * math.prod(spatial),)
    if reads in ("spatial", "sequence") and kind == 1:
        return (shape[0], 1)
    if reads == "sequence" and kind == 3:
        return (shape[0], shape[1] * shape[2])
    return shape


def _projection(u: UnitCost, a: Shape, b: Shape) -> None:
    """Cost of build.make_projection(a, b), added to ``u``."""
    if a == b:
        return
    shape = a
    if len(b) == 2 and len(shape) != 2:
        shape = _adapt(shape, "sequence")
    if len(b) != 1 and len(shape) == len(b):
        if shape[1:] != b[1:]:
            shape = (shape[0], *b[1:])
            u.act(shape)
        if shape[0] != b[0]:
            u.conv(shape[0], b[0], 1, _positions(b))
    else:
        flat = _adapt(shape, "vector")[0]
        u.linear(flat, math.prod(b))
    u.act(b)  # the sum it joins


def _dense_feed(u: UnitCost, src: Shape, dst: Shape) -> int:
    """Mirror of build.dense_feed: the channels a state of ``src`` brings to a dense
    concatenation at the kind and positions of ``dst`` (no parameters, no FLOPs); the copies
    its pooling writes are added to ``u``'s activations."""
    if len(src) == len(dst) and src[1:] == dst[1:]:
        return src[0]
    if len(dst) == 1:
        flat = _adapt(src, "vector")
        if len(src) > 1 and flat[0] != math.prod(src):
            u.act(flat)  # pooled before flattening
        return flat[0]
    if len(src) == 1:
        return src[0]  # broadcast over the positions: a view
    u.act((src[0], *dst[1:]))  # adaptive average pooling to dst's positions
    return src[0]


def _downsample(u: UnitCost, kind: str, shape: Shape, graphs: bool = False) -> Shape:
    if kind not in ("none", "max", "avg", "lp", "lse", "strided", "topk"):
        raise SpecError(
            f"downsample {kind!r} is unknown; use one of none, max, avg, lp, lse, strided, topk"
        )
    if kind == "topk":
        if not graphs:
            return shape
        shape = _adapt(shape, "graph")
        u.tensors.append((1, shape[0]))  # the projection that scores nodes
        u.act((1,))
        u.act(shape)  # the kept, gated features
        return shape
    if kind == "none" or len(shape) == 1 or math.prod(shape[1:]) == 1:
        return shape
    window = tuple(2 if s > 1 else 1 for s in shape[1:])
    if kind == "strided":
        out = (shape[0], *((s - 1) // w + 1 for s, w in zip(shape[1:], window)))
        u.conv(shape[0], shape[0], 3 ** (len(shape) - 1), _positions(out))
        return out
    out = (shape[0], *(s // w for s, w in zip(shape[1:], window)))
    u.act(out)
    return out


# Units: formula, or a measurement on the meta device ---------------------------------------------
def _block_reads(name: str) -> str:
    if name not in BLOCKS:
        raise SpecError(
            f"block {name!r} is not registered; known blocks: {', '.join(BLOCKS.names())}"
        )
    return BLOCKS.meta(name).get("reads", "any")


def _unit(name: str, in_shape: Shape, ctx: UnitContext) -> UnitCost:
    formula = COST_FORMULAS.get(name)
    if formula is not None and _formula_is_current(name):
        return formula(in_shape, ctx)
    key = (name, in_shape, ctx.width, ctx.norm, ctx.index, ctx.stage, ctx.activation,
           ctx.dropout, tuple(sorted(ctx.options.items())))  # fmt: skip
    hit = _UNIT_CACHE.get(key)
    if hit is None:
        hit = _measure_unit(name, in_shape, ctx)
        _UNIT_CACHE[key] = hit
        if len(_UNIT_CACHE) > _CACHE_SIZE:
            _UNIT_CACHE.popitem(last=False)
    return hit


def _formula_is_current(name: str) -> bool:
    """A built-in formula describes the built-in block; a user block registered under the same
    name replaces it (then it is measured)."""
    return name not in builtins.BLOCKS or BLOCKS.is_declared(name)


def _measure_unit(name: str, in_shape: Shape, ctx: UnitContext) -> UnitCost:
    """Build one block on the meta device and count its parameters and FLOPs (the only use of
    torch here, for a block without a formula)."""
    from autodlgym.nn.build import measure_unit

    out_shape, tensors, flops, activations = measure_unit(
        name,
        in_shape,
        width=ctx.width,
        activation=ctx.activation,
        norm=ctx.norm,
        dropout=ctx.dropout,
        index=ctx.index,
        stage=ctx.stage,
        options=ctx.options,
    )
    return UnitCost(out_shape, list(tensors), flops, activations)


# The whole network -----------------------------------------------------------------------------
def _arch_key(spec: ArchSpec, io: IOSpec) -> tuple:
    return (spec, io)


def estimate_cost(spec: Mapping[str, Any], io: IOSpec) -> Cost:
    """The cost of the network ``build_model(spec, io)`` builds, computed without building it.

    Args:
        spec: an ArchSpec or mapping (missing decisions take the builder's defaults).
        io: the task's inputs and outputs.

    Returns:
        A :class:`Cost`; results are cached per (spec, io).

    Raises:
        SpecError: a value the builder would reject (unknown block, cell, norm...).
    """
    spec = spec if isinstance(spec, ArchSpec) else ArchSpec(spec)
    key = _arch_key(spec, io)
    hit = _SPEC_CACHE.get(key)
    if hit is not None:
        _SPEC_CACHE.move_to_end(key)
        return hit
    cost = _estimate(spec, io)
    _SPEC_CACHE[key] = cost
    if len(_SPEC_CACHE) > _CACHE_SIZE:
        _SPEC_CACHE.popitem(last=False)
    return cost


def _cell(body: UnitCost, spec: ArchSpec, io: IOSpec, ctx: dict[str, Any]) -> Shape:
    """Mirror of build.CellStage: NAS-Bench-Graph's cell; returns its output shape."""
    ops = {"gat": "gat", "gcn": "gcn", "gin": "gin", "cheb": "cheb", "sage": "sage",
           "arma": "arma", "graph": "graphconv", "fc": "fc", "skip": "skip"}  # fmt: skip
    width = int(spec.get("width", 64))
    body.linear(_adapt(tuple(io.shape), "graph")[0], width)
    links = str(spec["links"]).split("-")
    if len(links) != 4 or not all(v.isdigit() and int(v) <= i for i, v in enumerate(links)):
        raise SpecError(f"links={spec['links']!r} is not a NAS-Bench-Graph link pattern")
    used = {int(v) for v in links}
    for i in range(1, 5):
        op = spec.get(f"op{i}")
        if op not in ops:
            raise SpecError(f"op{i}={op!r} is unknown; use one of {', '.join(ops)}")
        unit = _unit(
            ops[op],
            (width,),
            UnitContext(width, index=i - 1, options={"heads": 2, "cheb_k": 2}, **ctx),
        )
        body.tensors += unit.tensors
        body.flops += unit.flops
        body.activations += unit.activations
    leaves = [i for i in range(1, 5) if i not in used]
    body.act((width,), len(leaves) - 1)  # the sums
    return (width,)


def _estimate(spec: ArchSpec, io: IOSpec) -> Cost:
    n_stages = int(spec.get("n_stages", 1))
    connections = str(spec.get("connections", "chain"))
    if connections not in ("chain", "skip2", "skip3", "dense"):
        raise SpecError(f"connections={connections!r} is unknown")
    norm = str(spec.get("norm", "none"))
    activation = str(spec.get("activation", "relu"))
    dropout = float(spec.get("dropout", 0.0))
    body = UnitCost(tuple(io.shape))
    shape: Shape = tuple(io.shape)
    graphs = io.modality == "graph"
    nodes = 1.0  # the share of the input's nodes a stage sees (top-k pooling keeps half)
    if "links" in spec:  # a NAS-Bench-Graph cell
        ctx = {"norm": norm, "activation": activation, "dropout": dropout}
        shape = _cell(body, spec, io, ctx)
        n_stages = 0
    for i in range(1, n_stages + 1):
        st = spec.stage(i)
        _check_pool_options(i, st)
        down = str(st.get("downsample", "none"))
        shape = _downsample(body, down, shape, graphs)
        if graphs and down == "topk":
            nodes *= TOPK_RATIO
        block = str(st.get("block", "conv"))
        reads = _block_reads(block)
        depth, width = int(st.get("depth", 1)), int(st.get("width", 64))
        shapes = [shape]
        emits_skip = False
        for j in range(depth):
            ctx = UnitContext(width, norm, j, i, st, activation, dropout)
            reads_shape = shape
            if connections == "dense" and j > 0:
                # block j reads the concatenation of the stage input and all earlier outputs
                channels = sum(_dense_feed(body, src, shape) for src in shapes)
                reads_shape = (channels, *shape[1:])
                body.act(reads_shape)  # the concatenation
            unit = _unit(block, _adapt(reads_shape, reads), ctx)
            body.tensors += unit.tensors
            body.flops += round(unit.flops * nodes)
            body.activations += unit.activations
            emits_skip = emits_skip or block == "wavenet"
            shape = unit.out_shape
            shapes.append(shape)
        k = {"skip2": 2, "skip3": 3}.get(connections, 0)
        if k:
            for start in range(0, depth, k):
                end = min(start + k - 1, depth - 1)
                _projection(body, shapes[start], shapes[end + 1])
        if emits_skip:
            body.act(shape, depth + 1)
    head = UnitCost((io.n_outputs,))
    if io.modality in ("node", "graph"):
        features = _adapt(shape, "graph")[0]
        readout = str(spec.get("readout", "mean"))
        if readout not in ("mean", "max", "sum", "attention"):
            raise SpecError(f"readout {readout!r} is unknown; use one of mean, max, sum, attention")
        if graphs and readout == "attention":
            head.linear(features, 1)  # the gate: one score per node
        head.linear(features, io.n_outputs)
    else:
        pool = str(spec.get("head_pool", "avg"))
        if pool not in ("avg", "max", "flatten", "last"):
            raise SpecError(f"head_pool {pool!r} is unknown; use one of avg, max, flatten, last")
        features = _adapt(shape, "vector")[0] if pool == "flatten" else shape[0]
        head.linear(features, io.n_outputs)
    head_params = sum(n for _, n in head.tensors)
    params = sum(n for _, n in body.tensors) + head_params
    return Cost(
        params=params,
        trainable_params=_trainable(str(spec.get("trainable", "all")), body, head_params, params),
        flops=body.flops + head.flops,
        activation_bytes=BYTES * (body.activations + head.activations),
    )


def _check_pool_options(stage: int, st: Mapping[str, Any]) -> None:
    """The builder's checks of ``lp_p`` and ``lse_r`` (made whatever the downsample is)."""
    for key, default, lo in (("lp_p", 2.0, 1.0), ("lse_r", 1.0, 1e-6)):
        value = st.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(f"stage{stage}.{key}={value!r} must be a number")
        if not lo <= float(value) <= math.inf:
            raise SpecError(f"stage{stage}.{key}={float(value)!r} must lie in [{lo}, inf]")


def _trainable(mode: str, body: UnitCost, head_params: int, params: int) -> int:
    if mode == "all":
        return params
    if mode == "head":
        return head_params
    frac = _fraction(mode)
    n = head_params
    for rows, numel in body.tensors:
        if rows == 0:  # a 0-d parameter is never masked
            n += numel
        else:
            n += max(1, round(frac * rows)) * (numel // rows)
    return n


def _fraction(mode: str) -> float:
    p = parse_trainable(mode)
    if isinstance(p, float):
        return p
    raise SpecError(f"trainable={mode!r} is unknown; use all, head or fraction_<p> with 0 < p <= 1")


def parse_trainable(mode: str) -> float | str | tuple[str, int]:
    """``"all"`` / ``"head"``, the fraction of ``"fraction_<p>"`` with 0 < p <= 1, or
    ``("block", k)`` for ``"block_<k>"`` (k >= 1)."""
    if mode in ("all", "head"):
        return mode
    if isinstance(mode, str) and mode.startswith("fraction_"):
        try:
            p = float(mode[len("fraction_") :])
        except ValueError:
            p = math.nan
        if 0.0 < p <= 1.0:
            return p
    if isinstance(mode, str) and mode.startswith("block_") and mode[len("block_") :].isdigit():
        k = int(mode[len("block_") :])
        if k >= 1:
            return ("block", k)
    raise SpecError(
        f"trainable={mode!r} is unknown; use all, head, fraction_<p> with 0 < p <= 1, "
        "or block_<k> with k >= 1"
    )
