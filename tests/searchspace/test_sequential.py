"""DecisionSequence: a spec built one decision at a time, in the space's order, with masks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autodlgym.errors import AutoDLError
from autodlgym.searchspace.sequential import NOT_MADE, DecisionSequence


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1))
def test_choosing_a_spec_options_walks_its_decisions_and_rebuilds_it(space, seed):
    spec = space.sample(seed)
    sequence = DecisionSequence(space)
    for d in space.decisions(spec):
        assert sequence.current == d and sequence.position == d.position
        assert (sequence.mask() == d.mask).all()
        index, ruled_out = sequence.choose(d.choice.index(spec[d.choice.name]))
        assert not ruled_out and sequence.chosen[d.position] == index
    assert sequence.done and sequence.position == len(space) and not sequence.mask().any()
    assert sequence.spec() == spec
    made = {space.names.index(name) for name in spec}
    assert all((i in made) == (v != NOT_MADE) for i, v in enumerate(sequence.chosen))


def test_an_option_the_mask_rules_out_maps_onto_a_legal_one(space):
    sequence = DecisionSequence(space)
    n = len(sequence.current.choice.options)
    assert n < space.max_options, "the first decision must leave slots to rule out"
    index, ruled_out = sequence.choose(space.max_options - 1)
    assert ruled_out and index == (space.max_options - 1) % n


def test_an_unfinished_or_finished_sequence_refuses_what_it_cannot_do(space):
    sequence = DecisionSequence(space)
    with pytest.raises(AutoDLError, match="not complete"):
        sequence.spec()
    for bad in (-1, space.max_options):
        with pytest.raises(AutoDLError, match="outside"):
            sequence.choose(bad)
    while not sequence.done:
        sequence.choose(0)
    with pytest.raises(AutoDLError, match="complete"):
        sequence.choose(0)
    assert sequence.spec() == space.decode(np.zeros(len(space), dtype=np.int64))
