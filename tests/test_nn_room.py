"""The search space is torch-free; the torch code (blocks, builder, init laws) is in autodlgym.nn.

The built-in blocks and init laws are declared to their registries as data (names, ``reads``,
``uses``, docs); their code is imported from ``autodlgym.nn`` only when a network is built.
The old module paths ``autodlgym.searchspace.blocks`` / ``build`` / ``init`` are deprecated
aliases for one release.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autodlgym.registry import BUILTIN, Registry
from autodlgym.searchspace import builtins
from autodlgym.searchspace.registry import BLOCKS, INIT_LAWS

ROOT = Path(__file__).resolve().parents[1]

TORCH_FREE = textwrap.dedent(
    """
    import sys

    import autodlgym
    from autodlgym import IOSpec, SearchSpace
    from autodlgym.searchspace.cost import estimate_cost
    from autodlgym.searchspace.registry import BLOCKS, INIT_LAWS
    import autodlgym.searchspace.blocks, autodlgym.searchspace.build, autodlgym.searchspace.init

    space = SearchSpace.default()
    spec = space.sample(0)
    space.mutate(spec, 1)
    space.neighbours(spec, 2)
    space.decode(space.encode(spec))
    space.describe()
    SearchSpace.from_file(sys.argv[1]).sample(3)
    io = IOSpec("image", (1, 8, 8), 10)
    for seed in range(20):  # every built-in block is costed by its formula
        estimate_cost(space.sample(seed), io)
    budget = space.with_constraints(max_params="100k", io=io)
    budget.sample(4)
    assert BLOCKS.meta("conv")["uses"] == ("kernel", "dilation")
    assert INIT_LAWS.meta("torch_default")["keeps_torch_init"]
    assert BLOCKS.origin("wavenet") == "built-in" and "he_normal" in INIT_LAWS
    heavy = sorted(m for m in ("torch", "autodlgym.nn", "ray") if m in sys.modules)
    print("imported:", heavy)
    """
)


def test_building_sampling_and_costing_a_space_import_no_torch(tmp_path):
    space_file = tmp_path / "space.yaml"
    space_file.write_text(
        "base: default\nstage:\n  block:\n    options: [conv, recurrent, attention]\n"
        "  kernel:\n    options: [3, 5]\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", TORCH_FREE, str(space_file)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "imported: []" in r.stdout


def test_the_builtins_are_declared_in_table_order_with_their_registrations():
    assert BLOCKS.builtins()[: len(builtins.BLOCKS)] == list(builtins.BLOCKS)
    for name, row in builtins.BLOCKS.items():
        assert BLOCKS.meta(name) == {
            "reads": row.reads,
            "uses": row.uses,
            "doc": row.doc,
            "modalities": row.modalities,
        }
        assert BLOCKS.origin(name) == BUILTIN
    assert INIT_LAWS.builtins()[: len(builtins.INIT_LAWS)] == list(builtins.INIT_LAWS)


@pytest.mark.parametrize("name", list(builtins.BLOCKS))
def test_a_declared_block_is_its_class_in_nn_blocks(name):
    nn_blocks = importlib.import_module("autodlgym.nn.blocks")
    assert BLOCKS.get(name) is getattr(nn_blocks, builtins.BLOCKS[name].cls)
    assert BLOCKS.is_declared(name)


@pytest.mark.parametrize("name", list(builtins.INIT_LAWS))
def test_a_declared_init_law_is_its_function_in_nn_init(name):
    nn_init = importlib.import_module("autodlgym.nn.init")
    assert INIT_LAWS.get(name) is getattr(nn_init, builtins.INIT_LAWS[name][0])


def test_a_declared_entry_is_imported_only_when_asked_for(tmp_path, monkeypatch):
    (tmp_path / "heavy_things.py").write_text("IMPORTED = True\ndef thing():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("thing", lazy_module="heavy_things", declared={"a": ("thing", {"n": 1})})
    assert reg.names() == ["a"] and "a" in reg and reg.meta("a") == {"n": 1}
    assert reg.origin("a") == BUILTIN and reg.builtins() == ["a"]
    assert "heavy_things" not in sys.modules
    assert reg.get("a")() == 1 and "heavy_things" in sys.modules
    assert reg.is_declared("a")

    def other():
        return 2

    with pytest.warns(UserWarning, match="registered again"):
        reg.add("a", other, n=2)
    assert not reg.is_declared("a") and reg.get("a") is other and reg.meta("a") == {"n": 2}
    sys.modules.pop("heavy_things", None)


@pytest.mark.parametrize("old", ["blocks", "build", "init"])
def test_the_old_module_paths_warn_and_hand_back_the_nn_objects(old):
    alias = importlib.import_module(f"autodlgym.searchspace.{old}")
    new = importlib.import_module(f"autodlgym.nn.{old}")
    name = {"blocks": "BlockContext", "build": "build_model", "init": "apply_init"}[old]
    message = f"autodlgym.searchspace.{old} is deprecated; import from autodlgym.nn.{old}"
    with pytest.warns(DeprecationWarning, match=message):
        assert getattr(alias, name) is getattr(new, name)
    with pytest.warns(DeprecationWarning, match="removed in 0.3.0"):
        exec(f"from autodlgym.searchspace.{old} import {name}", {})
    with pytest.raises(AttributeError):
        alias.no_such_name  # noqa: B018


def test_no_searchspace_module_imports_torch():
    """Not even lazily: what needs torch (building, measuring a block) is in autodlgym.nn."""
    found = []
    for path in sorted((ROOT / "autodlgym" / "searchspace").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [f"{path.name}:{node.lineno}" for n in names if n.split(".")[0] == "torch"]
    assert not found
