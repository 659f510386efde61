"""build_model: every spec of the default space builds, runs forwards and backwards for every
modality; blocks, connections, downsampling, heads, trainable subsets and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autodlgym.errors import AutoDLError, SpecError
from autodlgym.nn.blocks import BlockContext, register_block
from autodlgym.nn.build import (
    CONNECTIONS,
    DOWNSAMPLES,
    HEAD_POOLS,
    AutoDLNet,
    build_model,
    configure_trainable,
)
from autodlgym.searchspace.io import IOSpec
from autodlgym.searchspace.registry import BLOCKS
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec

IOS = {
    "vector": IOSpec("vector", (40,), 10),
    "sequence": IOSpec("sequence", (1, 40), 10),
    "image": IOSpec("image", (1, 8, 8), 10),
}  # the sizes of conftest.IOS


def vectors(space: SearchSpace):
    """Every vector of the space's MultiDiscrete action space."""
    return st.tuples(*[st.integers(0, int(n) - 1) for n in space.nvec])


def check_trains(spec: ArchSpec, io: IOSpec, batch: int = 2, seed: int = 0) -> AutoDLNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(spec, io)
        configure_trainable(model, str(spec.get("trainable", "all")), seed)
        x = torch.randn(batch, *io.shape)
        out = model(x)
    assert isinstance(model, AutoDLNet)
    assert out.shape == (batch, io.n_outputs)
    assert torch.isfinite(out).all(), spec
    torch.nn.functional.cross_entropy(out, torch.arange(batch) % io.n_outputs).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), spec
    assert len(model.blocks) == len(model.block_widths) <= len(model.hidden_widths)
    assert all(w >= 1 for w in model.hidden_widths)
    return model


def _property(space: SearchSpace, io: IOSpec, vec) -> None:
    spec = space.decode(np.array(vec))
    assert space.validate(spec) == spec
    model = check_trains(spec, io)
    assert model.spec == spec
    assert len(model.blocks) == sum(
        int(spec[f"stage{i}.depth"]) for i in range(1, spec.n_stages + 1)
    )


SPACE = SearchSpace.default()


@pytest.mark.parametrize("modality", list(IOS))
@settings(max_examples=25)
@given(vec=vectors(SPACE))
def test_specs_of_the_default_space_build_and_train(modality, vec):
    _property(SPACE, IOS[modality], vec)


@pytest.mark.slow
@pytest.mark.parametrize("modality", list(IOS))
@settings(max_examples=120)
@given(vec=vectors(SPACE))
def test_many_specs_of_the_default_space_build_and_train(modality, vec):
    _property(SPACE, IOS[modality], vec)


def test_attention_without_norm_has_finite_gradients_when_its_logits_are_huge():
    # found by the property test above: four unnormalised attention blocks after inception,
    # conv and dense stages reach |h| ~ 7e4, and PyTorch's CPU flash-attention backward
    # returned NaN gradients for every parameter before the block fell back to the math kernel
    vec = [3, 5] + [0] * 12 + [1, 1] + [0] * 11 + [4, 1] + [0] * 11 + [7, 3, 1, 0, 0, 0, 1]
    vec += [0, 0, 0, 0, 1, 0, 3, 1] + [0] * 9
    spec = SPACE.decode(np.array(vec))
    assert spec["stage4.block"] == "attention" and spec["norm"] == "none"
    check_trains(spec, IOS["sequence"])


def _stage_spec(block: str, **over) -> ArchSpec:
    """A two-stage spec with ``block`` in both stages and every block option set."""
    values = {
        "n_stages": 2,
        "activation": "relu",
        "norm": "batch",
        "dropout": 0.1,
        "init": "he_normal",
        "zero_init_residual": False,
        "connections": "chain",
        "head_pool": "avg",
    }
    for i in (1, 2):
        values.update(
            {
                f"stage{i}.block": block,
                f"stage{i}.depth": 2,
                f"stage{i}.width": 12,
                f"stage{i}.kernel": 3,
                f"stage{i}.dilation": 2,
                f"stage{i}.growth": 8,
                f"stage{i}.heads": 4,
                f"stage{i}.cell": "lstm",
                f"stage{i}.bidirectional": True,
                f"stage{i}.chrono_init": True,
            }
        )
    values["stage2.downsample"] = "max"
    values.update(over)
    return ArchSpec(values)


