"""ArchSpec: immutability, JSON round trips, arch_id stability, structured views."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autodlgym.errors import AutoDLError, SpecError
from autodlgym.searchspace.spec import ArchSpec

keys = st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), min_size=1, max_size=12)
scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
mappings = st.dictionaries(keys, scalars, max_size=12)


@given(mappings)
def test_json_round_trip_is_exact_and_canonical(values):
    spec = ArchSpec(values)
    back = ArchSpec.from_json(spec.to_json())
    assert back == spec
    assert back.arch_id == spec.arch_id
    assert hash(back) == hash(spec)
    assert {k: type(v) for k, v in back.items()} == {k: type(v) for k, v in spec.items()}
    # canonical: independent of insertion order
    assert ArchSpec(dict(reversed(list(values.items())))).to_json() == spec.to_json()


@given(mappings, keys, scalars)
def test_replace_changes_only_the_given_key(values, key, value):
    spec = ArchSpec(values)
    new = spec.replace(**{key: value})
    assert new[key] == value
    assert {k: v for k, v in new.items() if k != key} == {k: v for k, v in spec.items() if k != key}
    assert key not in spec.replace(**{key: None})


def test_bool_and_int_are_different_specs():
    assert ArchSpec(a=True) != ArchSpec(a=1)


def test_spec_is_frozen():
    spec = ArchSpec(a=1)
    with pytest.raises(AttributeError):
        spec.a = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad",
    [{"a": float("nan")}, {"a": float("inf")}, {"a": [1]}, {"a": None}, {1: 2}],
)
def test_bad_values_are_one_line_spec_errors(bad):
    with pytest.raises(SpecError) as err:
        ArchSpec(bad)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", ["{", "[1, 2]", "nope"])
def test_bad_json_is_one_line_autodl_error(text):
    with pytest.raises(AutoDLError) as err:
        ArchSpec.from_json(text)
    assert "\n" not in str(err.value)


def test_stage_view_and_n_stages():
    spec = ArchSpec({"n_stages": 2, "stage1.block": "conv", "stage2.width": 8, "lr": 0.1})
    assert spec.n_stages == 2
    assert spec.stage(1) == {"block": "conv"}
    assert spec.stage(2) == {"width": 8}
    assert spec.stage(3) == {}
    assert ArchSpec().n_stages == 1


def test_arch_id_is_the_same_in_another_process(space):
    specs = [space.sample(seed) for seed in range(20)]
    code = (
        "import json, sys; from autodlgym.searchspace.spec import ArchSpec; "
        "print(json.dumps([ArchSpec.from_json(t).arch_id for t in json.load(sys.stdin)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps([s.to_json() for s in specs]),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == [s.arch_id for s in specs]
    assert len({s.arch_id for s in specs}) == len(set(specs))
