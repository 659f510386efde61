"""The public API is what docs/api.md says it is, and its version is what CHANGELOG.md says.

docs/api.md lists every export of ``autodlgym`` with its signature under "## Exports", and the
members of ``Searcher``, ``SearchSpace``, ``Task`` and ``Run`` in a section each. A bullet
starts with a code span: ``name(parameters) -> result`` for a callable, ``name`` (or
``name: type``) for an attribute. These tests hold the list and the code to each other, in
both directions, so a change to either shows up here.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import autodlgym

ROOT = Path(__file__).resolve().parents[1]
API = (ROOT / "docs" / "api.md").read_text()
CHANGELOG = (ROOT / "CHANGELOG.md").read_text()
#: docs/api.md section -> the class whose public members it lists
CLASS_SECTIONS = {
    "Searcher": "Searcher",
    "SearchSpace": "SearchSpace",
    "Task": "Task",
    "Run": "Run",
}


def section(title: str) -> str:
    """The text of ``## title`` in docs/api.md, up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", API, re.M | re.S)
    assert match, f"docs/api.md has no section '## {title}'"
    return match.group(1)


def bullets(text: str) -> dict[str, str]:
    """name -> the code span a bullet starts with (a bullet may wrap onto indented lines)."""
    out: dict[str, str] = {}
    for item in re.findall(r"^- (.*?)(?=^- |^\S|\Z)", text, re.M | re.S):
        span = re.match(r"`([^`]+)`", item.strip())
        assert span, f"docs/api.md: a bullet must start with a code span: {item.strip()[:60]!r}"
        code = " ".join(span.group(1).split())
        name = re.match(r"[A-Za-z_]\w*", code)
        assert name, f"docs/api.md: a bullet's code span must start with a name: {code!r}"
        assert name.group(0) not in out, f"docs/api.md lists {name.group(0)!r} twice"
        out[name.group(0)] = code
    return out


def documented_parameters(code: str) -> list[str] | None:
    """The parameters of ``name(...) -> ...`` as :func:`real_parameters` writes them; None
    for an attribute."""
    rest = re.sub(r"^\w+", "", code)
    if not rest.startswith("("):
        return None
    try:
        tree = ast.parse(f"def _{rest}: pass")
    except SyntaxError as exc:
        raise AssertionError(f"docs/api.md: {code!r} is not a Python signature: {exc}") from None
    args = tree.body[0].args
    positional = args.posonlyargs + args.args
    first_default = len(positional) - len(args.defaults)
    out = [a.arg + ("=" if i >= first_default else "") for i, a in enumerate(positional)]
    if args.vararg:
        out.append("*" + args.vararg.arg)
    elif args.kwonlyargs:
        out.append("*")
    for a, default in zip(args.kwonlyargs, args.kw_defaults):
        out.append(a.arg + ("=" if default is not None else ""))
    if args.kwarg:
        out.append("**" + args.kwarg.arg)
    return out


def real_parameters(obj: object) -> list[str]:
    """``["a", "b=", "*", "c=", "**kw"]``: names, which have defaults, and the markers."""
    params = list(inspect.signature(obj).parameters.values())
    if params and params[0].name in ("self", "cls"):
        params = params[1:]
    out: list[str] = []
    star = False
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            out.append("*" + p.name)
            star = True
        elif p.kind is p.VAR_KEYWORD:
            out.append("**" + p.name)
        else:
            if p.kind is p.KEYWORD_ONLY and not star:
                out.append("*")
                star = True
            out.append(p.name + ("=" if p.default is not p.empty else ""))
    return out


def export_bullets() -> dict[str, str]:
    return bullets(section("Exports"))


# exports ---------------------------------------------------------------------------------


def test_every_export_is_importable():
    missing = []
    for name in autodlgym.__all__:
        try:
            getattr(autodlgym, name)
        except (AttributeError, ImportError) as exc:
            missing.append(f"{name} ({type(exc).__name__}: {exc})")
    assert not missing, f"autodlgym.__all__ names that do not import: {missing}"
    assert sorted(dir(autodlgym)) == sorted(autodlgym.__all__)


def test_docs_api_lists_exactly_the_exports():
    listed = set(export_bullets())
    exported = set(autodlgym.__all__)
    assert not exported - listed, f"exports not listed in docs/api.md: {sorted(exported - listed)}"
    assert not listed - exported, (
        f"docs/api.md lists names autodlgym does not export: {sorted(listed - exported)}"
    )


@pytest.mark.parametrize("name", sorted(set(autodlgym.__all__) - {"__version__"}))
def test_documented_signature_of_each_export_is_its_signature(name):
    documented = documented_parameters(export_bullets()[name])
    obj = getattr(autodlgym, name)
    if isinstance(obj, type) and issubclass(obj, BaseException):
        assert documented is None, f"docs/api.md: write the exception {name} without a signature"
        return
    assert documented is not None, f"docs/api.md: give {name}'s signature, e.g. {name}(...)"
    assert documented == real_parameters(obj), f"docs/api.md: the signature of {name}"


