"""Diagnostics of a network at initialisation, from one batch.

:func:`diagnose` runs one forward pass with hooks on the model's ``blocks`` and a few backward
passes with ``torch.autograd.grad`` (so no ``.grad`` is ever written), and measures:

* per-block activation gain ``E[out^2] / E[in^2]`` (a residual-free He-initialised ReLU stack
  keeps it near 1; a badly scaled one multiplies or divides it at every block);
* the output/input variance ratio of the whole network;
* per-block gradient norms of the loss, their total (L2 over all parameters), and the
  grad-norm zero-cost score (sum over parameter tensors of their gradient norms; Abdelfattah
  et al., 2021);
* Hanin's sum of 1 / width over hidden layers (Hanin & Rolnick, 2018: the variance of the
  squared activations across initialisations grows with it);
* the input-output Jacobian Frobenius norm per example, estimated with random Gaussian
  projections ``||J||_F^2 = E_v ||J^T v||^2`` (Hutchinson);
* NASWOT (Mellor et al., 2021): ``log |K_H|`` with ``K_H[i, j]`` the number of units on which
  the binary codes of examples ``i`` and ``j`` agree. A unit's code is whether a block output is
  positive (for ReLU blocks exactly "the unit is active"; for other activations its sign).

Mode: measured in training mode (batch statistics, as the first training steps see the
network) with dropout switched off so the numbers are deterministic. The model's parameters,
buffers (BatchNorm running statistics), ``.grad`` fields and per-module train/eval flags are
left as they were. Random projections and missing targets come from a local generator seeded
by ``seed``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autodlgym.errors import AutoDLError
from autodlgym.tasks.base import LOSSES
from autodlgym.utils import finite_or_none


@dataclass
class Diagnostics:
    """Measurements at initialisation (see the module docstring).

    Per-block lists follow ``model.blocks``; scalars are floats (``nan`` where undefined, e.g.
    a gain of a block whose input is all zeros, ``-inf`` NASWOT for a singular kernel, which
    happens when two examples share a code); ``to_dict``/``to_columns`` write those as None.
    """

    block_names: list[str] = field(default_factory=list)
    gains: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    out_in_var: float = math.nan
    grad_norm_total: float = math.nan
    gradnorm_score: float = math.nan
    hanin: float = math.nan
    jacobian: float = math.nan
    naswot: float = math.nan
    loss: float = math.nan
    n_params: int = 0
    n_trainable: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Everything, per-block lists included; JSON-ready (non-finite floats become None)."""
        return {k: _finite(v) for k, v in asdict(self).items()}

    def to_columns(self) -> dict[str, float | int | None]:
        """A flat dict of scalars named ``diag_*`` for result tables; non-finite values are None.

        Columns: gain_mean, gain_geomean, gain_min, gain_max (over blocks), out_in_var,
        grad_norm_total, grad_norm_min, grad_norm_max, grad_norm_ratio (max / min over blocks,
        a vanishing-gradient indicator), gradnorm (the zero-cost score), hanin, jacobian,
        naswot, loss, n_params, n_trainable, n_blocks.
        """
        gains = [g for g in self.gains if math.isfinite(g)]
        positive = [g for g in gains if g > 0]
        grads = [g for g in self.grad_norms if math.isfinite(g)]
        cols: dict[str, Any] = {
            "diag_gain_mean": sum(gains) / len(gains) if gains else None,
            "diag_gain_geomean": math.exp(sum(map(math.log, positive)) / len(positive))
            if positive
            else None,
            "diag_gain_min": min(gains) if gains else None,
            "diag_gain_max": max(gains) if gains else None,
            "diag_out_in_var": self.out_in_var,
            "diag_grad_norm_total": self.grad_norm_total,
            "diag_grad_norm_min": min(grads) if grads else None,
            "diag_grad_norm_max": max(grads) if grads else None,
            "diag_grad_norm_ratio": max(grads) / min(grads) if grads and min(grads) > 0 else None,
            "diag_gradnorm": self.gradnorm_score,
            "diag_hanin": self.hanin,
            "diag_jacobian": self.jacobian,
            "diag_naswot": self.naswot,
            "diag_loss": self.loss,
            "diag_n_params": self.n_params,
            "diag_n_trainable": self.n_trainable,
            "diag_n_blocks": len(self.block_names),
        }
        return {k: _finite(v) for k, v in cols.items()}


def _finite(v: Any) -> Any:
    if isinstance(v, list):
        return [_finite(x) for x in v]
    return finite_or_none(v) if isinstance(v, float) else v


def _layers(model: nn.Module) -> list[nn.Module]:
    blocks = getattr(model, "blocks", None)
    if blocks is not None:
        return list(blocks)
    # any model: its weight layers
    return [
        m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d)
    ]


def _mean_square(t: torch.Tensor) -> float:
    return float(t.detach().double().pow(2).mean())


def _first(t: Any) -> torch.Tensor:
    return t[0] if isinstance(t, tuple | list) else t


