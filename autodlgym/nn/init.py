"""Initialisation laws, zero-init of residual branches and chrono init of gated cells.

A law is a function ``law(weight, gain) -> None`` that fills one weight tensor in place (under
``torch.no_grad``) with the ``torch.nn.init`` functions. Register one with
:func:`~autodlgym.searchspace.registry.register_init`::

    @register_init("my_law")
    def my_law(weight: torch.Tensor, gain: float) -> None:
        torch.nn.init.normal_(weight, 0.0, gain / weight[0].numel() ** 0.5)

:func:`apply_init` walks a model and calls the law on every weight of two or more dimensions
(``Linear``, ``Conv*``, ``MultiheadAttention`` in-projections, recurrent weights), sets every
bias to zero, and leaves normalisation layers at weight 1, bias 0. The law ``torch_default``
keeps torch's own initialisation (biases included); zero-init and chrono init still apply.

Gains. ``gain`` is the activation's gain: ``torch.nn.init.calculate_gain`` for relu,
leaky_relu (slope 0.01), tanh, sigmoid and linear; for gelu, silu and elu, which torch does not
cover, the value that keeps the second moment of a unit-variance Gaussian pre-activation:
``gain = 1 / sqrt(E[phi(z)^2])`` with ``z ~ N(0, 1)`` (the same rule gives relu its sqrt(2)):
gelu 1.5335, silu 1.6765, elu 1.2452. A layer overrides the activation's gain with tags set by
:func:`mark`: ``gain`` (one activation name for the whole layer, e.g. ``"linear"`` for
projections and the output head) or ``gate_gains`` (one name per equal chunk of the output
units, e.g. a gated conv's ``("tanh", "sigmoid")``). Recurrent weights are initialised per gate
in the same way: each gate's block of rows gets the law with its own fan-out and the gain of the
gate's nonlinearity (sigmoid gates 1, tanh candidates 5/3).

Bias: a layer marked ``bias=b`` gets every bias entry set to ``b`` after the law, whatever the
law (``torch_default`` included): a highway layer's transform gate starts at ``b = -2`` so the
block begins close to its carry path (Srivastava et al., 2015). Zero-init residual wins over it.

Zero-init residual: a module marked ``zero_init=True`` (the last layer of a residual branch:
its normalisation layer, or its last conv/linear layer when there is no normalisation) gets
weight and bias 0 when ``zero_init_residual`` is set, so the block starts as its shortcut.

Chrono init (Tallec & Ollivier, 2018): gate biases of gated cells are set from
``b = log U[1, T_max - 1]`` (one draw per unit): LSTM forget bias ``b`` and input bias ``-b``;
GRU update gate (torch's ``z``, which weighs the previous state: ``h' = (1 - z) n + z h``) ``b``;
other modules take part by defining ``chrono_gates()`` -> list of groups, each a list of
``(bias_tensor, sign)`` pairs that share one draw. The hidden-to-hidden biases of those gates are
set to 0 so the draw alone sets the gate. For ``T_max <= 2`` the range is empty and ``b = 0``.

Randomness comes from torch's global generator; callers seed it inside
``torch.random.fork_rng``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from autodlgym.errors import SpecError

# register_init re-exported: a user's module may import the decorator from here
from autodlgym.searchspace.registry import INIT_LAWS, register_init  # noqa: F401

InitLaw = Callable[[torch.Tensor, float], None]

#: Gains for activations torch's calculate_gain does not know: 1 / sqrt(E[phi(z)^2]), z ~ N(0,1).
SECOND_MOMENT_GAINS = {"gelu": 1.5335304, "silu": 1.6765325, "elu": 1.2451983}
_TORCH_GAINS = {"relu", "tanh", "sigmoid", "linear", "identity", "leaky_relu", "selu"}

_GAIN_TAG = "_autodl_gain"
_GATE_GAINS_TAG = "_autodl_gate_gains"
_ZERO_TAG = "_autodl_zero_init"
_BIAS_TAG = "_autodl_bias"

_RNN_GATES = {
    "LSTM": ("sigmoid", "sigmoid", "tanh", "sigmoid"),  # i, f, g, o
    "GRU": ("sigmoid", "sigmoid", "tanh"),  # r, z, n
}


def activation_gain(activation: str) -> float:
    """The gain of an activation (see the module docstring for the values)."""
    if activation in SECOND_MOMENT_GAINS:
        return SECOND_MOMENT_GAINS[activation]
    if activation == "identity":
        return 1.0
    if activation == "leaky_relu":
        return nn.init.calculate_gain("leaky_relu", 0.01)
    if activation in _TORCH_GAINS:
        return nn.init.calculate_gain(activation)
    raise SpecError(
        f"activation {activation!r} has no known gain; use one of "
        f"{', '.join(sorted(_TORCH_GAINS | set(SECOND_MOMENT_GAINS)))}"
    )


def mark(
    module: nn.Module,
    *,
    gain: str | None = None,
    gate_gains: tuple[str, ...] | None = None,
    zero_init: bool = False,
    bias: float | None = None,
) -> nn.Module:
    """Tag a layer for :func:`apply_init` (see the module docstring); returns the module."""
    if bias is not None:
        setattr(module, _BIAS_TAG, float(bias))
    if gain is not None:
        setattr(module, _GAIN_TAG, gain)
    if gate_gains is not None:
        setattr(module, _GATE_GAINS_TAG, tuple(gate_gains))
    if zero_init:
        setattr(module, _ZERO_TAG, True)
    return module


def _fan_in(w: torch.Tensor) -> int:
    return int(w[0].numel()) if w.dim() > 1 else int(w.numel())


# Built-in laws ---------------------------------------------------------------------------
# Registered by name, with their metadata, in autodlgym/searchspace/builtins.py (so that a space
# lists them without torch); the registry imports them from here when one is first applied.
def glorot_uniform(weight: torch.Tensor, gain: float) -> None:
    """U[-a, a], a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    nn.init.xavier_uniform_(weight, gain=gain)


