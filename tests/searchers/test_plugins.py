"""Plugin searchers: found through the ``autodlgym.searchers`` entry-point group or as
``package.module:Class``; bad names are user errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autodlgym.errors import AutoDLError
from autodlgym.searchers.base import ENTRY_POINT_GROUP, get_searcher, list_searchers, make_searcher
from autodlgym.searchspace.space import SearchSpace

PLUGIN_SOURCE = textwrap.dedent(
    '''
    """A third-party searcher: random search that remembers how many results it heard."""

    from autodlgym.searchers.base import Searcher


    class MySearcher(Searcher):
        """Random search from a plugin."""

        description = "a plugin's random search"

        def __init__(self, space, seed=0, run_dir=None, greeting="hello"):
            super().__init__(space, seed=seed, run_dir=run_dir)
            self.greeting = greeting
            self.told = 0

        def ask(self, n=1):
            return [self.space.sample(self.rng) for _ in range(n)]

        def tell(self, spec, result):
            self.told += 1


    class NotASearcher:
        pass
    '''
)

ENTRY_POINTS = f"""[{ENTRY_POINT_GROUP}]
myrand = myplugin:MySearcher
broken = myplugin:Missing
"""


def install_by_hand(site: Path) -> None:
    """What an installer leaves behind: the module and a .dist-info with entry_points.txt."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "myplugin.py").write_text(PLUGIN_SOURCE)
    info = site / "myplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    install_by_hand(site)
    monkeypatch.syspath_prepend(str(site))  # also invalidates the import caches
    monkeypatch.delitem(sys.modules, "myplugin", raising=False)
    yield site
    sys.modules.pop("myplugin", None)


def test_an_entry_point_plugin_is_found_listed_and_made(plugin_site):
    cls = get_searcher("myrand")
    assert cls.__name__ == "MySearcher" and cls.__module__ == "myplugin"
    listed = {name: (origin, desc) for name, origin, desc in list_searchers()}
    assert listed["myrand"] == ("plugin myplugin:MySearcher", "a plugin's random search")
    assert listed["broken"][1].startswith("(fails to load")  # listed, not fatal
    assert listed["random"][0] == "built-in"
    space = SearchSpace.default()
    searcher = make_searcher("myrand", space, seed=0, greeting="hi")
    assert searcher.greeting == "hi"
    for spec in searcher.ask(3):
        space.validate(spec)


def test_a_class_is_loaded_from_module_colon_class(plugin_site):
    assert get_searcher("myplugin:MySearcher").__name__ == "MySearcher"


@pytest.mark.parametrize(
    "name",
    [
        "no_such_searcher",
        "no_such_module_xyz:Searcher",
        "myplugin:Missing",
        "myplugin:NotASearcher",
        "broken",
    ],
)
def test_bad_names_are_user_errors(plugin_site, name):
    with pytest.raises(AutoDLError):
        get_searcher(name)


def test_bad_plugin_options_are_user_errors(plugin_site):
    with pytest.raises(AutoDLError, match="myrand"):
        make_searcher("myrand", SearchSpace.default(), colour="red")


@pytest.mark.slow
def test_a_pip_installed_package_registers_its_entry_point(tmp_path, monkeypatch):
    """The real thing: a pyproject declaring the entry point, installed with pip."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "myplugin.py").write_text(PLUGIN_SOURCE)
    (src / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "myplugin"
            version = "0.1"

            [project.entry-points."{ENTRY_POINT_GROUP}"]
            myrand = "myplugin:MySearcher"
            """
        )
    )
    target = tmp_path / "site"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--target",
        str(target),
        str(src),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    monkeypatch.syspath_prepend(str(target))
    monkeypatch.delitem(sys.modules, "myplugin", raising=False)
    try:
        assert get_searcher("myrand").__name__ == "MySearcher"
        assert "myrand" in [name for name, _, _ in list_searchers()]
    finally:
        sys.modules.pop("myplugin", None)
