"""Diagnostics of a network at initialisation, from one batch.

:func:`diagnose` runs one forward pass with hooks on the model's ``blocks`` and on every
nonlinearity, and a few backward passes with ``torch.autograd.grad`` (so no ``.grad`` is ever
written). Its scalars have one name everywhere: :data:`SCALARS` below, the ``diag_<name>``
columns of :func:`~autodlgym.results.store.load_results`, and the ``score`` option of the
zero-cost pre-screen. Per layer (block) it records the activation gain and the gradient norm:
``load_results(run, diagnostics="layers")`` gives them as a tidy frame.

* activation gain of each block ``E[out^2] / E[in^2]`` (a residual-free He-initialised ReLU
  stack keeps it near 1; a badly scaled one multiplies or divides it at every block);
* the output/input variance ratio of the whole network;
* per-block gradient norms of the loss, their total (L2 over all parameters), and the
  grad-norm zero-cost score (sum over parameter tensors of their gradient norms; Abdelfattah
  et al., 2021);
* Hanin's sum of 1 / width over the hidden layers the signal passes through (Hanin & Rolnick,
  2018: the variance of the squared activations across initialisations grows with it). Widths
  come from ``model.hidden_widths`` (an AutoDLNet lists every internal layer of every block:
  a dense block's growth layers, an attention block's feed-forward layer, Inception's
  reductions...); a plain module counts its Linear/Conv layers but the last (the output layer
  is not hidden). A recurrence counts once, not once per time step;
* the input-output Jacobian Frobenius norm per example, estimated with random Gaussian
  projections ``||J||_F^2 = E_v ||J^T v||^2`` (Hutchinson);
* NASWOT (Mellor et al., 2021): ``log |K_H|`` with ``K_H[i, j]`` the number of units on which
  the binary codes of examples ``i`` and ``j`` agree. A unit's code is whether its
  pre-activation is positive, taken at the input of every nonlinearity module of the model
  (for ReLU exactly "the unit is active", Mellor et al.'s definition; for tanh, sigmoid, GELU...
  the side of the origin), so the score counts the same kind of code in every block. Torch's
  fused RNN/GRU/LSTM hide their gates: their code is the sign of the hidden state, which is
  the code of the last tanh's pre-activation for rnn and lstm (``h = o * tanh(c)``, ``o > 0``)
  and approximates it for gru. Attention's softmax has no binary code and adds none.

Mode: measured in training mode (batch statistics, as the first training steps see the
network) with dropout switched off so the numbers are deterministic. The model's parameters,
buffers (BatchNorm running statistics), ``.grad`` fields and per-module train/eval flags are
left as they were. Random projections and missing targets come from a local generator seeded
by ``seed``.

:func:`init_scorer` scores many specs this way on a task's training data: the runner hands it
to searchers (the zero-cost pre-screen ranks by it) in their
:class:`~autodlgym.searchers.base.SearchContext`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from autodlgym.errors import AutoDLError
from autodlgym.tasks.base import LOSSES
from autodlgym.utils import finite_or_none

if TYPE_CHECKING:  # pragma: no cover
    from autodlgym.tasks import Task

#: Every scalar diagnostic: its name (a ``diag_<name>`` column, a pre-screen score) and meaning.
SCALARS: dict[str, str] = {
    "gain_mean": "mean over blocks of the activation gain E[out^2] / E[in^2]",
    "gain_geomean": "geometric mean of the positive block gains",
    "gain_min": "smallest block gain",
    "gain_max": "largest block gain",
    "out_in_var": "variance of the network's output over that of its input",
    "grad_norm_total": "L2 norm of the loss gradient over all trainable parameters",
    "grad_norm_min": "smallest per-block gradient norm",
    "grad_norm_max": "largest per-block gradient norm",
    "grad_norm_ratio": "largest over smallest per-block gradient norm (vanishing gradients)",
    "gradnorm": "grad-norm zero-cost score: sum of the parameter tensors' gradient norms",
    "hanin": "Hanin's sum of 1 / width over every hidden layer",
    "jacobian": "input-output Jacobian Frobenius norm per example (Hutchinson estimate)",
    "naswot": "NASWOT log|K_H| over the pre-activation codes of every nonlinearity",
    "naswot_units": "units whose codes NASWOT counts (per example)",
    "loss": "the loss at initialisation",
    "n_params": "parameters",
    "n_trainable": "trainable parameters",
    "n_blocks": "blocks (layers of the per-layer frame)",
    "n_hidden": "hidden layers in Hanin's sum",
}


@dataclass
class Diagnostics:
    """Measurements at initialisation (see the module docstring and :data:`SCALARS`).

    Per-block lists follow ``model.blocks``; scalars are floats (``nan`` where undefined, e.g.
    a gain of a block whose input is all zeros, ``-inf`` NASWOT for a singular kernel, which
    happens when two examples share a code); :meth:`to_dict` / :meth:`to_columns` write those
    as None.
    """

    block_names: list[str] = field(default_factory=list)
    gains: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    hidden_widths: list[int] = field(default_factory=list)
    out_in_var: float = math.nan
    grad_norm_total: float = math.nan
    gradnorm: float = math.nan
    hanin: float = math.nan
    jacobian: float = math.nan
    naswot: float = math.nan
    naswot_units: int = 0
    loss: float = math.nan
    n_params: int = 0
    n_trainable: int = 0

    def scalars(self) -> dict[str, float | int | None]:
        """Every scalar of :data:`SCALARS`, by name; non-finite values are None."""
        gains = [g for g in self.gains if math.isfinite(g)]
        positive = [g for g in gains if g > 0]
        grads = [g for g in self.grad_norms if math.isfinite(g)]
        values: dict[str, Any] = {
            "gain_mean": sum(gains) / len(gains) if gains else None,
            "gain_geomean": math.exp(sum(map(math.log, positive)) / len(positive))
            if positive
            else None,
            "gain_min": min(gains) if gains else None,
            "gain_max": max(gains) if gains else None,
            "out_in_var": self.out_in_var,
            "grad_norm_total": self.grad_norm_total,
            "grad_norm_min": min(grads) if grads else None,
            "grad_norm_max": max(grads) if grads else None,
            "grad_norm_ratio": max(grads) / min(grads) if grads and min(grads) > 0 else None,
            "gradnorm": self.gradnorm,
            "hanin": self.hanin,
            "jacobian": self.jacobian,
            "naswot": self.naswot,
            "naswot_units": self.naswot_units,
            "loss": self.loss,
            "n_params": self.n_params,
            "n_trainable": self.n_trainable,
            "n_blocks": len(self.block_names),
            "n_hidden": len(self.hidden_widths),
        }
        assert values.keys() == SCALARS.keys()
        return {k: _finite(v) for k, v in values.items()}

    def layers(self) -> dict[str, list[Any]]:
        """Per-layer values, one list per column of the tidy frame: ``block`` (the block's
        name), ``gain`` and ``grad_norm``, in forward order."""
        return {
            "block": list(self.block_names),
            "gain": _finite(list(self.gains)),
            "grad_norm": _finite(list(self.grad_norms)),
        }

    def to_dict(self) -> dict[str, Any]:
        """What the results store keeps: the scalars by name, ``layers`` (see :meth:`layers`)
        and ``hidden_widths``; JSON-ready (non-finite floats become None)."""
        return {**self.scalars(), "layers": self.layers(), "hidden_widths": self.hidden_widths}

    def to_columns(self) -> dict[str, float | int | None]:
        """The scalars as ``diag_<name>`` columns, as :func:`load_results` names them."""
        return {f"diag_{k}": v for k, v in self.scalars().items()}


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


#: Modules whose input is a pre-activation: NASWOT's codes are taken there.
NONLINEARITIES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU,
    nn.SiLU, nn.Mish, nn.Softplus, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardsigmoid,
    nn.Hardswish, nn.LogSigmoid, nn.Softsign, nn.Tanhshrink,
)  # fmt: skip


def _hidden_widths(model: nn.Module, layers: list[nn.Module]) -> list[int]:
    widths = getattr(model, "hidden_widths", None)
    if widths is not None:
        return [int(w) for w in widths]
    # a plain module: its weight layers but the last, whose output is the network's
    return [int(getattr(m, "out_features", getattr(m, "out_channels", 0))) for m in layers[:-1]]


class _Naswot:
    """Accumulates NASWOT's kernel ``K = C C^T + (1 - C)(1 - C)^T`` hook by hook, so the codes
    of all units (millions in a wide conv net) are never held at once."""

    def __init__(self, nodes: int | None = None, select: Any = None) -> None:
        self.kernel: torch.Tensor | None = None
        self.units = 0
        # a node-level graph task: codes of the measured nodes only (rows of ``nodes``)
        self.nodes, self.select = nodes, select

    def add(self, pre_activation: torch.Tensor) -> None:
        if self.select is not None and pre_activation.shape[0] == self.nodes:
            pre_activation = pre_activation[self.select]
        if pre_activation.dim() < 2 or (
            self.kernel is not None and pre_activation.shape[0] != self.kernel.shape[0]
        ):
            # one row per example: a graph task's rows are nodes, and top-k pooling's scores
            # or a stage after it have other rows (codes of the input's nodes only)
            return
        c = (pre_activation.detach() > 0).flatten(1).double()
        k = c @ c.T + (1.0 - c) @ (1.0 - c).T
        self.kernel = k if self.kernel is None else self.kernel + k
        self.units += c.shape[1]

    def score(self) -> float:
        if self.kernel is None:
            return math.nan
        sign, logdet = torch.linalg.slogdet(self.kernel.cpu())
        return float(logdet) if float(sign) > 0 else -math.inf


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
    graph: tuple[Any, Any, Any] | None = None,
) -> Diagnostics:
    """Measure a model at initialisation on one batch (about 64 examples is plenty).

    Args:
        model: an :class:`~autodlgym.nn.build.AutoDLNet` (or any module; without
            ``blocks`` its Linear/Conv layers are measured).
        batch: inputs ``(B, *shape)``; moved to the model's device.
        targets: class labels (cross_entropy) or regression targets (mse); None draws random
            labels (cross_entropy) or uses zeros (mse).
        loss: ``"cross_entropy"`` or ``"mse"``.
        n_projections: random projections for the Jacobian estimate.
        seed: seeds the projections and random labels.
        graph: for a graph task's model, ``(edge_index, batch, select)``: the edges, the graph
            of each node (None: one graph) and the output rows measured (None: all), so the
            model is called ``model(batch, edge_index, batch)[select]`` with ``batch`` the
            node features.

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
    diag.hidden_widths = _hidden_widths(model, layers)
    diag.hanin = float(sum(1.0 / w for w in diag.hidden_widths if w > 0))

    modes = [(m, m.training) for m in model.modules()]
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    stats: list[tuple[float, float]] = [(math.nan, math.nan)] * len(layers)
    select = graph[2] if graph is not None else None
    naswot = _Naswot(batch.shape[0], select) if select is not None else _Naswot()

    def hook(i: int, module: nn.Module, args: tuple, output: Any) -> None:
        inp, out = _first(args), _first(output)
        stats[i] = (_mean_square(inp), _mean_square(out))

    handles = [
        m.register_forward_hook(lambda m, a, o, i=i: hook(i, m, a, o)) for i, m in enumerate(layers)
    ]
    for m in model.modules():
        if isinstance(m, NONLINEARITIES):
            handles.append(m.register_forward_hook(lambda m, a, o: naswot.add(_first(a))))
        elif isinstance(m, nn.RNNBase):
            handles.append(m.register_forward_hook(lambda m, a, o: naswot.add(_first(o))))
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
            if graph is None:
                out = model(x)
            else:
                edge_index, node_batch, select = graph
                out = model(x, edge_index.to(ref.device), node_batch)
                out = out if select is None else out[select]
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
    diag.gradnorm = float(sum(norms.values()))
    diag.grad_norms = [
        math.sqrt(sum(norms.get(id(p), 0.0) ** 2 for p in m.parameters())) for m in layers
    ]
    diag.gains = [o / i if i > 0 else math.nan for i, o in stats]
    diag.naswot = naswot.score()
    diag.naswot_units = naswot.units
    return diag


