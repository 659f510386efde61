"""SearchSpace properties: encode/decode, Gymnasium vectors, sampling coverage, errors."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autodlgym.errors import AutoDLError, SpecError
from autodlgym.searchspace.registry import BLOCKS, INIT_LAWS
from autodlgym.searchspace.space import SearchSpace, default_config
from autodlgym.searchspace.spec import ArchSpec

DEFAULT_CONFIG = default_config()
# the default space offers the built-in blocks that read no graph (graph tasks have their own)
BUILTIN_BLOCKS = [b for b in BLOCKS.builtins() if BLOCKS.meta(b)["reads"] != "graph"]

seeds = st.integers(0, 2**32 - 1)


@given(seeds)
def test_encode_decode_round_trip(space, seed):
    spec = space.sample(seed)
    assert space.validate(spec) == spec
    vec = space.encode(spec)
    assert vec.shape == (len(space),)
    assert ((0 <= vec) & (vec < space.nvec)).all()
    assert space.decode(vec) == spec
    assert ArchSpec.from_json(spec.to_json()) == spec


@given(seeds)
def test_every_gymnasium_vector_decodes_to_a_valid_spec(space, seed):
    gym_space = space.gymnasium_space(seed=seed)
    vec = gym_space.sample()
    assert gym_space.contains(vec)
    spec = space.decode(vec)
    space.validate(spec)
    # decoding is a projection: re-encoding and decoding is stable
    assert space.decode(space.encode(spec)) == spec


@given(seeds)
def test_one_decision_per_step_rebuilds_the_spec(space, seed):
    spec = space.sample(seed)
    partial = {}
    for d in space.decisions(spec):
        assert d.mask[: len(d.choice.options)].all() and not d.mask[len(d.choice.options) :].any()
        partial[d.choice.name] = spec[d.choice.name]
    assert ArchSpec(partial) == spec
    assert space.next_decision(partial) is None


@given(seeds)
def test_mutation_stays_in_the_space_and_changes_the_spec(space, seed):
    spec = space.sample(seed)
    child = space.mutate(spec, np.random.default_rng(seed))
    space.validate(child)
    assert child != spec


def test_sampling_reaches_every_block_and_init_law(space):
    rng = np.random.default_rng(0)
    specs = [space.sample(rng) for _ in range(400)]
    blocks = {v for s in specs for k, v in s.items() if k.endswith(".block")}
    laws = {s["init"] for s in specs}
    assert blocks == set(BUILTIN_BLOCKS)
    assert laws == set(DEFAULT_CONFIG["globals"]["init"]["options"])


def test_space_names_match_the_registries():
    assert set(BUILTIN_BLOCKS) <= set(BLOCKS.names())
    assert set(DEFAULT_CONFIG["globals"]["init"]["options"]) <= set(INIT_LAWS.names())


def test_cardinality_matches_enumeration():
    space = SearchSpace.from_config(
        {
            "max_stages": 2,
            "globals": {"n_stages": {"options": [1, 2]}, "act": {"options": ["relu", "tanh"]}},
            "stage": {
                "block": {"options": ["conv", "mlp", "recurrent"]},
                "kernel": {"options": [3, 5], "when": {"block": ["conv"]}},
                "cell": {"options": ["gru", "lstm"], "when": {"block": ["recurrent"]}},
            },
        }
    )
    specs = {space.decode(v) for v in itertools.product(*[range(n) for n in space.nvec])}
    assert len(specs) == space.cardinality() == (5 + 25) * 2


def test_config_round_trip(space):
    again = SearchSpace.from_config(space.to_config())
    assert again == space
    assert again.cardinality() == space.cardinality()


def _one_line(exc: BaseException) -> bool:
    return "\n" not in str(exc) and str(exc) != ""


@pytest.mark.parametrize(
    "spec, word",
    [
        ({"nonsense": 1}, "unknown decision"),
        ({"n_stages": 7}, "not allowed"),
        ({"n_stages": 1}, "lacks"),
    ],
)
def test_specs_outside_the_space_are_one_line_spec_errors(space, spec, word):
    with pytest.raises(SpecError) as err:
        space.validate(spec)
    assert _one_line(err.value) and word in str(err.value)


def test_inactive_decision_is_rejected(space):
    spec = dict(space.sample(0))
    spec["stage1.block"] = "mlp"
    spec = {k: v for k, v in spec.items() if k not in ("stage1.kernel", "stage1.dilation")}
    spec = dict(space._complete(spec, lambda c: c.options[0]))
    spec["stage1.kernel"] = 3
    with pytest.raises(SpecError) as err:
        space.validate(spec)
    assert _one_line(err.value) and "inactive" in str(err.value)


@pytest.mark.parametrize(
    "name, text, word",
    [
        ("bad.yaml", "base: default\nglobals: [unclosed", "cannot be parsed"),
        ("bad.json", '{"base": ', "cannot be parsed"),
        ("empty.yaml", "", "empty"),
        (
            "block.yaml",
            "base: default\nstage:\n  block: {options: [conv, warp_drive]}\n",
            "warp_drive",
        ),
        ("section.yaml", "base: default\nextras: {}\n", "unknown section"),
        ("remove.yaml", "base: default\nremove: [nothing_here]\n", "nothing_here"),
    ],
)
def test_bad_space_files_are_one_line_autodl_errors(tmp_path, name, text, word):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(AutoDLError) as err:
        SearchSpace.from_file(p)
    assert _one_line(err.value) and word in str(err.value)


def test_missing_space_file(tmp_path):
    with pytest.raises(AutoDLError) as err:
        SearchSpace.from_file(tmp_path / "absent.yaml")
    assert _one_line(err.value)


def test_space_file_narrows_the_default(tmp_path):
    p = tmp_path / "space.json"
    p.write_text(json.dumps({"base": "default", "stage": {"block": {"options": ["mlp"]}}}))
    space = SearchSpace.from_file(p)
    assert all(v == "mlp" for k, v in space.sample(1).items() if k.endswith(".block"))
