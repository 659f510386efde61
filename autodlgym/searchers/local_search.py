"""Local search: first-improvement hill climbing over one-decision neighbours, with random
restarts (the simple baseline White, Zela, Ru, Liu and Hutter, "How powerful are performance
predictors in neural architecture search?" and "Local search is state of the art for NAS
benchmarks" (2021) found as strong as the best NAS methods on tabular benchmarks).

The search keeps a *current* candidate. Its neighbours (:meth:`SearchSpace.neighbours`: every
spec that changes one active decision) are proposed in a random order; the first one that
scores better than the current candidate becomes the current candidate (first improvement) and
its neighbours are proposed next. When every neighbour of the current candidate has been
evaluated without improvement it is a local optimum: the search restarts from a fresh random
sample. The first current candidate is the best of ``n_init`` random samples.

Neighbours outside the space's budget (constraints) are skipped. No spec is proposed twice while the space still holds unproposed ones: neighbours and restart
samples that were already proposed (by this searcher or told from elsewhere) are skipped.

Scores: ``val_score`` of ok trials and of pruned ones (the score reached when stopped, a lower
bound); failures score ``-inf``, so a failed neighbour never becomes current.

Parallel workers: ``ask(n)`` hands out the next ``n`` unproposed neighbours of the current
candidate; tells may arrive in any order, and any told candidate better than the current one
becomes current, whichever ask it came from.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from autodlgym.errors import AutoDLError
from autodlgym.searchers.base import Searcher, register_searcher
from autodlgym.searchers.evolution import fitness
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import TrialResult
from autodlgym.utils import as_int

#: random draws tried for an unproposed restart sample before a repeat is accepted
_SAMPLE_TRIES = 200


@register_searcher("local-search")
class LocalSearchSearcher(Searcher):
    """First-improvement local search over one-decision neighbours, random restarts.

    Args:
        space: the search space.
        seed: seeds ``self.rng`` (restart samples, neighbour order, newly active decisions).
        run_dir: unused.
        n_init: random samples evaluated before the climb starts from the best of them
            (also after each restart).
    """

    description = "first-improvement local search over one-decision neighbours, random restarts"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        run_dir: str | Path | None = None,
        n_init: int | str = 5,
    ) -> None:
        super().__init__(space, seed=seed, run_dir=run_dir)
        self.n_init = as_int("n_init", n_init, minimum=1)
        #: the candidate whose neighbours are proposed, with its score; None while sampling
        self.current: tuple[ArchSpec, float] | None = None
        #: its neighbours not proposed yet, next last
        self.queue: list[ArchSpec] = []
        #: best told candidate of the running restart phase (before a climb starts)
        self.restart_best: tuple[ArchSpec, float] | None = None
        self.restart_asked = 0
        self.restart_told = 0
        self.proposed: set[str] = set()
        self.n_restarts = 0

    # ask ----------------------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[ArchSpec]:
        out = []
        for _ in range(n):
            spec = self._next_neighbour() if self.current is not None else None
            if spec is None:
                if self.current is not None:  # a local optimum: start again elsewhere
                    self._restart()
                spec = self._fresh_sample()
                self.restart_asked += 1
            self.proposed.add(spec.arch_id)
            out.append(spec)
        return out

    def _next_neighbour(self) -> ArchSpec | None:
        while self.queue:
            spec = self.queue.pop()
            if spec.arch_id not in self.proposed:
                return spec
        return None

    def _fresh_sample(self) -> ArchSpec:
        spec = self.space.sample(self.rng)
        for _ in range(_SAMPLE_TRIES):
            if spec.arch_id not in self.proposed:
                break
            spec = self.space.sample(self.rng)
        return spec

    def _restart(self) -> None:
        self.current = None
        self.queue = []
        self.restart_best = None
        self.restart_asked = self.restart_told = 0
        self.n_restarts += 1

    def _move_to(self, spec: ArchSpec, score: float) -> None:
        self.current = (spec, score)
        # neighbours outside the space's budget are never proposed (each one counts as
        # rejected, as a sample over the budget does)
        self.queue = [
            s
            for s in self.space.neighbours(spec, self.rng)
            if s.arch_id not in self.proposed and self.space.fits(s)
        ]
        order = self.rng.permutation(len(self.queue))
        self.queue = [self.queue[i] for i in order]

    # tell ---------------------------------------------------------------------------------
    def tell(self, spec: ArchSpec, result: TrialResult) -> None:
        """Move to ``spec`` if it beats the current candidate; count restart samples."""
        try:
            spec = self.space.validate(spec)
        except AutoDLError:  # another space's spec: nothing to climb from
            return
        self.proposed.add(spec.arch_id)
        score = fitness(result)
        if self.current is not None:
            if score > self.current[1]:
                self._move_to(spec, score)
            return
        self.restart_told += 1
        if math.isfinite(score) and (self.restart_best is None or score > self.restart_best[1]):
            self.restart_best = (spec, score)
        if self.restart_told >= self.n_init and self.restart_best is not None:
            self._move_to(*self.restart_best)

    # state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["proposed"] = sorted(self.proposed)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state["proposed"] = set(state["proposed"])
        super().load_state_dict(state)