@pytest.mark.parametrize("modality", list(IOS))
@pytest.mark.parametrize("block", BLOCKS.names())
def test_every_registered_block_works_on_every_state(block, modality):
    model = check_trains(_stage_spec(block), IOS[modality])
    assert [u.name for u in model.blocks] == [block] * 4


@pytest.mark.parametrize("modality", list(IOS))
@pytest.mark.parametrize("block", BLOCKS.names())
def test_every_block_trains_under_mixed_precision(block, modality):
    # --amp trains under torch.autocast; CPU autocast in bf16 runs the same dtype rules as
    # CUDA's, so a block mixing an fp32 state with bf16 activations fails here without a GPU
    # (found on an H200: MinimalRNN's fp32 state met its bf16 gates in torch.lerp)
    cells = ["rnn", "gru", "lstm", "minimal"] if block == "recurrent" else ["lstm"]
    for cell in cells:
        spec = _stage_spec(block, **{"stage1.cell": cell, "stage2.cell": cell})
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_model(spec, IOS[modality])
            x = torch.randn(2, *IOS[modality].shape)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(x)
        assert torch.isfinite(out.float()).all(), (block, cell)
        loss = torch.nn.functional.cross_entropy(out.float(), torch.arange(2) % 10)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), cell


@pytest.mark.parametrize("modality", list(IOS))
@pytest.mark.parametrize("first", ["mlp", "conv", "recurrent"])
@pytest.mark.parametrize("block", BLOCKS.names())
def test_blocks_follow_every_state_kind(block, first, modality):
    # stage 1 turns the input into a vector (mlp) or a sequence/image; stage 2 must read it
    check_trains(_stage_spec(block, **{"stage1.block": first}), IOS[modality])


@pytest.mark.parametrize("connections", CONNECTIONS)
@pytest.mark.parametrize("depth", [1, 3, 4])
def test_connections(connections, depth):
    spec = _stage_spec(
        "conv",
        connections=connections,
        **{"stage1.block": "mlp", "stage1.depth": depth, "stage2.depth": depth, "stage2.width": 16},
    )
    for io in IOS.values():
        check_trains(spec, io)


def test_skip_connection_adds_the_window_input():
    # with zero weights in the blocks' convs a skip2 stage outputs relu(0) + its input
    spec = _stage_spec(
        "conv", connections="skip2", norm="none", **{"n_stages": 1, "stage1.width": 1}
    )
    model = build_model(spec, IOS["sequence"])
    for p in model.stages[0].units.parameters():
        torch.nn.init.zeros_(p)
    x = torch.randn(3, 1, 40)
    model.eval()
    assert torch.allclose(model.stages[0](x), x)


@pytest.mark.parametrize("kind", DOWNSAMPLES)
@pytest.mark.parametrize("modality", list(IOS))
def test_downsampling_halves_positions_and_skips_vectors(kind, modality):
    io = IOS[modality]
    spec = _stage_spec(
        "conv",
        **{"stage1.block": "mlp" if modality == "vector" else "conv", "stage2.downsample": kind},
    )
    model = check_trains(spec, io)
    before, after = model.stages[0].out_shape, model.stages[1].units[0].in_shape
    if kind in ("none", "topk") or len(before) == 1:  # topk pools graph-level tasks only
        assert after == before
    else:
        assert after[0] == before[0]
        assert all(
            a == math.ceil(b / 2) if kind == "strided" else a == b // 2
            for a, b in zip(after[1:], before[1:])
        )


def test_lp_and_lse_pooling_values():
    from autodlgym.nn.build import Downsample

    x = torch.tensor([[[3.0, 4.0, 1.0, 1.0]]])
    lp = Downsample("lp", (1, 4))(x)
    assert torch.allclose(lp, torch.tensor([[[5.0, math.sqrt(2.0)]]]), atol=1e-4)
    lse = Downsample("lse", (1, 4))(x)
    assert torch.allclose(lse[..., 1], torch.tensor([[1.0]]))  # exact on a constant window
    # log-mean-exp lies between the window's mean and its max
    assert 3.5 < float(lse[..., 0]) < 4.0
    assert math.isclose(float(lse[..., 0]), math.log((math.exp(3) + math.exp(4)) / 2), rel_tol=1e-6)
    zeros = torch.zeros(1, 1, 4, requires_grad=True)
    Downsample("lp", (1, 4))(zeros).sum().backward()
    assert torch.isfinite(zeros.grad).all()


