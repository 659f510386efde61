"""The package's rooms depend on each other one way only.

Every import of an ``autodlgym`` module counts: at module level, inside functions (a lazy
import is still a dependency), under ``TYPE_CHECKING``, and ``importlib.import_module`` /
``lazy_module=`` / ``entry_point=`` / ``moved_module(old, new)`` with a literal name. A module's room is the first package
below ``autodlgym`` (``autodlgym.searchspace.space`` -> ``searchspace``), or the top-level
module's name (``autodlgym.runner`` -> ``runner``); the package root is the room
``autodlgym``. A room may import rooms of its own rank or lower, never higher; a room in
:data:`ONLY_USES` may import nothing beyond the rooms listed there.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path

import pytest

import autodlgym

#: room -> rank; a room may import rooms of its own rank or lower
LAYERS: dict[str, int] = {
    # 0 the words every room shares: errors, trial records, registries, small helpers
    "errors": 0,
    "utils": 0,
    "trial": 0,
    "registry": 0,
    "optuna_utils": 0,
    "clock": 0,
    # 1 what can be built: specs, spaces, blocks, costs, the order of decisions
    "searchspace": 1,
    # 2 persistence: the result store and what a run ran on (no views of results)
    "results": 2,
    # 3 what candidates are trained on, and the networks they are made of
    "tasks": 3,
    "nn": 3,
    # 4 how one candidate is trained and scored (and measured at initialisation)
    "training": 4,
    # one-shot evaluators: shared weights trained once, scoring many networks
    "oneshot": 4,
    # 5 where trials run
    "execution": 5,
    # 6 the Gymnasium environments
    "envs": 6,
    # 7 who proposes; used from above only, and itself narrowed by ONLY_USES
    "searchers": 7,
    # 8 a run: its settings (RunConfig), the run directory opened (Run: task, space, store)
    # and the search loop that fills it, with the bar a search shows
    "run": 8,
    "runner": 8,
    "progress": 8,
    # 9 what users call on runs: views of results, retraining, export, experiments, the
    # conformance suite for searcher plugins
    "analysis": 9,
    "rl": 9,
    "experiments": 9,
    "retrain": 9,
    "export": 9,
    "predict": 9,
    "testing": 9,
    # 10 the command line and the package root, which re-exports the public API lazily
    "cli": 10,
    "__main__": 10,
    "autodlgym": 10,
}

BASE = frozenset(room for room, rank in LAYERS.items() if rank == 0)

#: room -> the only rooms it may import (its own included)
ONLY_USES: dict[str, frozenset[str]] = {
    # searchers see the space and a SearchContext, never environments, trainers or tasks
    "searchers": BASE | {"searchspace", "searchers"},
}

#: names any room may import from the package root: the root runs before any of its modules,
#: so reading a constant of it adds no dependency
ROOT_CONSTANTS = frozenset({"__version__"})

#: (importer, imported) -> why this upward import is allowed; keep it short
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("autodlgym.results.leaderboard", "autodlgym.analysis.leaderboard"): (
        "deprecated alias of the old import path, kept for one release; it warns on use"
    ),
    ("autodlgym.searchspace.blocks", "autodlgym.nn.blocks"): "deprecated alias, removed in 0.3.0",
    ("autodlgym.searchspace.build", "autodlgym.nn.build"): "deprecated alias, removed in 0.3.0",
    ("autodlgym.searchspace.init", "autodlgym.nn.init"): "deprecated alias, removed in 0.3.0",
    # the registries declare the built-ins' names and metadata without torch; a built-in's
    # class or law is imported from nn only when it is asked for, to build a network
    ("autodlgym.searchspace.registry", "autodlgym.nn.blocks"): (
        "lazy_module of the built-in blocks, imported by BLOCKS.get"
    ),
    ("autodlgym.searchspace.registry", "autodlgym.nn.init"): (
        "lazy_module of the built-in init laws, imported by INIT_LAWS.get"
    ),
    ("autodlgym.searchspace.cost", "autodlgym.nn.build"): (
        "a block without a cost formula (a user's) is measured by building it on the meta "
        "device; imported only then"
    ),
}

#: keywords whose literal string value names a module that gets imported
IMPORT_KEYWORDS = frozenset({"lazy_module", "entry_point", "vector_entry_point"})


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    importer: str
    imported: str
    names: tuple[str, ...] = ()

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root.parent)}:{self.line}"


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package at ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def room_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _literal_prefix(node: ast.expr, module: str) -> str | None:
    """The module name a string expression starts with: a literal, or an f-string whose
    leading parts are literals or ``__name__``; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if not isinstance(node, ast.JoinedStr):
        return None
    text = ""
    for part in node.values:
        if isinstance(part, ast.Constant):
            text += str(part.value)
        elif (
            isinstance(part, ast.FormattedValue)
            and isinstance(part.value, ast.Name)
            and part.value.id == "__name__"
        ):
            text += module
        else:  # a variable part: keep the whole components before it
            return text.rpartition(".")[0] or None
    return text


