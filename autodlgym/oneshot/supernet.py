"""The supernet evaluator: single-path one-shot weight sharing (Guo et al., ECCV 2020).

One over-parameterised set of weights per partition of training settings: every slot of the
layout (:mod:`autodlgym.oneshot.layout`) is one parameter at its largest shape, and a network
runs on the parts cut from them; each training batch trains one uniformly drawn network, so
the gradients of all networks that use a weight add up in it over training (ENAS, Pham et
al. 2018). A spec is scored on its inherited weights, batch-norm statistics recalibrated.
"""

from __future__ import annotations

import torch
from torch import nn

from autodlgym.oneshot.base import OneShotEvaluator, slot_parameters
from autodlgym.searchspace.spec import ArchSpec


class SupernetEvaluator(OneShotEvaluator):
    """Shared weights cut by width, kernel and depth; see :class:`OneShotEvaluator` for the
    arguments."""

    kind = "supernet"

    def _new_bank(self, part: tuple, generator: torch.Generator) -> nn.Module:
        return slot_parameters(self.slots, self.slot_keys, generator).to(self.device)

    def _slot_tensors(self, part: tuple, net: ArchSpec, keys: list[str]) -> dict[str, torch.Tensor]:
        bank = self.banks[part]
        return {k: bank[self._index[k]] for k in keys}
