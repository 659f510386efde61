"""The hypernetwork evaluator: weights generated from the architecture's encoding (SMASH,
Brock et al., ICLR 2018).

A small network maps a spec's encoding (one-hot of each decision that shapes the network,
zeros for an inactive one) to ``rank`` coefficients ``h``; every slot's weights are
``W0 + sum_k h_k W_k`` (a low-rank linear generator per slot, the factorised form SMASH
uses to keep the hypernetwork small), and the candidate's layers are cut from them as in
the supernet (:mod:`autodlgym.oneshot.layout`). Trained over uniformly sampled networks,
one hypernetwork per partition of training settings; it scores specs without training
them. It is defined for every block whose weights the layout can cut, which is every
built-in block: the generator does not depend on a block's kind, only on its slots.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from autodlgym.oneshot import layout
from autodlgym.oneshot.base import OneShotEvaluator, slot_parameters
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.tasks.base import Task


class _HyperBank(nn.Module):
    def __init__(self, base: nn.ParameterList, n_in: int, rank: int, hidden: int) -> None:
        super().__init__()
        self.base = base
        self.basis = nn.ParameterList(
            nn.Parameter(torch.zeros(rank, *p.shape, device=p.device)) for p in base
        )
        self.encoder = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, rank))


class HypernetEvaluator(OneShotEvaluator):
    """Weights generated from the spec's encoding.

    Args:
        rank: how many weight directions each slot's generator mixes.
        hidden: the hidden width of the encoder of the spec.
        others: as :class:`~autodlgym.oneshot.base.OneShotEvaluator`.
    """

    kind = "hypernet"

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
        max_networks: int = 4096,
        max_partitions: int = 8,
        rank: int = 4,
        hidden: int = 32,
    ) -> None:
        self.rank = int(rank)
        self.hidden = int(hidden)
        super().__init__(
            space,
            task,
            epochs=epochs,
            seed=seed,
            device=device,
            recalibrate=recalibrate,
            finetune=finetune,
            split=split,
            max_networks=max_networks,
            max_partitions=max_partitions,
        )
        names = layout.network_key({c.name: 0 for c in self.space.choices})
        self._choices = [c for c in self.space.choices if c.name in names]
        self._offsets = {}
        n = 0
        for c in self._choices:
            self._offsets[c.name] = n
            n += len(c.options)
        self.n_encoding = n

    def encode(self, spec: Mapping[str, Any]) -> torch.Tensor:
        """The one-hot encoding of ``spec``'s network decisions."""
        vec = torch.zeros(self.n_encoding)
        for c in self._choices:
            if c.name in spec:
                vec[self._offsets[c.name] + c.index(spec[c.name])] = 1.0
        return vec.to(self.device)

    def _new_bank(self, part: tuple, generator: torch.Generator) -> nn.Module:
        base = slot_parameters(self.slots, self.slot_keys, generator).to(self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
            bank = _HyperBank(base, self.n_encoding, self.rank, self.hidden)
        return bank.to(self.device)

    def _slot_tensors(self, part: tuple, net: ArchSpec, keys: list[str]) -> dict[str, torch.Tensor]:
        bank = self.banks[part]
        h = bank.encoder(self.encode(net))
        out = {}
        for k in keys:
            i = self._index[k]
            out[k] = bank.base[i] + torch.tensordot(h, bank.basis[i], dims=1)
        return out

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "rank": self.rank, "hidden": self.hidden}