def glorot_normal(weight: torch.Tensor, gain: float) -> None:
    """N(0, gain^2 * 2 / (fan_in + fan_out))."""
    nn.init.xavier_normal_(weight, gain=gain)


def he_uniform(weight: torch.Tensor, gain: float) -> None:
    """U[-a, a], a = gain * sqrt(3 / fan_in) (He et al., 2015), for any activation's gain."""
    nn.init.kaiming_uniform_(weight, nonlinearity="linear")
    weight.mul_(gain)


def he_normal(weight: torch.Tensor, gain: float) -> None:
    """N(0, gain^2 / fan_in)."""
    nn.init.kaiming_normal_(weight, nonlinearity="linear")
    weight.mul_(gain)


def lecun_normal(weight: torch.Tensor, gain: float) -> None:
    """Truncated normal (at 2 std) with variance 1 / fan_in (LeCun et al., 1998).

    The law fixes its own scale, so the activation's gain is ignored: it is the one law whose
    variance does not depend on the activation.
    """
    del gain
    # a normal truncated at +-2 std has std 0.87962566 of the untruncated one
    std = 1.0 / math.sqrt(_fan_in(weight)) / 0.87962566103423978
    nn.init.trunc_normal_(weight, 0.0, std, -2.0 * std, 2.0 * std)


def orthogonal(weight: torch.Tensor, gain: float) -> None:
    """A (semi-)orthogonal matrix times gain (Saxe et al., 2014); conv kernels flattened."""
    nn.init.orthogonal_(weight, gain=gain)


def torch_default(weight: torch.Tensor, gain: float) -> None:
    """Keep torch's own initialisation (weights and biases)."""


# Application -----------------------------------------------------------------------------
def _init_chunks(law: InitLaw, weight: torch.Tensor, gains: tuple[float, ...]) -> None:
    n = len(gains)
    if weight.shape[0] % n:
        raise SpecError(
            f"a weight of shape {tuple(weight.shape)} cannot be split into {n} gates; "
            "fix the layer's gate_gains tag"
        )
    for chunk, g in zip(weight.chunk(n, dim=0), gains):
        law(chunk, g)


def _rnn_gains(m: nn.RNNBase) -> tuple[str, ...]:
    if m.mode in ("LSTM", "GRU"):
        return _RNN_GATES[m.mode]
    return ("relu",) if m.mode == "RNN_RELU" else ("tanh",)


