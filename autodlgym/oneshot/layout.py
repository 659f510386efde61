"""Which shared tensor each weight of a candidate is cut from (the supernet's layout).

A sub-space's specs are split three ways:

* **The network** (:func:`network_key`): every decision but the training settings and the
  initialisation. Two specs with the same network key run the same forward on the same
  weights.
* **Training settings** (:data:`TRAINING`): optimizer, learning rate, momentum, weight
  decay, batch size, gradient clipping. They say how weights are trained, not which weights
  exist; an evaluator trains one set of shared weights per distinct combination (a
  *partition*), each with those settings, so a learning rate that trains badly on its own
  trains the shared weights badly too.
* **Initialisation** (:data:`INIT`): init law, zero-init of residual branches, chrono init.
  Inherited weights are not initialised, so these are ignored: specs that differ only here
  get the same score. The shared tensors start from torch's default law at their largest
  shapes (see :func:`init_slot_`).

``trainable`` other than ``all`` (random features, partly frozen layers) cannot be inherited:
such specs are reported outside the supernet.

Within a network, each parameter is cut from one shared tensor, a :class:`Slot`, named by
its group and its parameter name. The group of a stage's parameters is the stage, its block
kind and every stage decision that changes what a weight means (``cell``, ``bidirectional``,
``growth``, ``heads``, a user block's own decisions), plus the global ``norm`` and
``connections``; :data:`SLICED` decisions (width, kernel, depth) and :data:`WEIGHT_FREE`
ones (activation, dropout, dilation, downsampling, head pooling) share weights. The head
belongs to the group of the last stage. Cutting (:func:`cut`): every axis keeps its first
entries (width by slicing), convolution kernels keep their centre (Cai et al., Once-for-All,
2020), stacked gates (GRU / LSTM rows, a WaveNet block's filter and gate) are cut per gate,
and block ``j`` of a stage is used only when the depth exceeds ``j`` (depth by skipping).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from autodlgym.errors import SpecError
from autodlgym.nn.init import _GATE_GAINS_TAG
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec

#: training settings with the trainer's defaults: one partition per distinct combination
TRAINING: dict[str, Any] = {
    "optimizer": "adam",
    "lr": 1e-3,
    "momentum": 0.0,
    "weight_decay": 0.0,
    "batch_size": 128,
    "grad_clip": 0.0,
}
#: initialisation decisions: ignored (inherited weights are not initialised)
INIT = ("init", "zero_init_residual", "chrono_init")
#: stage decisions that slice a shared tensor
SLICED = ("width", "kernel", "depth")
#: decisions the forward reads that leave every weight's meaning unchanged
WEIGHT_FREE = (
    "activation",
    "dropout",
    "head_pool",
    "n_stages",
    "dilation",
    "downsample",
    "lp_p",
    "lse_r",
)
#: global decisions that change what a weight means: part of every group
GROUP_GLOBALS = ("norm", "connections")
_RNN_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def network_key(spec: Mapping[str, Any]) -> ArchSpec:
    """The spec without its training settings and initialisation: what decides the forward."""
    drop = set(TRAINING) | set(INIT) | {"trainable"}
    return ArchSpec(
        {k: v for k, v in spec.items() if k not in drop and k.rsplit(".", 1)[-1] not in INIT}
    )


def partition_key(spec: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The spec's training settings (defaults filled in), as sorted pairs."""
    return tuple((k, spec.get(k, TRAINING[k])) for k in sorted(TRAINING))


def outside_reason(space: SearchSpace, spec: Mapping[str, Any]) -> str | None:
    """Why ``spec`` cannot be scored with inherited weights, or None when it can."""
    try:
        space.validate(spec)
    except SpecError as exc:
        return f"outside the supernet's space: {exc}"
    if str(spec.get("trainable", "all")) != "all":
        return (
            f"trainable={spec['trainable']!r} freezes weights at their initialisation, which "
            "inherited weights do not have"
        )
    return None


def enumerate_space(
    space: SearchSpace, names: frozenset[str], limit: int, what: str
) -> list[ArchSpec]:
    """Every distinct combination of the decisions in ``names`` (the others at their first
    option), in a fixed order; raises SpecError past ``limit``."""
    out: dict[str, ArchSpec] = {}
    choices = list(space.choices)

    def walk(i: int, values: dict[str, Any]) -> None:
        if i == len(choices):
            spec = ArchSpec({k: v for k, v in values.items() if k in names})
            out.setdefault(spec.to_json(), spec)
            if len(out) > limit:
                raise SpecError(
                    f"the space has more than {limit} {what}; declare a smaller sub-space "
                    "(a space file with fewer options) for a one-shot evaluator"
                )
            return
        choice = choices[i]
        if not space.is_active(choice, values):
            walk(i + 1, values)
            return
        options = choice.options if choice.name in names else choice.options[:1]
        for option in options:
            walk(i + 1, {**values, choice.name: option})

    walk(0, {})
    return list(out.values())


def networks_of(space: SearchSpace, limit: int) -> list[ArchSpec]:
    """The distinct networks of a space (see :func:`network_key`)."""
    names = frozenset(c.name for c in space.choices if c.name in network_key({c.name: 0}))
    return enumerate_space(space, names, limit, "networks")


def partitions_of(space: SearchSpace, limit: int) -> list[tuple[tuple[str, Any], ...]]:
    """The distinct training settings of a space (see :func:`partition_key`)."""
    names = frozenset(c.name for c in space.choices if c.name in TRAINING)
    specs = enumerate_space(space, names, limit, "combinations of training settings")
    return [partition_key(s) for s in specs]


