"""Shared fixtures for the search-space tests: the default space and one IOSpec per modality."""

from __future__ import annotations

import pytest

from autodlgym.searchspace.io import IOSpec
from autodlgym.searchspace.space import SearchSpace

#: the three modalities at the sizes of the property tests
IOS = {
    "vector": IOSpec("vector", (40,), 10),
    "sequence": IOSpec("sequence", (1, 40), 10),
    "image": IOSpec("image", (1, 8, 8), 10),
}


@pytest.fixture(scope="session")
def ios() -> dict[str, IOSpec]:
    return dict(IOS)


@pytest.fixture(scope="session")
def space() -> SearchSpace:
    return SearchSpace.default()


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    import torch

    torch.set_num_threads(1)
