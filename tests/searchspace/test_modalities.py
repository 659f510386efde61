"""Priors by modality: a task's default space offers the blocks registered for its inputs'
modality, and a vector's space narrows kernel and dilation to 1; the data budget of a user's
data follows its size and the machine's measured speed."""

from __future__ import annotations

import pytest

from autodlgym.searchspace import builtins
from autodlgym.searchspace.config import default_config, modality_priors
from autodlgym.searchspace.constraints import data_budget
from autodlgym.searchspace.registry import BLOCKS, block_modalities, register_block
from autodlgym.searchspace.space import SearchSpace


def _options(space: SearchSpace, name: str) -> tuple:
    return tuple(next(c for c in space.choices if c.name == name).options)


@pytest.mark.parametrize("modality", builtins.ALL)
@pytest.mark.parametrize("block", list(builtins.BLOCKS))
def test_a_modality_default_space_offers_exactly_the_blocks_registered_for_it(block, modality):
    offered = default_config(modality)["stage"]["block"]["options"]
    assert (block in offered) == (modality in builtins.BLOCKS[block].modalities)
    assert (block in offered) == (modality in block_modalities(block))


def test_tables_get_no_locality_or_order_priors_and_kernel_one():
    space = SearchSpace.default("vector")
    blocks = _options(space, "stage1.block")
    assert set(blocks) == {"mlp", "residual", "highway", "se"}
    assert not {"conv", "recurrent", "wavenet", "attention"} & set(blocks)
    assert _options(space, "stage1.kernel") == (1,)
    assert _options(space, "stage1.dilation") == (1,)
    # sequences keep every block (MNIST-1D's space is what it was); images no recurrence
    assert _options(SearchSpace.default("sequence"), "stage1.block") == tuple(
        _options(SearchSpace.default(), "stage1.block")
    )
    assert not {"recurrent", "wavenet"} & set(
        _options(SearchSpace.default("image"), "stage1.block")
    )


def test_a_plugin_block_declares_its_modalities_and_old_registrations_fit_all():
    try:

        @register_block("test_everywhere", reads="vector")
        def everywhere(in_shape, ctx):  # pragma: no cover - never built
            raise AssertionError

        @register_block("test_images_only", reads="spatial", modalities=("image",))
        def images_only(in_shape, ctx):  # pragma: no cover - never built
            raise AssertionError

        assert block_modalities("test_everywhere") == builtins.ALL
        assert block_modalities("test_images_only") == ("image",)
        why = {b: (offered, reason) for b, offered, reason in modality_priors("vector")}
        assert why["test_everywhere"][0] and not why["test_images_only"][0]
        assert "image only" in why["test_images_only"][1]
        with pytest.raises(Exception, match="modality 'audio' is unknown"):
            register_block("test_bad", modalities=("audio",))
    finally:
        for name in ("test_everywhere", "test_images_only"):
            BLOCKS.remove(name)


def test_a_task_default_space_follows_its_modality():
    from autodlgym.tasks import get_task

    assert get_task("digits").default_space() == SearchSpace.default(get_task("digits").io.modality)


def test_data_budget_follows_rows_inputs_and_speed():
    b = data_budget(n_train=1000, input_size=13, flops_per_second=3e9)
    # 3e9 * 10 s / (3 * 1000) = 1e7 FLOPs; 50 params per row = 50k
    assert b.max_flops == 10_000_000 and b.max_params == 50_000
    # rounded down to 1-2-5 steps: a slightly different speed gives the same budget
    assert data_budget(1000, 13, 3.3e9) == b
    # many inputs: at least 256 params per input value; few rows: the floor
    assert data_budget(100, 1024, 3e9).max_params == 200_000
    assert data_budget(10, 4, 3e9).max_params == 20_000
    # a faster machine, or fewer rows, allows more FLOPs (within the range)
    assert data_budget(100, 13, 3e9).max_flops == 100_000_000
    assert data_budget(1, 13, 1e15).max_flops == 1_000_000_000


def test_a_search_on_a_users_table_gets_the_data_budget_and_the_table_space(tmp_path, monkeypatch):
    import numpy as np

    from autodlgym.run import plan
    from autodlgym.runner import RunConfig
    from autodlgym.training import limits

    monkeypatch.setattr(limits, "_PROCESS", limits.Throughput(1e-4, 3e9, ratios=[1.0]))
    rng = np.random.default_rng(0)
    rows = ["a,b,c,target"] + [
        f"{x:.3f},{y:.3f},{z:.3f},{int(x > 0)}" for x, y, z in rng.normal(size=(200, 3))
    ]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    task_name, kw = f"csv:{tmp_path / 't.csv'}", {"target": "target"}
    config = RunConfig(out=str(tmp_path / "run"), task=task_name, task_kwargs=dict(kw), trials=1)
    _, task, space = plan(config)
    n_train = len(task.load().y_train)
    assert space.constraints == data_budget(n_train, 3, 3e9)
    assert set(_options(space, "stage1.block")) == {"mlp", "residual", "highway", "se"}
    # an explicit limit, or a built-in task's own budget, is left alone
    _, _, given = plan(
        RunConfig(
            out="x",
            task=task_name,
            task_kwargs=dict(kw),
            trials=1,
            max_params=1000,
            max_flops="none",
        )  # fmt: skip
    )
    assert given.constraints.max_params == 1000 and given.constraints.max_flops is None


def test_a_vector_space_has_the_tabular_training_priors_and_no_dead_decisions():
    space = SearchSpace.default("vector")
    names = {c.name for c in space.choices}
    # nothing a vector cannot use: no pooling over columns, every weight trains
    assert not {"stage2.downsample", "stage2.lp_p", "head_pool", "trainable", "momentum"} & names
    assert set(_options(space, "optimizer")) == {"adam", "adamw"}
    assert max(_options(space, "lr")) <= 1e-2 and "instance" not in _options(space, "norm")
    assert max(_options(space, "weight_decay")) == 0.1
    # other modalities keep the general options
    seq = SearchSpace.default("sequence")
    assert "sgd" in _options(seq, "optimizer") and "stage2.downsample" in {
        c.name for c in seq.choices
    }
    # every vector spec validates and builds (the builder's defaults stand for what is left out)
    import numpy as np
    import torch

    from autodlgym.nn.build import build_model
    from autodlgym.searchspace.io import IOSpec

    rng = np.random.default_rng(0)
    for _ in range(8):
        spec = space.sample(rng)
        model = build_model(spec, IOSpec("vector", (7,), 3))
        assert model(torch.randn(4, 7)).shape == (4, 3)


def test_space_show_says_what_a_vector_space_narrows_and_leaves_out():
    from autodlgym.searchspace.config import modality_decisions

    lines = modality_decisions("vector")
    assert any("optimizer" in ln and "adamw" in ln for ln in lines)
    assert any("left out" in ln and "downsample" in ln for ln in lines)
    assert modality_decisions("image") == []
