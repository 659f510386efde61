"""gamma^L: a signal's norm changes by about gamma per layer, so by gamma^L through L layers.

Glorot & Bengio (2010) and He et al. (2015) choose the weight variance so that gamma = 1: the
Glorot law with tanh's gain, the He law for ReLU. Scaling those weights by s multiplies the
per-layer gain of a ReLU stack by s exactly (ReLU is positively homogeneous), so the
activation norm after L layers is s^L; a tanh stack follows s^L while its units stay in the
linear regime and saturates instead of exploding. The per-layer gains and gradient norms come
from :func:`~autodlgym.training.diagnostics.diagnose` on models built from ``gamma_l.yaml``;
the scaled laws are registered with :func:`~autodlgym.searchspace.registry.register_init`.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from autodlgym.experiments.base import Outcome, figure, load_space, make_spec

NAME = "gamma-l"
CLAIM = "a signal's norm changes by gamma per layer (gamma^L over L); Glorot/He keep gamma = 1"
SOURCE = "Glorot & Bengio 2010; He et al. 2015"

CORRECT = {"relu": "he_normal", "tanh": "glorot_normal"}
SCALES = (0.5, 1.0, 2.0)


def _scaled(law, scale: float, weight, gain: float) -> None:
    law(weight, gain * scale)


def register_scaled_laws() -> None:
    """Register ``<law>_x0.5`` and ``<law>_x2``: the correct laws with weights scaled by s."""
    from autodlgym.searchspace.registry import INIT_LAWS, register_init

    for law in CORRECT.values():
        for s in SCALES:
            name = f"{law}_x{s:g}"
            if s != 1.0 and name not in INIT_LAWS:
                register_init(name)(partial(_scaled, INIT_LAWS.get(law), s))


def _law(activation: str, scale: float) -> str:
    law = CORRECT[activation]
    return law if scale == 1.0 else f"{law}_x{scale:g}"


def run(quick: bool = False, seed: int = 0) -> Outcome:
    import pandas as pd
    import torch

    from autodlgym.nn.build import build_model
    from autodlgym.nn.init import apply_init
    from autodlgym.searchspace.io import IOSpec
    from autodlgym.training.diagnostics import diagnose

    register_scaled_laws()
    depth, width, inits = (12, 64, 2) if quick else (50, 256, 8)
    space = load_space("gamma_l")
    io = IOSpec("vector", (width,), 10)
    x = torch.randn(128, width, generator=torch.Generator().manual_seed(seed))
    rows, curves = [], {}
    for activation in CORRECT:
        for scale in SCALES:
            law = _law(activation, scale)
            spec = make_spec(
                space, n_stages=1, **{"stage1.block": "mlp", "stage1.depth": depth,
                "stage1.width": width}, activation=activation, init=law,
            )  # fmt: skip
            gains, grads = [], []
            for i in range(inits):
                torch.manual_seed(seed * 1000 + i)
                model = apply_init(build_model(spec, io), law, activation=activation)
                d = diagnose(model, x, seed=seed)
                gains.append(d.gains)
                grads.append(d.grad_norms)
            gain = np.exp(np.nanmean(np.log(np.asarray(gains)), axis=0))  # E[out^2]/E[in^2]
            norm = np.sqrt(np.cumprod(gain))  # activation norm after each layer / input norm
            grad = np.exp(np.nanmean(np.log(np.maximum(np.asarray(grads), 1e-300)), axis=0))
            curves[(activation, scale)] = (norm, grad)
            gamma = float(np.exp(np.mean(np.log(np.sqrt(gain[1:])))))
            # ReLU: exactly s. tanh: s * 5/3 (Glorot's tanh gain) while the signal is small
            # enough to stay linear (s < 1); the fixed point 1 at s = 1; saturation beyond.
            if activation == "relu":
                predicted = scale
            else:
                predicted = {0.5: scale * 5 / 3, 1.0: 1.0}.get(scale, float("nan"))
            rows.append(
                {
                    "activation": activation,
                    "init": law,
                    "scale": scale,
                    "depth": depth,
                    "measured": round(gamma, 3),
                    "published": predicted,
                    "norm_at_L": float(norm[-1]),
                    "predicted_norm_at_L": predicted**depth if predicted == predicted else None,
                    "grad_first_over_last": float(grad[0] / grad[-2]) if grad[-2] > 0 else None,
                }
            )
    table = pd.DataFrame(rows)
    fig, axes = figure(ncols=2, nrows=2, width=4.8, height=3.2)
    layers = np.arange(1, depth + 1)
    for col, activation in enumerate(CORRECT):
        for scale in SCALES:
            norm, grad = curves[(activation, scale)]
            (line,) = axes[col].semilogy(layers, norm, label=f"{scale:g} x {CORRECT[activation]}")
            if activation == "relu":
                axes[col].semilogy(layers, scale**layers, ls=":", color=line.get_color())
            axes[2 + col].semilogy(layers, grad, color=line.get_color())
        axes[col].set_title(
            f"{activation}: activation norm" + (" (dotted: s^l)" if activation == "relu" else "")
        )
        axes[2 + col].set_title(f"{activation}: gradient norm per layer")
        axes[2 + col].set_xlabel("layer")
        axes[col].legend(fontsize=7)
    fig.tight_layout()
    relu1 = table[(table.activation == "relu") & (table.scale == 1.0)].measured.item()
    relu2 = table[(table.activation == "relu") & (table.scale == 2.0)].measured.item()
    lines = [
        f"ReLU + He: gamma = {relu1:.3f} per layer (theory 1); at 2x scale gamma = {relu2:.3f} "
        f"(theory 2), so the norm after {depth} layers is {relu2**depth:.3g}x the input's.",
        "tanh + Glorot keeps gamma near 1; at 2x its units saturate: the norm stays bounded "
        "where the ReLU stack explodes.",
    ]
    if not math.isfinite(relu1):
        lines.append("warning: non-finite gains")
    return Outcome(table, fig, lines)
