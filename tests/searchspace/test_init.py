"""Init laws: variances match their formulas, gains, deep ReLU stacks, per-gate recurrent
init, chrono init and zero-init of residual branches."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from autodlgym.errors import AutoDLError
from autodlgym.nn.build import build_model
from autodlgym.nn.init import (
    SECOND_MOMENT_GAINS,
    activation_gain,
    apply_init,
    chrono_init_,
    he_normal,
    mark,
    register_init,
)
from autodlgym.searchspace.io import IOSpec
from autodlgym.searchspace.registry import INIT_LAWS
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.training.diagnostics import diagnose

FAN_IN, FAN_OUT = 1024, 512
RELU = math.sqrt(2.0)
#: weight variance of each built-in law for a (FAN_OUT x FAN_IN) layer followed by ReLU
EXPECTED_VAR = {
    "glorot_uniform": RELU**2 * 2 / (FAN_IN + FAN_OUT),
    "glorot_normal": RELU**2 * 2 / (FAN_IN + FAN_OUT),
    "he_uniform": RELU**2 / FAN_IN,
    "he_normal": RELU**2 / FAN_IN,
    "lecun_normal": 1.0 / FAN_IN,
    "orthogonal": RELU**2 / FAN_IN,  # orthonormal rows of a wide matrix: |row|^2 = gain^2
    "torch_default": 1.0 / (3 * FAN_IN),  # kaiming_uniform_(a=sqrt(5)): U[-1/sqrt(fan_in), ...]
}


@pytest.mark.parametrize("law", INIT_LAWS.names())
def test_output_variance_of_a_wide_linear_layer_matches_the_law(law):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layer = nn.Linear(FAN_IN, FAN_OUT)
        apply_init(layer, law, activation="relu")
        x = torch.randn(256, FAN_IN)
        with torch.no_grad():
            y = layer(x)
    assert torch.isfinite(y).all() and y.var() > 0
    if law not in EXPECTED_VAR:
        pytest.skip(f"no closed form known for user law {law!r}")
    expected = FAN_IN * EXPECTED_VAR[law] * float(x.pow(2).mean())
    assert float(y.var()) == pytest.approx(expected, rel=0.06)
    if INIT_LAWS.meta(law).get("keeps_torch_init"):
        assert layer.bias.abs().sum() > 0  # torch's bias init is kept
    else:
        assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize("name", sorted(SECOND_MOMENT_GAINS))
def test_documented_gains_preserve_the_second_moment(name):
    z = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    phi = {"gelu": nn.functional.gelu, "silu": nn.functional.silu, "elu": nn.functional.elu}[name]
    assert activation_gain(name) == pytest.approx(
        1 / math.sqrt(float(phi(z).pow(2).mean())), rel=5e-3
    )


def test_torch_gains_and_unknown_activation():
    assert activation_gain("relu") == pytest.approx(math.sqrt(2))
    assert activation_gain("tanh") == pytest.approx(5 / 3)
    with pytest.raises(AutoDLError):
        activation_gain("wiggle")
    with pytest.raises(AutoDLError) as err:
        apply_init(nn.Linear(2, 2), "no_such_law")
    assert "\n" not in str(err.value)


class Stack(nn.Module):
    """``depth`` Linear+ReLU blocks and a linear head, with ``blocks`` for diagnostics."""

    def __init__(self, depth: int = 50, width: int = 256, n_in: int = 64) -> None:
        super().__init__()
        layers = [
            nn.Sequential(nn.Linear(n_in if i == 0 else width, width), nn.ReLU())
            for i in range(depth)
        ]
        self.body = nn.Sequential(*layers)
        self.head = mark(nn.Linear(width, 10), gain="linear")
        self.blocks = list(layers)
        self.hidden_widths = [width] * depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@pytest.fixture
def scaled_laws():
    """He normal scaled by 1.5 and by 0.5, registered with the public decorator."""
    names = []
    for scale in (1.5, 0.5):
        name = f"he_normal_x{scale}"

        @register_init(name)
        def law(weight: torch.Tensor, gain: float, scale: float = scale) -> None:
            he_normal(weight, gain * scale)

        names.append(name)
    yield names
    for name in names:
        INIT_LAWS.remove(name)


def test_he_keeps_gain_near_one_through_50_relu_layers_and_scaled_laws_explode_or_vanish(
    scaled_laws,
):
    x = torch.randn(64, 64, generator=torch.Generator().manual_seed(1))
    results = {}
    for law in ["he_normal", *scaled_laws]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = apply_init(Stack(), law, activation="relu")
        results[law] = diagnose(model, x)
    he = results["he_normal"]
    assert 0.85 < he.to_columns()["diag_gain_geomean"] < 1.15
    assert all(0.6 < g < 1.6 for g in he.gains)
    for law, per_block in zip(scaled_laws, (2.25, 0.25)):
        d = results[law]
        # every block multiplies the second moment by scale^2: geometric growth or decay
        assert d.to_columns()["diag_gain_geomean"] == pytest.approx(per_block, rel=0.15)
        trend = math.log(d.gains[-1] / d.gains[0])
        assert abs(trend) < 1.0  # the per-block factor is constant along the stack
    ratio_up = math.log(results[scaled_laws[0]].out_in_var / he.out_in_var) / 50
    ratio_down = math.log(results[scaled_laws[1]].out_in_var / he.out_in_var) / 50
    assert ratio_up == pytest.approx(math.log(2.25), abs=0.1)
    assert ratio_down == pytest.approx(math.log(0.25), abs=0.1)


def test_recurrent_weights_are_initialised_per_gate():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        lstm = apply_init(nn.LSTM(256, 256), "he_normal", activation="relu")
    i, f, g, o = lstm.weight_ih_l0.detach().chunk(4)
    # sigmoid gates gain 1, the tanh candidate 5/3, each with fan-in 256
    for gate in (i, f, o):
        assert float(gate.std()) == pytest.approx(1 / 16, rel=0.05)
    assert float(g.std()) == pytest.approx(5 / 3 / 16, rel=0.05)
    assert torch.count_nonzero(lstm.bias_ih_l0) == 0


def test_gate_gains_must_split_the_rows():
    with pytest.raises(AutoDLError):
        apply_init(mark(nn.Linear(4, 5), gate_gains=("tanh", "sigmoid")), "he_normal")


def _recurrent_spec(cell: str, chrono: bool, bidirectional: bool = False) -> ArchSpec:
    return ArchSpec(
        {
            "init": "glorot_uniform",
            "stage1.block": "recurrent",
            "stage1.cell": cell,
            "stage1.width": 32,
            "stage1.depth": 2,
            "stage1.bidirectional": bidirectional,
            "stage1.chrono_init": chrono,
        }
    )


SEQ = IOSpec("sequence", (3, 40), 5)
LOG_TMAX = math.log(40 - 1)


def _gate_biases(block: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """(retain-gate bias, input-gate bias or None) per direction, from the ih biases."""
    cell = block.cell
    if isinstance(cell, nn.LSTM):
        h = cell.hidden_size
        return [
            (b[h : 2 * h], b[:h]) for n, b in cell.named_parameters() if n.startswith("bias_ih")
        ]
    if isinstance(cell, nn.GRU):
        h = cell.hidden_size
        return [(b[h : 2 * h], None) for n, b in cell.named_parameters() if n.startswith("bias_ih")]
    return [(d.gate_z.bias, None) for d in cell.directions]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", ["lstm", "gru", "minimal"])
def test_chrono_biases_lie_in_range(cell, bidirectional):
    model = build_model(_recurrent_spec(cell, True, bidirectional), SEQ)
    for unit in model.blocks:
        pairs = _gate_biases(unit.block)
        assert len(pairs) == (2 if bidirectional else 1)
        for retain, inp in pairs:
            assert (retain >= 0).all() and (retain <= LOG_TMAX + 1e-6).all()
            assert retain.std() > 0.1  # drawn per unit, not one constant
            if inp is not None:
                assert torch.equal(inp, -retain)
        for n, p in unit.block.cell.named_parameters():
            if n.startswith("bias_hh"):
                assert torch.count_nonzero(p) == 0


@pytest.mark.parametrize("cell", ["lstm", "gru", "minimal"])
def test_without_chrono_gate_biases_are_zero(cell):
    model = build_model(_recurrent_spec(cell, False), SEQ)
    for unit in model.blocks:
        for retain, _ in _gate_biases(unit.block):
            assert torch.count_nonzero(retain) == 0


def test_chrono_with_tiny_tmax_is_zero_and_apply_init_can_chrono_everything():
    lstm = nn.LSTM(4, 8)
    assert chrono_init_(lstm, 2) == 1
    assert torch.count_nonzero(lstm.bias_ih_l0[:16]) == 0  # input and forget gates: log(1)
    model = apply_init(nn.Sequential(nn.GRU(4, 8), nn.Linear(8, 2)), "he_normal", chrono_tmax=100)
    z = model[0].bias_ih_l0[8:16]
    assert (z > 0).all() and (z <= math.log(99)).all()


def _zero_spec(block: str, norm: str) -> ArchSpec:
    return ArchSpec(
        {
            "init": "he_normal",
            "norm": norm,
            "zero_init_residual": True,
            "stage1.block": block,
            "stage1.width": 8,
            "stage1.depth": 2,
            "stage1.kernel": 3,
            "stage1.dilation": 1,
            "stage1.heads": 2,
        }
    )


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_zero_init_residual_makes_residual_blocks_start_as_their_shortcut(norm):
    model = build_model(_zero_spec("residual", norm), IOSpec("sequence", (8, 40), 3))
    unit = model.blocks[1]  # 8 -> 8 channels: the shortcut is the identity
    x = torch.randn(4, 8, 40)
    assert torch.allclose(unit(x), torch.relu(x), atol=1e-6)
    conv2_zero = torch.count_nonzero(unit.block.conv2.weight) == 0
    assert conv2_zero == (norm == "none")  # with a norm, the norm's scale is what is zeroed


def test_zero_init_residual_for_attention_and_wavenet():
    attn = build_model(_zero_spec("attention", "layer"), IOSpec("sequence", (8, 40), 3))
    unit = attn.blocks[1]
    x = torch.randn(4, 8, 40)
    assert torch.allclose(unit(x), x, atol=1e-6)
    wave = build_model(_zero_spec("wavenet", "none"), IOSpec("sequence", (8, 40), 3))
    state, skip = wave.blocks[1](x)
    assert torch.allclose(state, x, atol=1e-6) and skip.abs().sum() > 0


def test_without_zero_init_residual_branches_are_live():
    spec = _zero_spec("residual", "none").replace(zero_init_residual=False)
    model = build_model(spec, IOSpec("sequence", (8, 40), 3))
    x = torch.randn(4, 8, 40)
    assert not torch.allclose(model.blocks[1](x), torch.relu(x), atol=1e-3)
