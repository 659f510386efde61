"""What the one-shot evaluators share: the layout, the training loop over sampled paths,
scoring with inherited weights, saving and loading.

An evaluator holds shared weights for a sub-space; :meth:`OneShotEvaluator.fit` trains them
on uniformly sampled networks (one network per batch: single-path, Guo et al. 2020), one set
per partition of training settings (see :mod:`autodlgym.oneshot.layout`);
:meth:`OneShotEvaluator.score` scores a spec without training it. Subclasses say how a
network's weights come from the shared ones (:meth:`OneShotEvaluator._slot_tensors`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from autodlgym.errors import AutoDLError
from autodlgym.nn.build import build_model
from autodlgym.oneshot import layout
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.tasks.base import Task, get_task
from autodlgym.training.trainer import ArrayFeed, device_data, make_optimizer, score_split

#: what a score's status says
INSIDE, OUTSIDE = "ok", "outside"
#: the most networks and combinations of training settings a space may have by default
MAX_NETWORKS = 4096
MAX_PARTITIONS = 8


@dataclass(frozen=True)
class OneShotScore:
    """A spec scored with inherited weights.

    Attributes:
        status: ``"ok"``, or ``"outside"`` for a spec the evaluator cannot score (not in its
            space, or frozen weights); it is reported, never mapped to a neighbour.
        val_score: validation accuracy (or R^2) with inherited weights; None when outside,
            nan when the outputs are not finite.
        message: why a spec is outside ("" when ok).
        seconds: what scoring took (0 for a network scored before).
    """

    status: str
    val_score: float | None
    message: str = ""
    seconds: float = 0.0


class OneShotEvaluator:
    """Shared weights for the networks of ``space``, trained once, scoring many specs.

    Args:
        space: the (sub-)space the shared weights cover; its networks are enumerated, so it
            must be small enough (``max_networks``).
        task: a task that trains (a Task or a registered name).
        epochs: epochs of supernet training per partition of training settings (each batch
            trains one sampled network).
        seed: seeds the shared weights' initialisation, the sampled paths and batch order.
        device: torch device string.
        recalibrate: training batches that re-estimate batch-norm statistics of a scored
            network (its running statistics are reset first); 0 keeps them reset.
        split: stage decisions that give each of their options its own weights instead of
            sharing them (few-shot NAS; e.g. ``("depth",)``); empty: width, kernel and depth
            share.
        finetune: training steps a scored network takes from its inherited weights, with its
            own optimizer settings, before it is scored (0: scored as inherited).
        max_networks: the most distinct networks the space may have.
        max_partitions: the most distinct combinations of training settings.

    Raises:
        SpecError: a space too large to enumerate, or a parameter that changes kind across it.
        AutoDLError: a lookup task (it has no data to train on).
    """

    kind = "oneshot"
    #: epochs of training per partition when none are given
    default_epochs = 30

    def __init__(
        self,
        space: SearchSpace,
        task: Task | str,
        *,
        epochs: int | None = None,
        seed: int = 0,
        device: str = "cpu",
        recalibrate: int = 4,
        finetune: int = 0,
        split: tuple[str, ...] = (),
        max_networks: int = MAX_NETWORKS,
        max_partitions: int = MAX_PARTITIONS,
    ) -> None:
        self.space = space
        self.task = get_task(task) if isinstance(task, str) else task
        if self.task.io is None:
            raise AutoDLError(
                f"task {self.task.name!r} is a lookup table: a one-shot evaluator needs a task "
                "with data to train shared weights on"
            )
        self.epochs = int(self.default_epochs if epochs is None else epochs)
        self.finetune = int(finetune)
        self.split = tuple(split)
        self.seed = int(seed)
        self.device = torch.device(device)
        self.recalibrate = int(recalibrate)
        self.networks = layout.networks_of(space, max_networks)
        self.partitions = layout.partitions_of(space, max_partitions)
        self.slots: dict[str, layout.Slot] = {}
        self._children: dict[str, nn.Module] = {}
        self._names: dict[str, list[tuple[str, str]]] = {}  # network -> (slot key, param name)
        for net in self.networks:
            self._child(net)
        self.slot_keys = sorted(self.slots)
        self._index = {k: i for i, k in enumerate(self.slot_keys)}
        self.banks: dict[tuple, nn.Module] = {}
        self.fit_seconds = 0.0
        self.skipped_steps: dict[tuple, int] = {}
        self._cache: dict[tuple[str, tuple, int], float] = {}

    # The layout ----------------------------------------------------------------------
    def _child(self, net: ArchSpec) -> nn.Module:
        """The stand-alone network of ``net`` (built once), whose forward runs on cut weights."""
        key = net.to_json()
        child = self._children.get(key)
        if child is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                child = build_model(net, self.task.io).to(self.device)
            names = []
            for slot_key, name, slot in layout.describe(child, net, self.split):
                old = self.slots.get(slot_key)
                self.slots[slot_key] = slot if old is None else layout.merge(old, slot, slot_key)
                names.append((slot_key, name))
            for p in child.parameters():
                p.requires_grad_(False)
            self._children[key] = child
            self._names[key] = names
        return child

    def _slot_tensors(self, part: tuple, net: ArchSpec, keys: list[str]) -> dict[str, torch.Tensor]:
        """The full tensors of the slots ``keys`` that ``net`` uses, in partition ``part``."""
        raise NotImplementedError

    def _new_bank(self, part: tuple, generator: torch.Generator) -> nn.Module:
        """The trainable module of one partition, initialised from ``generator``."""
        raise NotImplementedError

    def params_of(self, spec: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The inherited weights of ``spec``'s network, by parameter name (differentiable)."""
        spec = spec if isinstance(spec, ArchSpec) else ArchSpec(spec)
        net = layout.network_key(spec)
        part = layout.partition_key(spec)
        if part not in self.banks:
            self.banks[part] = self._new_bank(part, self._generator(part))
        self._child(net)
        return self._params_for(part, net)

    def inherit(self, spec: Mapping[str, Any]) -> nn.Module:
        """A stand-alone network of ``spec`` (``build_model``) holding its inherited weights
        (copies), in eval mode; its batch-norm statistics are fresh (:meth:`score`
        recalibrates them)."""
        spec = ArchSpec(dict(spec))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = build_model(spec, self.task.io).to(self.device)
        with torch.no_grad():
            model.load_state_dict(
                {k: v.detach().clone() for k, v in self.params_of(spec).items()}, strict=False
            )
        return model.eval()

    def forward(self, spec: Mapping[str, Any], x: torch.Tensor) -> torch.Tensor:
        """The network of ``spec`` on inputs ``x``, on the shared weights (differentiable)."""
        spec = spec if isinstance(spec, ArchSpec) else ArchSpec(spec)
        child = self._child(layout.network_key(spec))
        return functional_call(child, self.params_of(spec), (x,))

    def _generator(self, part: tuple) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)

    # Training ------------------------------------------------------------------------
    def fit(self, progress: Callable[[str], None] | None = None) -> OneShotEvaluator:
        """Train the shared weights: ``epochs`` epochs per partition, each batch on one
        network drawn uniformly. A step whose loss is not finite is skipped (counted in
        ``skipped_steps``). Returns self."""
        start = time.perf_counter()
        data = device_data(self.task, self.device)
        x_train, y_train = data["x_train"], data["y_train"]
        loss_fn = F.cross_entropy if self.task.is_classification else F.mse_loss
        n = len(y_train)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            for part in self.partitions:
                settings = ArchSpec(dict(part))
                bank = self._new_bank(part, self._generator(part))
                self.banks[part] = bank
                optimizer = make_optimizer(bank, settings)
                grad_clip = float(settings["grad_clip"])
                batch_size = max(1, min(int(settings["batch_size"]), n))
                rng = np.random.default_rng(self.seed)
                order = torch.Generator().manual_seed(self.seed)
                skipped = 0
                for _ in range(self.epochs):
                    perm = torch.randperm(n, generator=order).to(self.device)
                    for i in range(0, n, batch_size):
                        idx = perm[i : i + batch_size]
                        if len(idx) == 1 < batch_size:
                            continue  # a lone leftover example breaks batch norm
                        net = self.networks[int(rng.integers(len(self.networks)))]
                        child = self._children[net.to_json()]
                        child.train()
                        params = self._params_for(part, net)
                        loss = loss_fn(
                            functional_call(child, params, (x_train[idx],)), y_train[idx]
                        )
                        optimizer.zero_grad(set_to_none=True)
                        if not torch.isfinite(loss):
                            skipped += 1
                            continue
                        loss.backward()
                        if grad_clip > 0:
                            nn.utils.clip_grad_norm_(list(bank.parameters()), grad_clip)
                        optimizer.step()
                self.skipped_steps[part] = skipped
                if progress is not None:
                    progress(f"partition {dict(part)}: {self.epochs} epochs, {skipped} skipped")
        self._cache.clear()
        self.fit_seconds += time.perf_counter() - start
        return self

    def _params_for(self, part: tuple, net: ArchSpec) -> dict[str, torch.Tensor]:
        child = self._children[net.to_json()]
        names = self._names[net.to_json()]
        full = self._slot_tensors(part, net, [key for key, _ in names])
        shapes = dict(child.named_parameters())
        return {
            name: layout.cut(full[key], tuple(shapes[name].shape), self.slots[key])
            for key, name in names
        }

    # Scoring -------------------------------------------------------------------------
    def score(self, spec: Mapping[str, Any]) -> OneShotScore:
        """Score ``spec`` with inherited weights on the validation split, batch-norm
        statistics recalibrated first; a spec outside is reported (status ``outside``)."""
        reason = layout.outside_reason(self.space, spec)
        if reason is not None:
            return OneShotScore(OUTSIDE, None, reason)
        if not self.banks:
            raise AutoDLError("the one-shot evaluator is not trained yet; call fit() first")
        spec = ArchSpec(dict(spec))
        key = (layout.network_key(spec).to_json(), layout.partition_key(spec), self.finetune)
        if key in self._cache:
            return OneShotScore(INSIDE, self._cache[key])
        start = time.perf_counter()
        data = device_data(self.task, self.device)
        model = self.inherit(spec)
        if self.finetune > 0:
            self._finetune(model, spec, data["x_train"], data["y_train"])
        self._recalibrate(model, data["x_train"])
        value = score_split(model, ArrayFeed(data, None), "val", self.task)
        self._cache[key] = value
        return OneShotScore(INSIDE, value, seconds=time.perf_counter() - start)

    def score_many(self, specs: Iterable[Mapping[str, Any]]) -> list[OneShotScore]:
        """:meth:`score` for each spec, in order."""
        return [self.score(s) for s in specs]

    def _finetune(self, model: nn.Module, spec: ArchSpec, x: torch.Tensor, y: torch.Tensor) -> None:
        loss_fn = F.cross_entropy if self.task.is_classification else F.mse_loss
        optimizer = make_optimizer(model, spec)
        grad_clip = float(spec.get("grad_clip", 0.0))
        batch = max(1, min(int(spec.get("batch_size", 128)), len(y)))
        order = torch.Generator().manual_seed(self.seed)
        model.train()
        steps = 0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)  # dropout
            while steps < self.finetune:
                perm = torch.randperm(len(y), generator=order).to(self.device)
                for i in range(0, len(y), batch):
                    idx = perm[i : i + batch]
                    if steps >= self.finetune or len(idx) == 1 < batch:
                        break
                    loss = loss_fn(model(x[idx]), y[idx])
                    if not torch.isfinite(loss):
                        return
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if grad_clip > 0:
                        nn.utils.clip_grad_norm_(list(model.parameters()), grad_clip)
                    optimizer.step()
                    steps += 1
        model.eval()

    def _recalibrate(self, model: nn.Module, x_train: torch.Tensor) -> None:
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the recalibration batches
        batch = 128
        gen = torch.Generator().manual_seed(self.seed)
        perm = torch.randperm(len(x_train), generator=gen)[: batch * self.recalibrate]
        model.train()
        with torch.no_grad():
            for i in range(0, len(perm), batch):
                if len(perm[i : i + batch]) > 1:
                    model(x_train[perm[i : i + batch].to(self.device)])
        model.eval()

    # Saving --------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """What the shared weights depend on: a saved file is loaded only when it matches."""
        return {
            "kind": self.kind,
            "task": self.task.key,
            "space": self.space.to_config(),
            "epochs": self.epochs,
            "seed": self.seed,
            "split": list(self.split),
            "slots": {k: list(s.shape) for k, s in self.slots.items()},
        }

    def save(self, path: str | Path) -> Path:
        """Write the trained shared weights (and what they depend on) to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "identity": self.identity(),
            "fit_seconds": self.fit_seconds,
            "skipped_steps": [[list(p), n] for p, n in self.skipped_steps.items()],
            "banks": [[list(p), b.state_dict()] for p, b in self.banks.items()],
        }
        tmp = path.with_name(path.name + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)
        return path

    def load(self, path: str | Path) -> bool:
        """Load weights saved by :meth:`save` when they were made for the same space, task,
        epochs and seed; returns whether they were loaded (False: a missing or other file)."""
        path = Path(path)
        if not path.is_file():
            return False
        payload = torch.load(path, map_location=self.device, weights_only=False)
        if payload.get("identity") != self.identity():
            return False
        self.banks = {}
        for part, state in payload["banks"]:
            part = tuple(tuple(kv) for kv in part)
            bank = self._new_bank(part, self._generator(part))
            bank.load_state_dict(state)
            self.banks[part] = bank
        self.skipped_steps = {tuple(tuple(kv) for kv in p): n for p, n in payload["skipped_steps"]}
        self.fit_seconds = float(payload["fit_seconds"])
        self._cache.clear()
        return True


def slot_parameters(
    slots: Mapping[str, layout.Slot], keys: list[str], gen: torch.Generator
) -> nn.ParameterList:
    """One parameter per slot, in ``keys`` order, at its largest shape, initialised."""
    params = nn.ParameterList()
    for key in keys:
        t = torch.empty(slots[key].shape)
        layout.init_slot_(t, slots[key], gen)
        params.append(nn.Parameter(t))
    return params
