"""Plugins written only from the README: a searcher, a block with an init law, and a task.

The README's ``# mypkg/...`` code blocks are written as they are into a package ``mypkg`` on
``sys.path`` and imported, then used the way the README says: the searcher by
``package.module:Class`` and through the conformance suite, the block and the init law by name
in a space, the task by name with ``--import``. Each test leaves the registries,
``sys.modules``, ``sys.path`` and the Gymnasium ids as it found them.
"""

from __future__ import annotations

import importlib
import re
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gymnasium
import numpy as np
import pytest

from autodlgym import IOSpec, RunConfig, SearchSpace, build_model, get_task, run_search
from autodlgym import registry as registry_mod
from autodlgym.searchspace.registry import BLOCKS, INIT_LAWS
from autodlgym.tasks import base as tasks_base
from autodlgym.testing.searchers import SearcherConformance

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()

#: module of mypkg -> the README heading whose section shows it
MODULES = {
    "searcher": "### Writing a searcher plugin",
    "blocks": "## Your own blocks, tasks and init laws",
    "tasks": "## Your own blocks, tasks and init laws",
}
#: what the README's modules register
NAMES = {BLOCKS: ["gated_conv"], INIT_LAWS: ["scaled_normal"], tasks_base.TASKS: ["sines"]}
GYM_IDS = ["autodlgym/Sines-v0", "autodlgym/Sines-Seq-v0"]

#: one stage of the README's block, with the README's init law; tiny settings
PLUGIN_SPACE = {
    "base": "default",
    "max_stages": 1,
    "globals": {
        "n_stages": {"options": [1]},
        "init": {"options": ["scaled_normal"]},
        "activation": {"options": ["relu"]},
        "norm": {"options": ["none"]},
        "dropout": {"options": [0.0]},
        "trainable": {"options": ["all"]},
        "batch_size": {"options": [64]},
        "optimizer": {"options": ["adam"]},
        "lr": {"options": [1e-2]},
    },
    "stage": {
        "block": {"options": ["gated_conv"]},
        "depth": {"options": [1]},
        "width": {"options": [64]},
        "kernel": {"options": [3, 5]},
    },
}


def readme_section(heading: str) -> str:
    """The README's text under ``heading`` up to the next heading of its level or above
    (lines in code blocks are not headings)."""
    lines = README.splitlines(keepends=True)
    assert heading + "\n" in lines, f"README.md has no heading {heading!r}"
    start = lines.index(heading + "\n") + 1
    level = len(heading.split(" ")[0])
    in_code = False
    for i in range(start, len(lines)):
        if lines[i].startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(rf"#{{1,{level}}} ", lines[i]):
            return "".join(lines[start:i])
    return "".join(lines[start:])


def readme_module(module: str) -> str:
    """The python block headed ``# mypkg/<module>.py`` in the README section that shows it."""
    heading = MODULES[module]
    section = readme_section(heading)
    header = f"# mypkg/{module}.py\n"
    blocks = [b for b in re.findall(r"```python\n(.*?)```", section, re.S) if b.startswith(header)]
    assert len(blocks) == 1, f"README section {heading!r} needs one block starting {header!r}"
    return blocks[0]


def _forget_task(name: str) -> None:
    tasks_base.TASKS.remove(name)
    for cache in (tasks_base._TASK_CACHE, tasks_base._DATA_CACHE):
        for key in [k for k in cache if k[0] == name]:
            del cache[key]


@contextmanager
def readme_plugins(root: Path, mp: pytest.MonkeyPatch) -> Iterator[types.SimpleNamespace]:
    """Write the README's modules as the package ``root/mypkg`` and import them; afterwards
    unregister what they registered and forget the modules."""
    package = root / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module in MODULES:
        (package / f"{module}.py").write_text(readme_module(module))
    mp.syspath_prepend(str(root))
    imported = list(registry_mod._IMPORTED)  # what --import has imported in this process
    try:
        yield types.SimpleNamespace(**{m: importlib.import_module(f"mypkg.{m}") for m in MODULES})
    finally:
        for registry, names in NAMES.items():
            for name in names:
                if registry is tasks_base.TASKS:
                    _forget_task(name)
                else:
                    registry.remove(name)
        for gym_id in GYM_IDS:
            gymnasium.registry.pop(gym_id, None)
        for module in [m for m in sys.modules if m == "mypkg" or m.startswith("mypkg.")]:
            del sys.modules[module]
        registry_mod._IMPORTED[:] = imported