def group_of(spec: ArchSpec, name: str, split: tuple[str, ...] = ()) -> str:
    """The group of parameter ``name`` of the network built from ``spec``; ``split`` names
    stage decisions that key groups instead of sharing (few-shot NAS, Zhao et al. 2021:
    ``("depth",)`` gives each depth its own weights)."""
    parts = name.split(".")
    if parts[0] == "stages":
        stage = int(parts[1]) + 1
    else:  # the head reads the last stage
        stage = int(spec.get("n_stages", 1))
    keyed = {k: spec.get(k) for k in GROUP_GLOBALS if k in spec}
    if stage >= 1:
        st = spec.stage(stage)
        keyed.update(
            {
                k: v
                for k, v in sorted(st.items())
                if k in split or (k not in SLICED and k not in WEIGHT_FREE and k not in INIT)
            }
        )
    where = f"stage{stage}" if parts[0] == "stages" else f"head@stage{stage}"
    return where + "".join(f",{k}={v}" for k, v in sorted(keyed.items()))


@dataclass
class Slot:
    """One shared tensor: its largest shape and how a smaller one is cut from it.

    Attributes:
        shape: the largest shape any network of the space asks for.
        gates: dim 0 stacks this many gates (GRU 3, LSTM 4, a gated conv 2), cut one by one.
        spatial: the last ``spatial`` axes are a convolution's kernel, cut at their centre.
        law: ``"uniform"`` (U(+-1/sqrt(fan_in)), torch's default for linear, conv and
            recurrent layers), ``"ones"`` or ``"zeros"`` (a norm's scale and shift).
        fan_in: the fan-in of the uniform law.
    """

    shape: tuple[int, ...]
    gates: int = 1
    spatial: int = 0
    law: str = "uniform"
    fan_in: int = 1


def describe(
    model: nn.Module, spec: ArchSpec, split: tuple[str, ...] = ()
) -> Iterator[tuple[str, str, Slot]]:
    """``(slot key, parameter name, slot of this parameter's own shape)`` for every
    parameter of a network built from ``spec`` (``split``: see :func:`group_of`)."""
    for name, p in model.named_parameters():
        owner_name, _, leaf = name.rpartition(".")
        owner = model.get_submodule(owner_name) if owner_name else model
        shape = tuple(int(s) for s in p.shape)
        gates, spatial = 1, 0
        if isinstance(owner, nn.RNNBase):
            gates = _RNN_GATES[owner.mode]
            law, fan_in = "uniform", max(1, shape[0] // gates)  # U(+-1/sqrt(hidden))
        elif isinstance(owner, _NORMS) or type(owner).__name__.endswith("Norm"):
            law, fan_in = ("ones" if leaf == "weight" else "zeros"), 1
        else:
            law = "uniform"
            weight = getattr(owner, "weight", None)
            ref = tuple(weight.shape) if isinstance(weight, torch.Tensor) else shape
            fan_in = max(1, math.prod(ref[1:]) if len(ref) > 1 else ref[0])
            if isinstance(owner, nn.modules.conv._ConvNd) and p.dim() > 2:
                spatial = p.dim() - 2
            tagged = getattr(owner, _GATE_GAINS_TAG, None)
            if tagged and p.dim() >= 1:
                gates = len(tagged)
        if isinstance(owner, nn.MultiheadAttention) and leaf.startswith("in_proj"):
            gates = 3
        yield (
            f"{group_of(spec, name, split)}|{name}",
            name,
            Slot(shape, gates, spatial, law, fan_in),
        )


def merge(a: Slot, b: Slot, key: str) -> Slot:
    """The slot that holds both ``a`` and ``b`` (elementwise largest shape)."""
    if (a.gates, a.spatial, a.law, len(a.shape)) != (b.gates, b.spatial, b.law, len(b.shape)):
        raise SpecError(f"parameter {key} changes its kind across the space; it cannot be shared")
    return Slot(
        tuple(max(x, y) for x, y in zip(a.shape, b.shape)),
        a.gates,
        a.spatial,
        a.law,
        max(a.fan_in, b.fan_in),
    )


def cut(full: torch.Tensor, shape: tuple[int, ...], slot: Slot) -> torch.Tensor:
    """The part of a slot's tensor that a parameter of ``shape`` inherits (a differentiable
    view or copy: gradients flow back into ``full``)."""
    index = []
    for d, (n, big) in enumerate(zip(shape, full.shape)):
        start = (big - n) // 2 if d >= full.dim() - slot.spatial else 0
        index.append(slice(start, start + n))
    if slot.gates == 1:
        return full[tuple(index)]
    g = slot.gates
    rest = tuple(full.shape[1:])
    stacked = full.reshape(g, full.shape[0] // g, *rest)
    part = stacked[(slice(None), slice(0, shape[0] // g), *index[1:])]
    return part.reshape(shape)


def init_slot_(tensor: torch.Tensor, slot: Slot, generator: torch.Generator) -> None:
    """Torch's default initialisation of a layer, at the slot's largest shape."""
    with torch.no_grad():
        if slot.law == "ones":
            tensor.fill_(1.0)
        elif slot.law == "zeros":
            tensor.zero_()
        else:
            bound = 1.0 / math.sqrt(slot.fan_in)
            tensor.uniform_(-bound, bound, generator=generator)