def init_scorer(task: str | Task) -> _InitScorer:
    """A function scoring specs at initialisation on ``task``'s training data (the
    ``score_at_init`` of a :class:`~autodlgym.searchers.base.SearchContext`).

    ``scorer(specs, name, seed=0, batch=128)`` is the scalar ``name`` of :data:`SCALARS` for
    each spec, in order: each model is built untrained under ``torch.manual_seed(seed)`` inside
    ``torch.random.fork_rng`` (the caller's random state is left as it was) and measured by
    :func:`diagnose` on ``batch`` training examples drawn once from ``seed``; nan where a spec
    cannot be built or measured, or the value is missing or not finite. ``scorer.names`` are
    the names it knows. The task's data is loaded on the first call.

    Args:
        task: a :class:`~autodlgym.tasks.Task` or a task key (``Task.key``, a task name).

    Raises:
        AutoDLError: an unknown task.
    """
    from autodlgym.tasks import Task

    return _InitScorer(task if isinstance(task, Task) else Task.from_key(str(task)))


class _InitScorer:
    """See :func:`init_scorer`."""

    names: tuple[str, ...] = tuple(SCALARS)

    def __init__(self, task: Task) -> None:
        self.task = task
        self._batches: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor, Any]] = {}

    def __call__(
        self, specs: Sequence[Mapping[str, Any]], name: str, *, seed: int = 0, batch: int = 128
    ) -> list[float]:
        if name not in SCALARS:
            raise AutoDLError(
                f"{name!r} is not a diagnostic; choose one of {', '.join(sorted(SCALARS))}"
            )
        from autodlgym.nn.build import build_model

        x, y, graph = self._batch(int(seed), int(batch))
        out = []
        for spec in specs:
            try:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    model = build_model(spec, self.task.io)
                    scalars = diagnose(
                        model, x, y, self.task.loss, seed=seed, graph=graph
                    ).scalars()
            except Exception:  # noqa: BLE001 - a spec that cannot be measured scores nan
                out.append(math.nan)
                continue
            value = scalars.get(name)
            finite = value is not None and math.isfinite(float(value))
            out.append(float(value) if finite else math.nan)
        return out

    def _batch(self, seed: int, batch: int) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """``batch`` training examples drawn once from ``seed`` (and a graph task's
        ``graph`` argument of :func:`diagnose`)."""
        key = (seed, batch)
        if key not in self._batches and self.task.io is not None and self.task.io.is_graph:
            from autodlgym.training.graphs import GraphFeed

            sample = GraphFeed(self.task, torch.device("cpu"), None).sample(batch)
            self._batches[key] = (sample.inputs[0], sample.y, sample.graph())
        if key not in self._batches:
            import numpy as np

            data = self.task.load()
            n = len(data.y_train)
            idx = np.sort(np.random.default_rng(seed).permutation(n)[: min(batch, n)])
            x, y = torch.tensor(data.x_train[idx]), torch.tensor(data.y_train[idx])
            self._batches[key] = (x, y, None)
        return self._batches[key]