def apply_init(
    model: nn.Module,
    law: str,
    activation: str = "relu",
    zero_init_residual: bool = False,
    chrono_tmax: int | None = None,
) -> nn.Module:
    """Initialise ``model`` in place with an init law; returns the model.

    Args:
        model: any module; layers may carry tags from :func:`mark`.
        law: a name in ``INIT_LAWS`` (``glorot_uniform``, ``glorot_normal``, ``he_uniform``,
            ``he_normal``, ``lecun_normal``, ``orthogonal``, ``torch_default`` or a registered
            one).
        activation: the activation whose gain scales weights of untagged layers.
        zero_init_residual: zero the layers marked ``zero_init`` (residual branches' last layers).
        chrono_tmax: if given, chrono-init every gated recurrent cell of the model with this
            T_max (use :func:`chrono_init_` to treat parts of a model differently).

    Raises:
        AutoDLError: unknown law or activation.
    """
    fn: InitLaw = INIT_LAWS.get(law)
    keep = bool(INIT_LAWS.meta(law).get("keeps_torch_init", False))
    default_gain = activation_gain(activation)
    cache: dict[str, float] = {activation: default_gain}

    def gain_of(name: str) -> float:
        if name not in cache:
            cache[name] = activation_gain(name)
        return cache[name]

    with torch.no_grad():
        if not keep:
            for m in model.modules():
                if isinstance(m, nn.RNNBase):
                    gains = tuple(gain_of(g) for g in _rnn_gains(m))
                    for name, p in m.named_parameters(recurse=False):
                        if name.startswith("weight"):
                            _init_chunks(fn, p, gains)
                        elif name.startswith("bias"):
                            p.zero_()
                    continue
                if isinstance(m, nn.MultiheadAttention):
                    # q, k, v projections are linear maps: gain 1 each, own fan-out
                    if m.in_proj_weight is not None:
                        _init_chunks(fn, m.in_proj_weight, (1.0, 1.0, 1.0))
                    for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                        w = getattr(m, name, None)
                        if w is not None:
                            fn(w, 1.0)
                    for name in ("in_proj_bias", "bias_k", "bias_v"):
                        b = getattr(m, name, None)
                        if b is not None:
                            b.zero_()
                    continue
                w = getattr(m, "weight", None)
                if isinstance(w, nn.Parameter) and w.dim() >= 2:
                    gate_gains = getattr(m, _GATE_GAINS_TAG, None)
                    if gate_gains is not None:
                        _init_chunks(fn, w, tuple(gain_of(g) for g in gate_gains))
                    else:
                        fn(w, gain_of(getattr(m, _GAIN_TAG, activation)))
                    b = getattr(m, "bias", None)
                    if isinstance(b, nn.Parameter):
                        b.zero_()
        for m in model.modules():
            value = getattr(m, _BIAS_TAG, None)
            b = getattr(m, "bias", None)
            if value is not None and isinstance(b, torch.Tensor):
                b.fill_(value)
        if zero_init_residual:
            for m in model.modules():
                if getattr(m, _ZERO_TAG, False):
                    for name in ("weight", "bias"):
                        p = getattr(m, name, None)
                        if isinstance(p, torch.Tensor):
                            p.zero_()
    if chrono_tmax is not None:
        chrono_init_(model, chrono_tmax)
    return model


def chrono_biases(n: int, tmax: int) -> torch.Tensor:
    """``n`` draws of ``log U[1, T_max - 1]`` from torch's global generator."""
    hi = max(float(tmax) - 1.0, 1.0)
    return torch.empty(n).uniform_(1.0, hi).log_()


def chrono_init_(module: nn.Module, tmax: int) -> int:
    """Chrono-init every gated cell inside ``module``; returns how many cells were set."""
    count = 0
    with torch.no_grad():
        for m in module.modules():
            groups: list[list[tuple[torch.Tensor, float]]] = []
            if isinstance(m, nn.RNNBase) and m.mode in ("LSTM", "GRU"):
                h = m.hidden_size
                for name, p in m.named_parameters(recurse=False):
                    if name.startswith("bias_hh"):
                        p.zero_()  # the ih bias alone sets each gate
                    elif name.startswith("bias_ih"):
                        if m.mode == "LSTM":
                            groups.append([(p[h : 2 * h], 1.0), (p[0:h], -1.0)])
                        else:
                            groups.append([(p[h : 2 * h], 1.0)])
            elif hasattr(m, "chrono_gates"):
                groups = m.chrono_gates()
            for group in groups:
                if not group:
                    continue
                draw = chrono_biases(group[0][0].numel(), tmax)
                for bias, sign in group:
                    bias.copy_(sign * draw.view_as(bias).to(bias))
            count += bool(groups)
    return count