def _call_name(node: ast.Call) -> str:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def imports_of(module: str, path: Path, package: str, known: set[str]) -> list[Import]:
    """Every import of a ``package`` module in one file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    out = []

    def add(node: ast.AST, target: str | None, names: tuple[str, ...] = ()) -> None:
        if target and (target == package or target.startswith(package + ".")):
            target = target.partition(":")[0]  # "module:attr" entry points
            out.append(Import(path, node.lineno, module, target, names))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                if not is_package:
                    anchor = anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                # "from autodlgym import analysis" imports the room analysis; a name that is
                # not a module is an attribute of ``base``
                add(node, sub if sub in known else base, (alias.name,))
        elif isinstance(node, ast.Call):
            if _call_name(node) in ("import_module", "__import__") and node.args:
                add(node, _literal_prefix(node.args[0], module))
            if _call_name(node) == "moved_module" and len(node.args) > 1:  # an alias's target
                add(node, _literal_prefix(node.args[1], module))
            for kw in node.keywords:
                if kw.arg in IMPORT_KEYWORDS:
                    add(node, _literal_prefix(kw.value, module))
    return sorted(out, key=lambda imp: imp.line)


def _allowed(importer: str, imported: str, names: tuple[str, ...], package: str) -> bool:
    if imported == package and names and set(names) <= ROOT_CONSTANTS:
        return True
    src, dst = room_of(importer), room_of(imported)
    if src == dst:
        return True
    if src in ONLY_USES and dst not in ONLY_USES[src]:
        return False
    return LAYERS[dst] <= LAYERS[src]


def layer_violations(root: Path, exceptions: dict | None = None) -> list[str]:
    """``file:line importer (room) -> imported (room)`` for each import that goes up a layer,
    and one line per module whose room has no layer, for the package at ``root``."""
    exceptions = EXCEPTIONS if exceptions is None else exceptions
    package = root.name
    modules = module_names(root)
    out = []
    for module, path in modules.items():
        if room_of(module) not in LAYERS:
            out.append(f"{path.relative_to(root.parent)}: room {room_of(module)!r} has no layer")
            continue
        for imp in imports_of(module, path, package, set(modules)):
            dst = room_of(imp.imported)
            if dst not in LAYERS:
                out.append(f"{imp.where(root)} {module} -> {imp.imported}: no room {dst!r}")
            elif (module, imp.imported) not in exceptions and not _allowed(
                module, imp.imported, imp.names, package
            ):
                out.append(
                    f"{imp.where(root)} {module} ({room_of(module)}) -> {imp.imported} ({dst})"
                )
    return out


def sys_modules_uses(root: Path) -> list[str]:
    """``file:line`` of each use of ``sys.modules`` other than asking whether a module outside
    the package is loaded (``"ipykernel" in sys.modules``), reading, setting or deleting the
    entry of a module outside it by name (``sys.modules.get("sklearn.ensemble")``,
    ``sys.modules["sklearn.ensemble"] = ...``), or counting the loaded modules
    (``len(sys.modules)``, which reaches none of them)."""

    def outside(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and not node.value.startswith(root.name)
        )

    out = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        allowed: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript) and outside(node.slice):
                allowed.add(id(node.value))
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and node.args
                and outside(node.args[0])
            ):
                allowed.add(id(node.func.value))
            if (
                isinstance(node, ast.Compare)
                and len(node.ops) == 1
                and isinstance(node.ops[0], ast.In | ast.NotIn)
                and isinstance(node.left, ast.Constant)
                and isinstance(node.left.value, str)
                and not node.left.value.startswith(root.name)
            ):
                allowed.add(id(node.comparators[0]))
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "len"
                and len(node.args) == 1
            ):
                allowed.add(id(node.args[0]))
        lines = []
        for node in ast.walk(tree):
            touches = (
                isinstance(node, ast.Attribute)
                and node.attr == "modules"
                and isinstance(node.value, ast.Name)
                and node.value.id == "sys"
            ) or (
                isinstance(node, ast.ImportFrom)
                and node.module == "sys"
                and any(a.name == "modules" for a in node.names)
            )
            if touches and id(node) not in allowed:
                lines.append(node.lineno)
        out += [f"{path.relative_to(root.parent)}:{line}" for line in sorted(lines)]
    return out


PACKAGE = Path(autodlgym.__file__).resolve().parent


def test_no_room_imports_a_room_above_it():
    bad = layer_violations(PACKAGE)
    assert not bad, "imports that go up a layer (see LAYERS in tests/test_layers.py):\n" + (
        "\n".join(bad)
    )


def test_every_exception_is_still_needed():
    found = {
        (module, imp.imported)
        for module, path in module_names(PACKAGE).items()
        for imp in imports_of(module, path, PACKAGE.name, set(module_names(PACKAGE)))
    }
    assert set(EXCEPTIONS) <= found, set(EXCEPTIONS) - found


def test_no_module_reaches_another_through_sys_modules():
    assert not sys_modules_uses(PACKAGE)


def test_the_old_leaderboard_path_warns_and_hands_back_the_analysis_objects():
    import autodlgym.results.leaderboard as old

    views = importlib.import_module("autodlgym.analysis.leaderboard")

    for name in old.NAMES:
        with pytest.warns(DeprecationWarning, match="autodlgym.analysis.leaderboard"):
            assert getattr(old, name) is getattr(views, name)
    with pytest.raises(AttributeError):
        old.load_results  # noqa: B018 - not one of the old names


# The checker itself, on a small fake package -------------------------------------------------
def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "autodlgym"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent != root and not (path.parent / "__init__.py").exists():
            (path.parent / "__init__.py").write_text("")
        path.write_text(text)
    return root


def test_the_checker_finds_upward_imports_of_every_form(tmp_path):
    root = _fake_package(
        tmp_path,
        {
            "searchspace/space.py": (
                "import importlib\n"
                "from autodlgym.errors import AutoDLError\n"  # down: fine
                "def lazy():\n"
                "    from autodlgym.envs.sequential_env import Env\n"  # line 4: up
                "def dynamic(name):\n"
                "    importlib.import_module('autodlgym.training.trainer')\n"  # line 6: up
                "    importlib.import_module(f'autodlgym.runner.{name}')\n"  # line 7: up
                "    importlib.import_module(name)\n"  # unknown: not counted
            ),
            "searchspace/io.py": "from . import space\nfrom ..tasks import base\n",  # line 2
            "errors.py": "",
            "tasks/base.py": "",
            "searchers/tpe.py": "from autodlgym.results.store import Store\n",  # narrowed
            "results/store.py": "from autodlgym import __version__\n",  # a root constant
            "envs/reg.py": "R = Registry(lazy_module='autodlgym.cli')\n",  # up
        },
    )
    assert layer_violations(root, exceptions={}) == [
        "autodlgym/envs/reg.py:1 autodlgym.envs.reg (envs) -> autodlgym.cli (cli)",
        "autodlgym/searchers/tpe.py:1 autodlgym.searchers.tpe (searchers) -> "
        "autodlgym.results.store (results)",
        "autodlgym/searchspace/io.py:2 autodlgym.searchspace.io (searchspace) -> "
        "autodlgym.tasks.base (tasks)",
        "autodlgym/searchspace/space.py:4 autodlgym.searchspace.space (searchspace) -> "
        "autodlgym.envs.sequential_env (envs)",
        "autodlgym/searchspace/space.py:6 autodlgym.searchspace.space (searchspace) -> "
        "autodlgym.training.trainer (training)",
        "autodlgym/searchspace/space.py:7 autodlgym.searchspace.space (searchspace) -> "
        "autodlgym.runner (runner)",
    ]
    exempt = {("autodlgym.envs.reg", "autodlgym.cli"): "a reason"}
    assert not any("envs/reg.py" in line for line in layer_violations(root, exempt))


def test_the_checker_names_a_room_without_a_layer(tmp_path):
    root = _fake_package(tmp_path, {"gadgets/x.py": "", "errors.py": "import autodlgym.gizmo\n"})
    assert layer_violations(root, exceptions={}) == [
        "autodlgym/errors.py:1 autodlgym.errors -> autodlgym.gizmo: no room 'gizmo'",
        "autodlgym/gadgets/__init__.py: room 'gadgets' has no layer",
        "autodlgym/gadgets/x.py: room 'gadgets' has no layer",
    ]


def test_the_checker_finds_sys_modules_hooks(tmp_path):
    root = _fake_package(
        tmp_path,
        {
            "tasks/base.py": (
                "import sys\n"
                "def hook():\n"
                "    reg = sys.modules.get('autodlgym.envs.registration')\n"  # line 3
                "    return 'autodlgym.envs' in sys.modules\n"  # line 4: a package module
            ),
            "progress.py": "import sys\nNOTEBOOK = 'ipykernel' in sys.modules\n",  # fine
            "optuna_utils.py": (  # an outside module's entry by name: fine
                "import sys\nsys.modules['sklearn.ensemble'] = None\n"
                "sys.modules.get('sklearn.ensemble')\ndel sys.modules['sklearn.ensemble']\n"
            ),
            "run.py": "import sys\nsys.modules['autodlgym.envs'] = None\n",  # line 2
            "utils.py": "from sys import modules\n",  # line 1
        },
    )
    assert sys_modules_uses(root) == [
        "autodlgym/run.py:2",
        "autodlgym/tasks/base.py:3",
        "autodlgym/tasks/base.py:4",
        "autodlgym/utils.py:1",
    ]