@pytest.mark.parametrize("pool", HEAD_POOLS)
@pytest.mark.parametrize("modality", list(IOS))
def test_head_pools(pool, modality):
    check_trains(_stage_spec("conv", head_pool=pool), IOS[modality])


def test_attention_width_rounds_up_to_a_multiple_of_heads():
    spec = _stage_spec("attention", **{"n_stages": 1, "stage1.width": 10, "stage1.heads": 4})
    model = check_trains(spec, IOS["sequence"])
    assert model.block_widths == [12, 12]
    assert model.hidden_widths == [12, 24, 12, 24]  # each block's stream and feed-forward layer


def test_wavenet_dilation_doubles_inside_a_stage():
    spec = _stage_spec("wavenet", **{"n_stages": 1, "stage1.depth": 4})
    model = build_model(spec, IOS["sequence"])
    assert [u.block.dilation for u in model.blocks] == [1, 2, 4, 8]


def test_wavenet_is_causal():
    spec = _stage_spec("wavenet", norm="none", dropout=0.0, **{"n_stages": 1, "stage1.depth": 3})
    model = build_model(spec, IOS["sequence"]).eval()
    x = torch.randn(1, 1, 40)
    y = x.clone()
    y[..., 30:] = torch.randn(10)
    a, b = model.stages[0](x), model.stages[0](y)
    assert torch.allclose(a[..., :30], b[..., :30], atol=1e-6)
    assert not torch.allclose(a[..., 30:], b[..., 30:])


def test_missing_decisions_take_defaults():
    model = check_trains(ArchSpec(), IOS["image"])
    assert [u.name for u in model.blocks] == ["conv"] and model.hidden_widths == [64]