def test_registration_section_agrees_with_the_exports():
    registration = bullets(section("Registration"))
    assert set(registration) == {n for n in autodlgym.__all__ if n.startswith("register_")}
    exports = export_bullets()
    for name, code in registration.items():
        assert documented_parameters(code) == documented_parameters(exports[name]), name


# members ---------------------------------------------------------------------------------


class _Minimal(autodlgym.Searcher):
    def ask(self, n=1):
        return [self.space.sample(self.rng) for _ in range(n)]


@pytest.fixture(scope="module")
def instances(tmp_path_factory) -> dict[str, object]:
    """One object of each documented class, for attributes set in ``__init__``."""
    run_dir = tmp_path_factory.mktemp("api") / "run"
    autodlgym.run_search(autodlgym.RunConfig(out=str(run_dir), task="mnist1d-table", trials=1))
    space = autodlgym.SearchSpace.default()
    run = autodlgym.Run.open(run_dir)
    yield {
        "Searcher": _Minimal(space, seed=0),
        "SearchSpace": space,
        "Task": autodlgym.get_task("digits"),
        "Run": run,
    }
    run.close()


def public_members(obj: object) -> set[str]:
    names = set(dir(obj)) | set(getattr(obj, "__dict__", {}))
    return {n for n in names if not n.startswith("_")}


@pytest.mark.parametrize("title", sorted(CLASS_SECTIONS))
def test_docs_api_lists_exactly_the_public_members(title, instances):
    cls = getattr(autodlgym, CLASS_SECTIONS[title])
    documented = set(bullets(section(title)))
    real = public_members(cls) | public_members(instances[title])
    assert not real - documented, (
        f"public members of {cls.__name__} not in docs/api.md '## {title}': {sorted(real - documented)}"
        " (document them, or make them private)"
    )
    assert not documented - real, (
        f"docs/api.md '## {title}' lists members {cls.__name__} does not have: "
        f"{sorted(documented - real)}"
    )


@pytest.mark.parametrize("title", sorted(CLASS_SECTIONS))
def test_documented_signatures_of_members_are_their_signatures(title):
    cls = getattr(autodlgym, CLASS_SECTIONS[title])
    for name, code in bullets(section(title)).items():
        documented = documented_parameters(code)
        member = inspect.getattr_static(cls, name, None)
        callable_member = isinstance(member, classmethod | staticmethod) or inspect.isfunction(
            member
        )
        if documented is None:
            assert not callable_member, f"docs/api.md: give {cls.__name__}.{name}'s signature"
            continue
        assert callable_member, f"docs/api.md: {cls.__name__}.{name} is not a method"
        real = real_parameters(getattr(cls, name))
        assert documented == real, f"docs/api.md: the signature of {cls.__name__}.{name}"


# version ---------------------------------------------------------------------------------


def test_the_version_is_the_same_everywhere_and_has_a_changelog_entry():
    pyproject = (ROOT / "pyproject.toml").read_text()
    project = pyproject.split("[project]", 1)[1].split("\n[", 1)[0]  # the [project] table
    match = re.search(r'^version = "([^"]+)"', project, re.M)
    assert match, "pyproject.toml has no version in [project]"
    version = match.group(1)
    assert autodlgym.__version__ == version, (
        f"autodlgym.__version__ is {autodlgym.__version__}, pyproject.toml says {version}"
    )
    assert re.search(rf"^## \[{re.escape(version)}\]", CHANGELOG, re.M), (
        f"CHANGELOG.md has no entry '## [{version}]'"
    )
    versions = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", CHANGELOG, re.M)
    assert versions[0] == version, "CHANGELOG.md lists the newest version first"
    keys = [tuple(map(int, v.split("."))) for v in versions]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys)


def test_the_changelog_names_the_deprecated_nvec_call():
    entry = CHANGELOG.split("## [", 2)[1]
    deprecated = re.search(r"^### Deprecated\n(.*?)(?=^### |\Z)", entry, re.M | re.S)
    assert deprecated and "SearchSpace.nvec()" in deprecated.group(1)


# import ----------------------------------------------------------------------------------


def test_import_registers_the_gymnasium_ids():
    import gymnasium

    assert gymnasium.spec("autodlgym/MNIST1D-v0").kwargs == {"task": "mnist1d"}
    assert gymnasium.spec("autodlgym/MNIST1D-Seq-v0").kwargs == {"task": "mnist1d"}


def test_an_error_registering_the_gymnasium_ids_is_raised(tmp_path):
    """A broken registration fails ``import autodlgym`` instead of dropping every id."""
    broken = tmp_path / "gymnasium"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise ImportError('gymnasium is broken here')\n")
    code = "import autodlgym"
    env = {"PYTHONPATH": str(tmp_path), "PATH": ""}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert r.returncode != 0 and "gymnasium is broken here" in r.stderr


def test_the_lazy_exports_name_their_modules():
    for name, module in autodlgym._EXPORTS.items():
        assert hasattr(importlib.import_module(module), name), f"{module} has no {name}"
