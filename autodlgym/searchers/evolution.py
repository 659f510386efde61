"""Regularised (ageing) evolution, after Real et al., "Regularized Evolution for Image
Classifier Architecture Search" (AAAI 2019).

The population is a FIFO queue of the last ``population`` evaluated candidates. The first
``population`` asks are uniform random samples; every later ask runs a tournament: draw
``sample_size`` members without replacement, mutate the best one with
:meth:`~autodlgym.SearchSpace.mutate`. Every ``tell`` appends the evaluated candidate and the
oldest member dies, whatever its score (ageing), which keeps the search from clinging to a
lucky early candidate.

Parallel workers: asks and tells are decoupled. An ask only reads the members told so far, so a
batch of asks is a batch of independent tournaments and tells may arrive in any order. While no
member has been told yet (a first batch larger than ``population``), asks stay random.
"""

from __future__ import annotations

import math
from collections import deque
from pathlib import Path
from typing import Any

from autodlgym.errors import AutoDLError
from autodlgym.searchers.base import Searcher, register_searcher
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import OK, PRUNED, TrialResult
from autodlgym.utils import as_bool

#: mutations tried before a child that was already proposed is accepted anyway
_NOVELTY_TRIES = 10


def fitness(result: TrialResult) -> float:
    """The score a member competes with: ``val_score`` of ok and pruned trials (a pruned trial
    keeps the score it reached when it was stopped), ``-inf`` for failures and missing scores,
    so a failed candidate occupies a population slot until it ages out but never wins a
    tournament against a candidate that trained."""
    if result.status in (OK, PRUNED) and result.val_score is not None:
        v = float(result.val_score)
        if math.isfinite(v):
            return v
    return -math.inf


def sizes_for_budget(budget: int | None) -> tuple[int, int]:
    """``(population, sample_size)`` for a search of ``budget`` evaluations: a fifth of the
    budget in [5, 20], tournaments of half the population (20 and 5 without a budget, the
    sizes of Real et al.'s small-scale experiments).

    Measured on the ten tables of ``autodlgym bench`` (MNIST-1D and nine NAS-Bench-Graph data
    sets), 1,000 seeds per table, share of runs that find a top-1 % architecture: at 100
    evaluations, 20 and 10 beat the earlier tenth of the budget (10 and 5) on nine tables in each
    of two seed sets (mean over tables .958 / .957 against .948 / .948, cora .918 / .895 against
    .886 / .883); at 50 evaluations 10 and 5 beat 5 and 2 on all ten (mean .751 against .591).
    Populations of 5 to 30 with tournaments of 2 to 20, and a population that keeps its best
    members instead of ageing, were measured on cora and physics and none did better.
    """
    if budget is None:
        return 20, 5
    population = int(min(20, max(5, int(budget) // 5)))
    return population, max(2, population // 2)


@register_searcher("evolution")
class EvolutionSearcher(Searcher):
    """Regularised evolution: tournament selection, one mutation per child, oldest member dies.

    Args:
        space: the search space.
        seed: seeds ``self.rng`` (sampling, tournaments and mutations all draw from it).
        run_dir: unused.
        population: size of the population (the FIFO queue); also the number of random asks
            that seed it. Default from ``budget`` (:func:`sizes_for_budget`).
        sample_size: tournament size, ``1 <= sample_size <= population``. Default from
            ``budget``.
        budget: the evaluations the search will get, if known (the runner passes ``--trials``).
        avoid_duplicates: re-mutate (up to 10 times) a child that was already proposed, so
            that a small space's budget is not spent on repeats.
    """

    description = "regularised evolution: tournament selection, mutation, ageing (Real et al. 2019)"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        run_dir: str | Path | None = None,
        population: int | None = None,
        sample_size: int | None = None,
        avoid_duplicates: bool = True,
        budget: int | None = None,
    ) -> None:
        super().__init__(space, seed=seed, run_dir=run_dir)
        auto_population, auto_sample = sizes_for_budget(budget)
        population = auto_population if population is None else int(population)
        if sample_size is None:
            sample_size = min(auto_sample, population) if population >= 1 else auto_sample
        sample_size = int(sample_size)
        if population < 1:
            raise AutoDLError(f"evolution population must be at least 1, got {population}")
        if not 1 <= sample_size <= population:
            raise AutoDLError(
                f"evolution sample_size must lie in [1, population={population}], got {sample_size}"
            )
        self.population_size = population
        self.sample_size = sample_size
        self.avoid_duplicates = as_bool("avoid_duplicates", avoid_duplicates)
        #: (spec, fitness), oldest first
        self.population: deque[tuple[ArchSpec, float]] = deque(maxlen=population)
        self.n_asked = 0
        self.n_told = 0
        self.proposed: set[str] = set()

    def ask(self, n: int = 1) -> list[ArchSpec]:
        out = []
        for _ in range(n):
            if self.n_asked < self.population_size or not self.population:
                spec = self.space.sample(self.rng)
            else:
                spec = self._child()
            self.n_asked += 1
            self.proposed.add(spec.arch_id)
            out.append(spec)
        return out

    def _child(self) -> ArchSpec:
        members = list(self.population)
        k = min(self.sample_size, len(members))
        picks = self.rng.choice(len(members), size=k, replace=False)
        # ties go to the youngest contestant: it is the one that lives longest
        parent = max(picks, key=lambda i: (members[i][1], i))
        parent_spec = members[parent][0]
        child = self.space.mutate(parent_spec, self.rng)
        if self.avoid_duplicates:
            for _ in range(_NOVELTY_TRIES):
                if child.arch_id not in self.proposed:
                    break
                child = self.space.mutate(parent_spec, self.rng)
        return child

    def tell(self, spec: ArchSpec, result: TrialResult) -> None:
        """Add the evaluated candidate to the population; the oldest member dies when full."""
        self.population.append((ArchSpec(spec), fitness(result)))
        self.n_told += 1

    def discard(self, spec: ArchSpec) -> None:
        """A proposed candidate that will not be evaluated: it does not count towards the
        random asks that seed the population, and may be proposed again."""
        if self.n_asked > 0:
            self.n_asked -= 1
        self.proposed.discard(ArchSpec(spec).arch_id)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["population"] = [(s.to_json(), f) for s, f in self.population]
        state["proposed"] = sorted(self.proposed)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        members = state.pop("population")
        proposed = state.pop("proposed")
        super().load_state_dict(state)
        self.population = deque(
            ((ArchSpec.from_json(s), float(f)) for s, f in members), maxlen=self.population_size
        )
        self.proposed = set(proposed)
