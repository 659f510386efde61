"""Blocks, tasks and init laws as plugins: entry points, ``--import``, Ray workers, resume.

The plugin package is built in a temporary folder the way an installer leaves one: the
module and a ``.dist-info`` whose ``entry_points.txt`` names the three groups.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autodlgym.errors import AutoDLError
from autodlgym.registry import Registry, import_modules
from autodlgym.results.store import load_results
from autodlgym.utils import did_you_mean

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = textwrap.dedent(
    '''
    """A third-party package: a conv-like block, a task and an init law."""

    import math

    import numpy as np
    from torch import nn

    from autodlgym import IOSpec, Task, register_block, register_task
    from autodlgym.tasks import TaskData


    class GatedConv(nn.Module):
        """conv * sigmoid(conv): reads the stage's kernel decision."""

        def __init__(self, in_shape, ctx):
            super().__init__()
            k = int(ctx.get("kernel", 3))
            self.conv = nn.Conv1d(in_shape[0], 2 * ctx.width, k, padding="same")
            self.out_shape = (ctx.width, in_shape[1])

        def forward(self, x):
            a, b = self.conv(x).chunk(2, dim=1)
            return a * b.sigmoid()


    @register_block("gatedconv", reads="sequence", uses=("kernel",), doc="gated conv (plugin)")
    def gated_conv(in_shape, ctx):
        return GatedConv(in_shape, ctx)


    def _parity(n, seed):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n, 1, 16)).astype(np.float32)
        return x, (x[:, 0, :8].sum(axis=1) > x[:, 0, 8:].sum(axis=1)).astype(np.int64)


    @register_task("halves", description="which half of a noise sequence sums higher (plugin)")
    def halves(n: int = 256):
        def load():
            (xt, yt), (xv, yv), (xs, ys) = (_parity(n, s) for s in (0, 1, 2))
            return TaskData(xt, yt, xv, yv, xs, ys)

        return Task("halves", (), IOSpec("sequence", (1, 16), 2), "cross_entropy", "accuracy",
                    "halves", load)


    def half_normal(weight, gain):
        """Not registered here: the entry point's name registers it."""
        fan_in = weight.shape[1] * math.prod(weight.shape[2:]) if weight.dim() > 1 else 1
        weight.normal_(0.0, gain / math.sqrt(2 * fan_in))
    '''
)

ENTRY_POINTS = """[autodlgym.blocks]
gatedconv = toyplug:gated_conv

[autodlgym.tasks]
halves = toyplug:halves

[autodlgym.init_laws]
half_normal = toyplug:half_normal
"""

USER_MODULE = textwrap.dedent(
    '''
    """Registered from a module named with --import (not installed, found in the cwd)."""

    from torch import nn

    from autodlgym import register_block


    @register_block("wide_mlp", reads="vector", doc="linear layer at twice the width")
    def wide_mlp(in_shape, ctx):
        layer = nn.Sequential(nn.Linear(in_shape[0], 2 * ctx.width), nn.ReLU())
        layer.out_shape = (2 * ctx.width,)
        return layer
    '''
)

SPACE = {
    "base": "default",
    "max_stages": 1,
    "globals": {
        "n_stages": {"options": [1]},
        "init": {"options": ["half_normal", "he_normal"]},
        "norm": {"options": ["none"]},
        "dropout": {"options": [0.0]},
        "trainable": {"options": ["all"]},
        "batch_size": {"options": [64]},
        "optimizer": {"options": ["adam"]},
        "lr": {"options": [0.01]},
    },
    "stage": {
        "block": {"options": ["gatedconv", "mlp"]},
        "depth": {"options": [1]},
        "width": {"options": [8, 16]},
        "kernel": {"options": [3, 5]},
    },
}


def install(site: Path) -> Path:
    site.mkdir(parents=True, exist_ok=True)
    (site / "toyplug.py").write_text(PLUGIN)
    info = site / "toyplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return site


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    site = install(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    yield site
    from autodlgym.searchspace.registry import BLOCKS, INIT_LAWS
    from autodlgym.tasks.base import TASKS

    for registry, name in ((BLOCKS, "gatedconv"), (INIT_LAWS, "half_normal"), (TASKS, "halves")):
        registry.remove(name)
    sys.modules.pop("toyplug", None)


def cli(*args: str, cwd: Path, pythonpath: list[Path], timeout: float = 300):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(map(str, [*pythonpath, ROOT]))
    return subprocess.run(
        [sys.executable, "-m", "autodlgym", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# The shared pieces ---------------------------------------------------------------------------


def test_did_you_mean_names_the_closest_names():
    assert (
        did_you_mean("resdual", ["residual", "recurrent", "mlp"]) == " (did you mean 'residual'?)"
    )
    assert did_you_mean("zzz", ["residual", "mlp"]) == ""


def test_a_registry_answers_a_typo_and_lists_its_names():
    reg: Registry = Registry("thing")
    reg.add("alpha", 1)
    reg.add("beta", 2)
    with pytest.raises(AutoDLError, match=r"unknown thing 'alpah' \(did you mean 'alpha'\?\)"):
        reg.get("alpah")
    assert reg.names() == ["alpha", "beta"] and "alpha" in reg and "gamma" not in reg


def test_entry_points_register_a_block_a_task_and_an_init_law(plugin):
    import torch

    from autodlgym import SearchSpace, build_model, get_task, list_tasks
    from autodlgym.nn.init import apply_init
    from autodlgym.searchspace.registry import BLOCKS, INIT_LAWS

    assert {"gatedconv"} <= set(BLOCKS.names()) and "half_normal" in INIT_LAWS
    space = SearchSpace.from_config(SPACE)
    # the block's registered ``uses`` decides where the kernel decision is active
    assert space["stage1.kernel"].parent_values == ("gatedconv",)
    assert BLOCKS.origin("gatedconv") == "plugin toyplug:gated_conv"
    assert INIT_LAWS.origin("half_normal") == "plugin toyplug:half_normal"  # adopted by name
    task = get_task("halves")
    assert dict(list_tasks())["halves"].startswith("which half")
    spec = next(
        s for s in map(space.sample, range(100))
        if s["stage1.block"] == "gatedconv" and s["init"] == "half_normal"
    )  # fmt: skip
    assert spec["stage1.kernel"] in (3, 5)
    model = build_model(spec, task.io)
    apply_init(model, "half_normal")
    out = model(torch.zeros(4, 1, 16))
    assert out.shape == (4, 2)


def test_a_mistyped_block_in_a_space_gets_a_hint(plugin):
    from autodlgym import SearchSpace

    bad = json.loads(json.dumps(SPACE))
    bad["stage"]["block"]["options"] = ["gatedcnv"]
    with pytest.raises(AutoDLError, match=r"did you mean 'gatedconv'\?.*register_block"):
        SearchSpace.from_config(bad)


def test_import_modules_reports_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AutoDLError, match="no module 'no_such_module_xyz'"):
        import_modules(["no_such_module_xyz"])
    (tmp_path / "raises_on_import.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(AutoDLError, match="RuntimeError: boom"):
        import_modules(["raises_on_import"])
    with pytest.raises(AutoDLError, match="not a module name"):
        import_modules(["not-a-module"])


def test_import_registers_a_block_for_every_command(tmp_path):
    (tmp_path / "userblocks.py").write_text(USER_MODULE)
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"base": "default", "stage": {"block": {"options": ["wide_mlp"]}}}))
    bare = cli("space", "show", "--space", str(space), cwd=tmp_path, pythonpath=[])
    assert bare.returncode == 2 and "unknown block 'wide_mlp'" in bare.stderr
    assert "--import" in bare.stderr
    shown = cli(
        "space",
        "show",
        "--import",
        "userblocks",
        "--space",
        str(space),
        cwd=tmp_path,
        pythonpath=[],
    )
    assert shown.returncode == 0, shown.stderr
    assert "'wide_mlp'" in shown.stdout and "stage1.kernel" not in shown.stdout


def test_a_resumed_run_imports_its_modules_again_and_says_how_to_extend(
    tmp_path, tiny_space_config
):
    (tmp_path / "userblocks.py").write_text(USER_MODULE)
    cfg = dict(tiny_space_config)
    cfg["stage"] = {**cfg["stage"], "block": {"options": ["wide_mlp"]}}
    space = tmp_path / "space.json"
    space.write_text(json.dumps(cfg))
    common = ("--epochs", "1", "--max-train-samples", "64", "--no-progress")
    first = cli(
        "search", "--import", "userblocks", "--task", "digits", "--space", str(space),
        "--trials", "2", "--out", "run", *common, cwd=tmp_path, pythonpath=[],
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    # a fresh process, no --import: the run's stored imports register wide_mlp again
    again = cli("search", "--out", "run", "--resume", "--no-progress", cwd=tmp_path, pythonpath=[])
    assert again.returncode == 0, again.stderr
    assert "--resume --trials 12" in again.stderr and "--time-budget" in again.stderr
    more = cli(
        "search", "--out", "run", "--resume", "--trials", "3", "--no-progress",
        cwd=tmp_path, pythonpath=[],
    )  # fmt: skip
    assert more.returncode == 0, more.stderr
    board = cli("leaderboard", "run", cwd=tmp_path, pythonpath=[])
    assert board.returncode == 0 and "cannot be rebuilt" not in board.stderr
    df = load_results(tmp_path / "run")
    assert len(df) == 3 and (df["status"] == "ok").all()
    assert set(df["stage1.block"]) == {"wide_mlp"}


@pytest.mark.ray
@pytest.mark.slow
def test_plugin_block_task_and_init_law_train_on_two_ray_workers(tmp_path):
    site = install(tmp_path / "site")
    (tmp_path / "userblocks.py").write_text(USER_MODULE)  # a second block, via --import
    cfg = json.loads(json.dumps(SPACE))
    cfg["stage"]["block"]["options"] = ["gatedconv", "wide_mlp"]
    space = tmp_path / "space.yaml"
    space.write_text(json.dumps(cfg))  # JSON is YAML
    ray_tmp = tmp_path / "ray"
    ray_tmp.mkdir()
    os.environ.setdefault("RAY_TMPDIR", str(ray_tmp))
    r = cli(
        "search", "--workers", "2", "--task", "halves", "--space", str(space),
        "--import", "userblocks", "--trials", "6", "--epochs", "1", "--seed", "3",
        "--out", "run", "--no-progress", cwd=tmp_path, pythonpath=[site], timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    df = load_results(tmp_path / "run")
    assert len(df) == 6
    assert (df["status"] == "ok").all(), df[["status", "message"]].to_string()
    assert df["worker"].nunique() == 2  # both Ray workers trained plugin candidates
    assert set(df["stage1.block"]) <= {"gatedconv", "wide_mlp"} and set(df["init"]) <= {
        "half_normal",
        "he_normal",
    }
    conv = df["stage1.block"] == "gatedconv"
    assert conv.any() and df.loc[conv, "stage1.kernel"].notna().all()
    assert df.loc[~conv, "stage1.kernel"].isna().all()