def diagnose(
    model: nn.Module,
    batch: torch.Tensor,
    targets: torch.Tensor | None = None,
    loss: str = "cross_entropy",
    n_projections: int = 1,
    seed: int = 0,
) -> Diagnostics:
    """Measure a model at initialisation on one batch (about 64 examples is plenty).

    Args:
        model: an :class:`~autodlgym.searchspace.build.AutoDLNet` (or any module; without
            ``blocks`` its Linear/Conv layers are measured).
        batch: inputs ``(B, *shape)``; moved to the model's device.
        targets: class labels (cross_entropy) or regression targets (mse); None draws random
            labels (cross_entropy) or uses zeros (mse).
        loss: ``"cross_entropy"`` or ``"mse"``.
        n_projections: random projections for the Jacobian estimate.
        seed: seeds the projections and random labels.

    Returns:
        A :class:`Diagnostics`. The model is left unchanged (see the module docstring).
    """
    if loss not in LOSSES:
        raise AutoDLError(
            f"loss {loss!r} is unknown to diagnostics; use one of {', '.join(LOSSES)}"
        )
    params = list(model.parameters())
    ref = params[0] if params else torch.empty(0)
    gen = torch.Generator().manual_seed(int(seed))
    layers = _layers(model)
    names = [getattr(m, "name", type(m).__name__) for m in layers]
    diag = Diagnostics(block_names=names)
    diag.n_params = sum(p.numel() for p in params)
    trainable = [p for p in params if p.requires_grad]
    diag.n_trainable = sum(p.numel() for p in trainable)
    widths = getattr(model, "hidden_widths", None)
    if widths is None:
        widths = [int(getattr(m, "out_features", getattr(m, "out_channels", 0))) for m in layers]
    diag.hanin = float(sum(1.0 / w for w in widths if w > 0))

    modes = [(m, m.training) for m in model.modules()]
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    stats: list[tuple[float, float]] = [(math.nan, math.nan)] * len(layers)
    codes: list[torch.Tensor] = []

    def hook(i: int, module: nn.Module, args: tuple, output: Any) -> None:
        inp, out = _first(args), _first(output)
        stats[i] = (_mean_square(inp), _mean_square(out))
        codes.append((out.detach() > 0).flatten(1))

    handles = [
        m.register_forward_hook(lambda m, a, o, i=i: hook(i, m, a, o)) for i, m in enumerate(layers)
    ]
    try:
        model.train()
        for m in model.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.eval()
        x = batch.detach().to(
            device=ref.device, dtype=ref.dtype if ref.is_floating_point() else torch.float32
        )
        x.requires_grad_(True)
        with torch.enable_grad():
            out = model(x)
            if targets is None:
                if loss == "cross_entropy":
                    y = torch.randint(out.shape[-1], (out.shape[0],), generator=gen).to(out.device)
                else:
                    y = torch.zeros_like(out)
            else:
                y = targets.to(out.device)
            if loss == "cross_entropy":
                loss_value = F.cross_entropy(out, y.long())
            else:
                loss_value = F.mse_loss(out, y.to(out.dtype).reshape(out.shape))
            grads = torch.autograd.grad(
                loss_value, trainable + [x], allow_unused=True, retain_graph=True
            )
            jac_sq = 0.0
            for _ in range(max(1, n_projections)):
                v = torch.randn(out.shape, generator=gen).to(out)
                (gx,) = torch.autograd.grad(out, x, v, retain_graph=True)
                jac_sq += float(gx.double().pow(2).sum()) / out.shape[0]
    finally:
        for h in handles:
            h.remove()
        for m, was in modes:
            m.training = was
        with torch.no_grad():
            for b, value in saved:
                b.copy_(value)

    diag.loss = float(loss_value.detach())
    diag.jacobian = math.sqrt(jac_sq / max(1, n_projections))
    xin = float(x.detach().double().var()) if x.numel() > 1 else math.nan
    diag.out_in_var = float(out.detach().double().var()) / xin if xin > 0 else math.nan
    grad_of = {id(p): g for p, g in zip(trainable, grads[:-1]) if g is not None}
    norms = {k: float(g.double().norm()) for k, g in grad_of.items()}
    diag.grad_norm_total = math.sqrt(sum(n * n for n in norms.values()))
    diag.gradnorm_score = float(sum(norms.values()))
    diag.grad_norms = [
        math.sqrt(sum(norms.get(id(p), 0.0) ** 2 for p in m.parameters())) for m in layers
    ]
    diag.gains = [o / i if i > 0 else math.nan for i, o in stats]
    diag.naswot = _naswot(codes)
    return diag


def _naswot(codes: list[torch.Tensor]) -> float:
    if not codes:
        return math.nan
    c = torch.cat(codes, dim=1).double()
    k = c @ c.T + (1.0 - c) @ (1.0 - c).T
    sign, logdet = torch.linalg.slogdet(k)
    return float(logdet) if float(sign) > 0 else -math.inf
