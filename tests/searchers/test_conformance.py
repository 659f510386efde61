"""Every registered searcher passes the conformance suite that plugin authors run too."""

from __future__ import annotations

import pytest

from autodlgym.searchers.base import SEARCHERS
from autodlgym.searchspace.space import SearchSpace
from autodlgym.testing.searchers import NARROWED_CONFIG, SearcherConformance


class TestRegisteredSearchers(SearcherConformance):
    @pytest.fixture(params=["default", "narrowed"])
    def space(self, request: pytest.FixtureRequest, searcher_name: str) -> SearchSpace:
        if searcher_name == "zero-cost" and request.param == "default":
            # it builds every candidate; the default space's largest take seconds each on CPU
            pytest.skip("zero-cost runs the suite on the narrowed space only")
        if request.param == "default":
            return SearchSpace.default()
        return SearchSpace.from_config(NARROWED_CONFIG)

    @pytest.fixture
    def searcher_factory(self, searcher_name: str, searcher_options: dict):
        cls = SEARCHERS.get(searcher_name)
        return lambda space, seed, run_dir: cls(
            space, seed=seed, run_dir=run_dir, **searcher_options
        )