def test_same_seed_same_model_and_global_rng_untouched():
    spec = SPACE.sample(3)
    state = torch.random.get_rng_state()
    models = []
    for _ in range(2):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(7)
            models.append(build_model(spec, IOS["sequence"]))
    assert torch.equal(torch.random.get_rng_state(), state)
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "over, word",
    [
        ({"stage1.block": "warp_drive"}, "warp_drive"),
        ({"stage1.width": 0}, "stage1.width"),
        ({"stage1.depth": 1.5}, "integer"),
        ({"connections": "web"}, "connections"),
        ({"stage2.downsample": "shrink"}, "shrink"),
        ({"head_pool": "median"}, "median"),
        ({"activation": "swish9"}, "swish9"),
        ({"norm": "group"}, "group"),
        ({"init": "zeros_please"}, "zeros_please"),
        ({"stage1.cell": "quantum"}, "quantum"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_unbuildable_specs_raise_one_line_spec_errors(over, word):
    block = "recurrent" if "stage1.cell" in over else "conv"
    with pytest.raises(AutoDLError) as err:
        build_model(_stage_spec(block, **over), IOS["sequence"])
    assert "\n" not in str(err.value) and word in str(err.value)


@pytest.fixture
def user_block():
    """Registers a user block for one test, then removes it again."""

    @register_block("scaled_linear", reads="vector", doc="a test block with its own decision")
    def scaled_linear(in_shape, ctx: BlockContext) -> torch.nn.Module:
        layer = torch.nn.Linear(in_shape[0], ctx.width)
        scale = float(ctx.get("scale", 1.0))
        if scale <= 0:
            raise ValueError("scale must be positive\nsecond line")
        return torch.nn.Sequential(layer, torch.nn.Tanh(), _Scale(scale))  # no out_shape: inferred

    yield "scaled_linear"
    BLOCKS.remove("scaled_linear")


class _Scale(torch.nn.Module):
    def __init__(self, s: float) -> None:
        super().__init__()
        self.s = s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.s


def test_user_registered_block_in_a_space_file(user_block, tmp_path):
    p = tmp_path / "space.yaml"
    p.write_text(
        "base: default\n"
        "stage:\n"
        f"  block: {{options: [conv, {user_block}]}}\n"
        f"  scale: {{options: [0.5, 2.0], when: {{block: [{user_block}]}}}}\n"
    )
    space = SearchSpace.from_file(p)
    rng = np.random.default_rng(0)
    specs = [space.sample(rng) for _ in range(30)]
    used = [s for s in specs if s["stage1.block"] == user_block]
    assert used
    for spec in used[:3]:
        for io in IOS.values():
            model = check_trains(spec, io)
            assert model.blocks[0].out_shape == (int(spec["stage1.width"]),)


def test_user_block_failure_is_a_one_line_spec_error(user_block):
    spec = ArchSpec({"stage1.block": user_block, "stage1.scale": -1.0})
    with pytest.raises(SpecError) as err:
        build_model(spec, IOS["vector"])
    assert "\n" not in str(err.value) and "scale must be positive" in str(err.value)


def test_bad_reads_is_rejected():
    with pytest.raises(AutoDLError):
        register_block("odd", reads="sideways")


# Trainable subsets -----------------------------------------------------------------------
def _spec_for_trainable() -> ArchSpec:
    return _stage_spec("residual", dropout=0.0, norm="none", **{"stage1.width": 40})


def test_trainable_head_freezes_everything_else():
    model = configure_trainable(build_model(_spec_for_trainable(), IOS["sequence"]), "head", 0)
    head = {id(p) for p in model.head.parameters()}
    assert all(p.requires_grad == (id(p) in head) for p in model.parameters())


@pytest.mark.parametrize("mode, frac", [("fraction_0.1", 0.1), ("fraction_0.5", 0.5)])
def test_trainable_fraction_masks_gradients_of_output_units(mode, frac):
    model = configure_trainable(build_model(_spec_for_trainable(), IOS["sequence"]), mode, 3)
    head = {id(p) for p in model.head.parameters()}
    x = torch.randn(4, 1, 40)
    model(x).pow(2).mean().backward()
    masked = [p for p in model.parameters() if id(p) not in head]
    assert masked and all(hasattr(p, "_autodl_mask") for p in masked)
    assert not any(hasattr(p, "_autodl_mask") for p in model.head.parameters())
    for p in masked:
        rows = p._autodl_mask.reshape(-1)
        assert rows.sum() == max(1, round(frac * p.shape[0]))
        assert (p.grad[rows == 0] == 0).all()
    conv = model.blocks[0].block.conv1
    # weight and bias share their rows
    assert torch.equal(conv.weight._autodl_mask.reshape(-1), conv.bias._autodl_mask.reshape(-1))
    again = configure_trainable(build_model(_spec_for_trainable(), IOS["sequence"]), mode, 3)
    assert torch.equal(again.blocks[0].block.conv1.weight._autodl_mask, conv.weight._autodl_mask)


@pytest.mark.parametrize("mode", ["fraction_0", "fraction_1.5", "fraction_x", "most"])
def test_bad_trainable_modes(mode):
    with pytest.raises(SpecError):
        configure_trainable(build_model(ArchSpec(), IOS["vector"]), mode, 0)


def test_trainable_block_k_trains_one_block_and_the_head():
    space = SearchSpace.from_config(
        {"base": "default", "globals": {"trainable": {"options": ["all", "block_2", "block_9"]}}}
    )
    values = {
        **{k: v for k, v in space.sample(0).items() if not k.startswith("stage")},
        "n_stages": 1, "stage1.block": "mlp", "stage1.depth": 3, "stage1.width": 16,
        "trainable": "block_2",
    }  # fmt: skip
    spec = space.validate(values)
    model = configure_trainable(build_model(spec, IOSpec("vector", (8,), 3)), "block_2")
    trains = {id(p) for p in model.parameters() if p.requires_grad}
    want = {id(p) for p in model.blocks[1].parameters()} | {id(p) for p in model.head.parameters()}
    assert trains == want
    with pytest.raises(SpecError, match="only 3 blocks"):
        configure_trainable(build_model(spec, IOSpec("vector", (8,), 3)), "block_9")
    with pytest.raises(SpecError, match="block_<k>"):
        configure_trainable(model, "block_0")