@pytest.fixture
def mypkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[types.SimpleNamespace]:
    with readme_plugins(tmp_path, monkeypatch) as modules:
        yield modules


# the searcher ------------------------------------------------------------------------------


class TestReadmeSearcherConforms(SearcherConformance):
    @pytest.fixture
    def searcher_factory(self, mypkg):
        cls = mypkg.searcher.MutateTheBest
        return lambda space, seed, run_dir: cls(space, seed=seed, run_dir=run_dir)


def test_the_readme_searcher_runs_a_search_by_module_and_class(mypkg, tmp_path):
    config = RunConfig(
        out=str(tmp_path / "run"),
        task="mnist1d-table",
        searcher="mypkg.searcher:MutateTheBest",
        searcher_options={"explore": 2},  # then it mutates its best
        trials=5,
    )
    summary = run_search(config)
    assert summary.finished == 5 and summary.statuses == {"ok": 5}
    df = summary.results()
    assert len(df) == 5 and df.val_score.notna().all()
    assert df.arch_id.nunique() >= 2


# the block and the init law --------------------------------------------------------------


def test_the_readme_block_and_init_law_build_a_model(mypkg):
    import torch

    assert BLOCKS.get("gated_conv") is mypkg.blocks.gated_conv
    assert INIT_LAWS.get("scaled_normal") is mypkg.blocks.scaled_normal
    space = SearchSpace.from_config(PLUGIN_SPACE)
    assert space["stage1.block"].options == ("gated_conv",)
    assert space["stage1.kernel"].parent == "stage1.block"  # uses=("kernel",) made it active
    spec = space.sample(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model(spec, IOSpec("sequence", (1, 40), 10))
    gated = [m for m in model.modules() if isinstance(m, mypkg.blocks.GatedConv)]
    assert len(gated) == 1
    weight = gated[0].conv.weight.detach()
    fan_in = weight[0].numel()
    # scaled_normal: N(0, gain^2 / fan_in), relu's gain sqrt(2); torch's default is 1/sqrt(3 fan_in)
    assert weight.std().item() == pytest.approx(np.sqrt(2 / fan_in), rel=0.15)
    out = model(torch.randn(4, 1, 40))
    assert out.shape == (4, 10) and torch.isfinite(out).all()


# the task ---------------------------------------------------------------------------------


def test_the_readme_task_is_registered_with_its_gym_ids(mypkg):
    task = get_task("sines", n_train=40)
    assert task.io == IOSpec("sequence", (1, 32), 2) and dict(task.kwargs) == {"n_train": 40}
    data = task.load()
    assert data.sizes() == (40, 10, 10)
    assert data.x_train.shape == (40, 1, 32) and set(np.unique(data.y_train)) <= {0, 1}
    assert set(GYM_IDS) <= set(gymnasium.registry)
    assert gymnasium.spec("autodlgym/Sines-v0").kwargs == {"task": "sines"}


def test_a_search_imports_the_readme_modules_and_trains_on_them(mypkg, tmp_path):
    """A 2-trial search, as ``--import mypkg.blocks --import mypkg.tasks --task sines``."""
    config = RunConfig(
        out=str(tmp_path / "run"),
        task="sines",
        task_kwargs={"n_train": 200},
        space=PLUGIN_SPACE,
        imports=["mypkg.blocks", "mypkg.tasks"],
        trials=2,
        epochs=1,
        max_train_samples=128,
    )
    summary = run_search(config)
    assert summary.statuses == {"ok": 2}, summary.results()[["status", "message"]]
    df = summary.results()
    assert set(df["stage1.block"]) == {"gated_conv"} and set(df["init"]) == {"scaled_normal"}
    assert df.val_score.between(0, 1).all()


def test_the_plugins_leave_no_trace(tmp_path):
    before = {r: r.names() for r in NAMES}
    with pytest.MonkeyPatch.context() as mp, readme_plugins(tmp_path, mp) as modules:
        assert "gated_conv" in BLOCKS and "sines" in tasks_base.TASKS
        assert modules.searcher.MutateTheBest.__module__ == "mypkg.searcher"
        get_task("sines", n_train=40).load()
    assert {r: r.names() for r in NAMES} == before
    assert "mypkg" not in sys.modules and not set(GYM_IDS) & set(gymnasium.registry)
    assert not any(str(tmp_path) == p for p in sys.path)
