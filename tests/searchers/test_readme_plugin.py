"""The plugin searcher shown in the README passes the conformance suite and runs a search."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

from autodlgym.testing.searchers import SearcherConformance

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_plugin_module() -> types.ModuleType:
    text = README.read_text()
    section = text[text.index("### Writing a searcher plugin") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    module = types.ModuleType("readme_plugin")
    exec(compile(code, str(README), "exec"), module.__dict__)  # noqa: S102 - our own README
    return module


MutateTheBest = _readme_plugin_module().MutateTheBest


class TestReadmePlugin(SearcherConformance):
    @pytest.fixture
    def searcher_factory(self):
        return lambda space, seed, run_dir: MutateTheBest(space, seed=seed, run_dir=run_dir)


def test_readme_plugin_climbs_from_its_best(tmp_path):
    from autodlgym import SearchSpace
    from autodlgym.testing.searchers import synthetic_result

    space = SearchSpace.default()
    s = MutateTheBest(space, seed=0, explore=2)
    for spec in s.ask(1) + s.ask(1):
        s.tell(spec, synthetic_result(space, spec))
    assert s.best is not None
    child = s.ask(1)[0]
    assert space.contains(child) and child != s.best
