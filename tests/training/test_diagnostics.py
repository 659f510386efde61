"""Diagnostics at initialisation: the values are right and the model is left as it was."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from autodlgym.errors import AutoDLError
from autodlgym.nn.build import build_model, configure_trainable
from autodlgym.searchspace.io import IOSpec
from autodlgym.searchspace.registry import BLOCKS
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.training.diagnostics import SCALARS, Diagnostics, diagnose

IOS = {
    "vector": IOSpec("vector", (40,), 10),
    "sequence": IOSpec("sequence", (1, 40), 10),
    "image": IOSpec("image", (1, 8, 8), 10),
}
SPACE = SearchSpace.default()


def snapshot(model: nn.Module) -> dict:
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "grads": {
            k: None if p.grad is None else p.grad.clone() for k, p in model.named_parameters()
        },
        "modes": {k: m.training for k, m in model.named_modules()},
        "requires_grad": {k: p.requires_grad for k, p in model.named_parameters()},
    }


def assert_same(a: dict, b: dict) -> None:
    assert a["modes"] == b["modes"] and a["requires_grad"] == b["requires_grad"]
    assert a["state"].keys() == b["state"].keys()
    for k in a["state"]:
        assert torch.equal(a["state"][k], b["state"][k]), k
    for k, g in a["grads"].items():
        assert (g is None) == (b["grads"][k] is None), k
        if g is not None:
            assert torch.equal(g, b["grads"][k]), k


def _busy_spec() -> ArchSpec:
    return ArchSpec(
        {
            "n_stages": 2,
            "norm": "batch",
            "dropout": 0.5,
            "init": "he_normal",
            "connections": "skip2",
            "stage1.block": "residual",
            "stage1.depth": 2,
            "stage1.width": 16,
            "stage2.block": "attention",
            "stage2.heads": 2,
            "stage2.depth": 2,
            "stage2.width": 16,
            "stage2.downsample": "avg",
        }
    )


@pytest.mark.parametrize("mode", ["train", "eval", "mixed"])
def test_diagnose_leaves_the_model_as_it_was(mode):
    model = build_model(_busy_spec(), IOS["sequence"])
    if mode == "eval":
        model.eval()
    elif mode == "mixed":
        model.eval()
        model.stages[1].train()
    x, y = torch.randn(16, 1, 40), torch.randint(10, (16,))
    before = snapshot(model)
    d = diagnose(model, x, y)
    assert_same(before, snapshot(model))
    assert all(p.grad is None for p in model.parameters())
    # existing gradients are left alone too
    model(x).sum().backward()
    before = snapshot(model)
    again = diagnose(model, x, y)
    assert_same(before, snapshot(model))
    assert again.to_columns() == pytest.approx(d.to_columns(), rel=1e-4, nan_ok=True)


def test_diagnose_is_deterministic_for_a_seed():
    model = build_model(_busy_spec(), IOS["sequence"])
    x = torch.randn(16, 1, 40)
    a, b = diagnose(model, x, seed=3), diagnose(model, x, seed=3)
    assert a.to_dict() == b.to_dict()


def test_columns_and_dict_are_flat_and_json_ready():
    model = build_model(_busy_spec(), IOS["sequence"])
    d = diagnose(model, torch.randn(32, 1, 40), torch.randint(10, (32,)))
    cols = d.to_columns()
    assert all(k.startswith("diag_") for k in cols)
    assert all(v is None or isinstance(v, int | float) for v in cols.values())
    for key in (
        "diag_gain_mean",
        "diag_gain_geomean",
        "diag_out_in_var",
        "diag_grad_norm_total",
        "diag_hanin",
        "diag_jacobian",
        "diag_naswot",
        "diag_gradnorm",
    ):
        assert isinstance(cols[key], float) and math.isfinite(cols[key]), key
    full = d.to_dict()
    layers = full["layers"]
    assert (
        len(layers["gain"]) == len(layers["grad_norm"]) == len(layers["block"]) == len(model.blocks)
    )
    # one naming scheme: the stored scalars are the columns without their prefix
    assert {f"diag_{k}": v for k, v in full.items() if k in SCALARS} == cols
    assert set(cols) == {f"diag_{k}" for k in SCALARS}
    json.dumps(full, allow_nan=False)
    json.dumps(cols, allow_nan=False)
    assert cols["diag_hanin"] == pytest.approx(sum(1 / w for w in model.hidden_widths))
    assert cols["diag_n_params"] == sum(p.numel() for p in model.parameters())


class Linear(nn.Module):
    def __init__(self, n_in: int = 20, n_out: int = 5) -> None:
        super().__init__()
        self.layer = nn.Linear(n_in, n_out)
        self.act = nn.ReLU()
        self.head = nn.Linear(n_out, 3)
        self.blocks = [self.layer]
        self.hidden_widths = [n_out]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.layer(x)))


def test_values_match_direct_computations():
    torch.manual_seed(0)
    model = Linear()
    x = torch.randn(12, 20)
    y = torch.randint(3, (12,))
    d = diagnose(model, x, y, n_projections=200)
    # gain and output/input variance ratio
    with torch.no_grad():
        h = model.layer(x)
        out = model(x)
    assert d.gains[0] == pytest.approx(float(h.pow(2).mean() / x.pow(2).mean()), rel=1e-5)
    assert d.out_in_var == pytest.approx(float(out.var() / x.var()), rel=1e-5)
    # gradient norms of an ordinary backward pass
    ref = copy.deepcopy(model)
    nn.functional.cross_entropy(ref(x), y).backward()
    total = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in ref.parameters()))
    assert d.grad_norm_total == pytest.approx(total, rel=1e-5)
    assert d.gradnorm == pytest.approx(
        sum(float(p.grad.norm()) for p in ref.parameters()), rel=1e-5
    )
    block = math.sqrt(float(ref.layer.weight.grad.pow(2).sum() + ref.layer.bias.grad.pow(2).sum()))
    assert d.grad_norms[0] == pytest.approx(block, rel=1e-5)
    # exact Jacobian Frobenius norm per example: head.W diag(relu') layer.W
    jac = torch.stack([torch.autograd.functional.jacobian(model, xi[None])[0, :, 0] for xi in x])
    exact = math.sqrt(float(jac.pow(2).sum()) / len(x))
    assert d.jacobian == pytest.approx(exact, rel=0.15)
    # NASWOT: log-determinant of the agreement kernel of the binary codes
    c = (h > 0).double()
    k = c @ c.T + (1 - c) @ (1 - c).T
    assert d.naswot == pytest.approx(float(torch.linalg.slogdet(k)[1]), rel=1e-9)


def test_naswot_of_duplicate_examples_is_undefined():
    model = Linear()
    x = torch.randn(1, 20).repeat(4, 1)
    d = diagnose(model, x)
    assert d.naswot == -math.inf and d.to_columns()["diag_naswot"] is None


def test_frozen_layers_have_zero_gradient_norm_and_mse_loss_works():
    model = configure_trainable(build_model(_busy_spec(), IOS["sequence"]), "head", 0)
    d = diagnose(model, torch.randn(8, 1, 40), torch.randn(8, 10), loss="mse")
    assert all(g == 0 for g in d.grad_norms)
    assert d.grad_norm_total > 0 and d.n_trainable < d.n_params
    d_none = diagnose(model, torch.randn(8, 1, 40), loss="mse")
    assert math.isfinite(d_none.loss)


def test_unknown_loss():
    with pytest.raises(AutoDLError):
        diagnose(Linear(), torch.randn(4, 20), loss="hinge")


def test_a_plain_module_is_diagnosed_through_its_weight_layers():
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 4))
    d = diagnose(model, torch.randn(16, 10))
    # the output layer (4 units) is not hidden: only the 32-wide layer counts
    assert len(d.gains) == 2 and d.hanin == pytest.approx(1 / 32) and d.hidden_widths == [32]
    assert isinstance(d, Diagnostics)


@pytest.mark.parametrize("modality", list(IOS))
@settings(max_examples=5)
@given(seed=st.integers(0, 2**32 - 1))
def test_diagnostics_of_sampled_specs(modality, seed):
    spec = SPACE.sample(np.random.default_rng(seed))
    io = IOS[modality]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed % 1000)
        model = build_model(spec, io)
    configure_trainable(model, str(spec["trainable"]), 0)
    before = snapshot(model)
    d = diagnose(model, torch.randn(4, *io.shape), torch.randint(10, (4,)))
    assert_same(before, snapshot(model))
    cols = d.to_columns()
    assert cols["diag_n_blocks"] == len(model.blocks)
    assert cols["diag_hanin"] is not None and cols["diag_loss"] is not None


def test_hanin_counts_every_hidden_width_inside_blocks():
    spec = ArchSpec(
        {
            "n_stages": 2,
            "stage1.block": "dense",
            "stage1.growth": 8,
            "stage1.width": 32,
            "stage2.block": "attention",
            "stage2.width": 16,
        }
    )
    model = build_model(spec, IOS["sequence"])
    # three growth layers and the transition; the attention stream and its feed-forward layer
    assert model.hidden_widths == [8, 8, 8, 32, 16, 32]
    d = diagnose(model, torch.randn(8, 1, 40))
    assert d.hanin == pytest.approx(3 / 8 + 1 / 32 + 1 / 16 + 1 / 32)


class TwoActs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.head = nn.Linear(6, 7), nn.Linear(7, 5), nn.Linear(5, 2)
        self.tanh, self.relu = nn.Tanh(), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.relu(self.b(self.tanh(self.a(x)))))


def test_naswot_codes_are_the_pre_activations_of_every_nonlinearity():
    torch.manual_seed(1)
    model = TwoActs()
    x = torch.randn(10, 6)
    d = diagnose(model, x)
    with torch.no_grad():
        pre1 = model.a(x)
        pre2 = model.b(torch.tanh(pre1))
    c = torch.cat([pre1 > 0, pre2 > 0], dim=1).double()
    k = c @ c.T + (1 - c) @ (1 - c).T
    assert d.naswot_units == 12
    assert d.naswot == pytest.approx(float(torch.linalg.slogdet(k)[1]), rel=1e-9)


def test_naswot_of_an_lstm_reads_the_sign_of_its_hidden_state():
    spec = ArchSpec(
        {"n_stages": 1, "stage1.block": "recurrent", "stage1.cell": "lstm", "stage1.width": 6}
    )
    model = build_model(spec, IOS["sequence"])
    x = torch.randn(9, 1, 40)
    d = diagnose(model, x)
    with torch.no_grad():
        h, _ = model.blocks[0].block.cell(x.transpose(1, 2))
    c = (h > 0).flatten(1).double()
    k = c @ c.T + (1 - c) @ (1 - c).T
    assert d.naswot_units == 6 * 40
    assert d.naswot == pytest.approx(float(torch.linalg.slogdet(k)[1]), rel=1e-9)


#: pre-activation units per position that one block of width w (input channels w) codes
UNITS_PER_POSITION = {
    "mlp": lambda w: w,
    "conv": lambda w: w,
    "residual": lambda w: 2 * w,
    "highway": lambda w: 2 * w,  # the transform's activation and the gate's sigmoid
    "dense": lambda w: 3 * 16 + w,  # three growth layers, then the block's activation
    "inception": lambda w: 2 * (w // 8) + w,  # the two reductions, then the block's activation
    "se": lambda w: w,  # the conv's activation; the squeeze path is per example, added below
    "attention": lambda w: 2 * w,  # the feed-forward layer; softmax has no binary code
    "recurrent": lambda w: w,  # the hidden state of torch's GRU
    "wavenet": lambda w: 2 * w,  # tanh filter and sigmoid gate
}


@pytest.mark.parametrize("block", sorted(UNITS_PER_POSITION))
def test_naswot_counts_the_same_kind_of_unit_in_every_block(block):
    w, length = 16, 10
    spec = ArchSpec({"n_stages": 1, "stage1.block": block, "stage1.width": w, "stage1.depth": 1})
    io = IOSpec("sequence", (w, length), 3)
    model = build_model(spec, io)
    d = diagnose(model, torch.randn(8, w, length))
    positions = 1 if BLOCKS.meta(block)["reads"] == "vector" else length
    extra = 0
    if block == "se":
        extra = 1 + w  # the bottleneck's ReLU (16 // 16 units) and the excitation's sigmoid
    if block == "wavenet":
        extra = w * length  # the stage's activation on state + skips
    assert d.naswot_units == UNITS_PER_POSITION[block](w) * positions + extra
