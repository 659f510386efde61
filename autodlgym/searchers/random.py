"""Random search: every candidate drawn uniformly from the space."""

from __future__ import annotations

from autodlgym.searchers.base import Searcher, register_searcher
from autodlgym.searchspace.spec import ArchSpec


@register_searcher("random")
class RandomSearcher(Searcher):
    """Uniform random sampling of the search space (the baseline every searcher must beat)."""

    description = "uniform random sampling of the search space"

    def ask(self, n: int = 1) -> list[ArchSpec]:
        return [self.space.sample(self.rng) for _ in range(n)]
