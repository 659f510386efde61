"""Every block computes its paper's equation: each is checked on a tiny input against a direct
computation from its own weights (docs/blocks.md lists the papers and what differs)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autodlgym.nn.blocks import (
    SE_REDUCTION,
    AttentionBlock,
    BlockContext,
    HighwayBlock,
    InceptionBlock,
    MinimalRNN,
    ResidualBlock,
    SEBlock,
    WaveNetBlock,
    inception_reduction,
    sinusoidal_positions,
    wavenet_dilation,
)
from autodlgym.nn.build import LP_EPS, Downsample, build_model, dense_input_shape
from autodlgym.nn.init import apply_init
from autodlgym.searchspace.io import IOSpec
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec

ATOL = 1e-5


@pytest.fixture(autouse=True)
def _seeded():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def ctx(width: int, **options) -> BlockContext:
    activation = options.pop("activation", "relu")
    norm = options.pop("norm", "none")
    index = options.pop("index", 0)
    return BlockContext(width, activation, norm, 0.0, index=index, options=options)


# Highway (Srivastava et al., 2015) ------------------------------------------------------------
@pytest.mark.parametrize("law", ["he_normal", "torch_default"])
@pytest.mark.parametrize("bias", [None, -1.0, -3.0])
def test_highway_gate_starts_negative_and_mixes_transform_and_carry(law, bias):
    options = {} if bias is None else {"gate_bias": bias}
    block = apply_init(HighwayBlock((6,), ctx(6, **options)), law)
    assert torch.all(block.gate.bias == (-2.0 if bias is None else bias))
    x = torch.randn(4, 6)
    t = torch.sigmoid(x @ block.gate.weight.T + block.gate.bias)
    h = torch.relu(x @ block.transform.weight.T + block.transform.bias)
    assert torch.allclose(block(x), h * t + x * (1 - t), atol=ATOL)
    if law == "he_normal" and bias is None:
        assert float(t.detach().mean()) < 0.3  # the carry path dominates at initialisation


# Residual (He et al., 2016) ---------------------------------------------------------------------
def test_residual_adds_the_branch_to_the_shortcut_before_the_activation():
    block = ResidualBlock((3, 10), ctx(3, kernel=3))
    x = torch.randn(2, 3, 10)
    h = F.relu(F.conv1d(x, block.conv1.weight, block.conv1.bias, padding=1))
    h = F.conv1d(h, block.conv2.weight, block.conv2.bias, padding=1)
    assert torch.allclose(block(x), F.relu(h + x), atol=ATOL)


# DenseNet connectivity (Huang et al., 2017) -----------------------------------------------------
@pytest.mark.parametrize(
    "block, io",
    [("mlp", IOSpec("vector", (5,), 3)), ("conv", IOSpec("sequence", (2, 12), 3))],
)
def test_dense_connections_concatenate_every_earlier_state(block, io):
    spec = ArchSpec(
        {
            "n_stages": 1,
            "connections": "dense",
            "stage1.block": block,
            "stage1.depth": 3,
            "stage1.width": 4,
        }
    )
    model = build_model(spec, io).eval()
    stage = model.stages[0]
    c0 = io.shape[0]
    assert [u.in_shape[0] for u in stage.units] == [c0, c0 + 4, c0 + 8]
    x = torch.randn(2, *io.shape)
    s = [x]
    for unit in stage.units:
        s.append(unit(torch.cat(s, dim=1)))  # DenseNet: x_l = H_l([x_0, ..., x_{l-1}])
    assert torch.allclose(stage(x), s[-1], atol=ATOL)


def test_dense_concatenation_brings_earlier_states_to_the_current_positions():
    # a vector joins a sequence as channels at every position; a longer sequence is pooled
    assert dense_input_shape([(6,), (4, 10)]) == (10, 10)
    assert dense_input_shape([(3, 20), (4, 10)]) == (7, 10)
    assert dense_input_shape([(3, 4, 4), (5,)]) == (3 * 16 + 5,)


# Inception with 1x1 reductions (Szegedy et al., 2015) -------------------------------------------
def test_inception_reduces_before_the_wide_kernels():
    w = 16
    block = InceptionBlock((3, 9), ctx(w))
    b1, b3, b5, bp = block.branches
    r = inception_reduction(w // 4)
    assert r == 2 and b3[0].out_channels == b5[0].out_channels == r and b3[0].kernel_size == (1,)
    x = torch.randn(2, 3, 9)

    def reduce_then(seq, pad):
        z = F.relu(F.conv1d(x, seq[0].weight, seq[0].bias))
        return F.conv1d(z, seq[2].weight, seq[2].bias, padding=pad)

    out = torch.cat(
        [
            F.conv1d(x, b1.weight, b1.bias),
            reduce_then(b3, 1),
            reduce_then(b5, 2),
            F.conv1d(F.max_pool1d(x, 3, 1, 1), bp[1].weight, bp[1].bias),
        ],
        dim=1,
    )
    assert torch.allclose(block(x), F.relu(out), atol=ATOL)
    assert block.hidden_widths == [r, r, w]


# Squeeze-and-excitation (Hu et al., 2018) ---------------------------------------------------------
def test_squeeze_excitation_uses_reduction_16_and_relu():
    w = 64
    block = SEBlock((3, 7), ctx(w, activation="tanh"))  # the bottleneck is ReLU regardless
    assert block.squeeze.out_features == w // SE_REDUCTION == 4
    x = torch.randn(2, 3, 7)
    u = torch.tanh(F.conv1d(x, block.conv.weight, block.conv.bias, padding=1))
    z = u.mean(-1)  # squeeze: global average pooling
    s = torch.sigmoid(
        F.linear(F.relu(F.linear(z, block.squeeze.weight, block.squeeze.bias)), block.excite.weight)
        + block.excite.bias
    )
    assert torch.allclose(block(x), u * s[..., None], atol=ATOL)


# Lp and log-sum-exp pooling -------------------------------------------------------------------
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, 4.0])
def test_lp_pooling_with_p_a_choice(p):
    x = torch.tensor([[[3.0, -4.0, 1.0, 2.0, 0.5, -0.5]]])
    y = Downsample("lp", (1, 6), p=p)(x)
    want = [
        (abs(a) ** p + abs(b) ** p + LP_EPS) ** (1 / p) for a, b in ((3, -4), (1, 2), (0.5, -0.5))
    ]
    assert torch.allclose(y, torch.tensor([[want]]), atol=1e-5)


def test_lp_pooling_on_images_and_its_gradient_at_zero():
    x = torch.randn(2, 3, 4, 4)
    y = Downsample("lp", (3, 4, 4), p=3.0)(x)
    want = (x.abs().pow(3).unfold(2, 2, 2).unfold(3, 2, 2).sum((-1, -2)) + LP_EPS) ** (1 / 3)
    assert torch.allclose(y, want, atol=1e-5)
    zeros = torch.zeros(1, 1, 4, requires_grad=True)
    Downsample("lp", (1, 4), p=2.0)(zeros).sum().backward()
    assert torch.isfinite(zeros.grad).all()


@pytest.mark.parametrize("r", [0.5, 1.0, 5.0])
def test_lse_pooling_with_a_stated_sharpness(r):
    # Pinheiro & Collobert (2015): (1 / r) log((1 / n) sum exp(r x)) over each window
    x = torch.tensor([[[3.0, 4.0, 1.0, 1.0]]])
    y = Downsample("lse", (1, 4), r=r)(x)
    want = [math.log((math.exp(r * 3) + math.exp(r * 4)) / 2) / r, 1.0]
    assert torch.allclose(y, torch.tensor([[want]]), atol=1e-5)


def test_lse_pooling_goes_from_mean_to_max_with_r():
    x = torch.randn(1, 2, 8)
    mean, mx = F.avg_pool1d(x, 2, 2), F.max_pool1d(x, 2, 2)
    assert torch.allclose(Downsample("lse", (2, 8), r=1e-4)(x), mean, atol=1e-3)
    assert torch.allclose(Downsample("lse", (2, 8), r=1e4)(x), mx, atol=1e-3)


def test_pooling_parameters_are_decisions_of_the_default_space():
    space = SearchSpace.default()
    names = {c.name: c for c in space.choices}
    assert names["stage2.lp_p"].parent == "stage2.downsample"
    assert names["stage2.lse_r"].parent == "stage2.downsample"
    spec = ArchSpec(
        {
            "n_stages": 2,
            "stage1.block": "conv",
            "stage2.block": "conv",
            "stage2.downsample": "lp",
            "stage2.lp_p": 3.0,
        }
    )
    down = build_model(spec, IOSpec("sequence", (1, 16), 2)).stages[1].downsample
    assert down.p == 3.0


def test_the_strided_downsample_is_initialised_as_a_linear_layer():
    # no nonlinearity follows the strided conv: He's law with gain 1, not the activation's
    model = build_model(
        ArchSpec(
            {
                "n_stages": 2,
                "init": "he_normal",
                "stage1.width": 256,
                "stage2.downsample": "strided",
            }
        ),
        IOSpec("sequence", (1, 8), 2),
    )
    w = model.stages[1].downsample.conv.weight
    assert float(w.detach().std()) == pytest.approx(1 / math.sqrt(w[0].numel()), rel=0.05)


# WaveNet (van den Oord et al., 2016) ------------------------------------------------------------
def test_wavenet_dilations_cycle_within_the_sequence():
    assert [wavenet_dilation(i, 9, 40) for i in range(5)] == [1, 2, 4, 1, 2]
    assert [wavenet_dilation(i, 3, 40) for i in range(6)] == [1, 2, 4, 8, 16, 1]
    assert [wavenet_dilation(i, 3, 1) for i in range(3)] == [1, 1, 1]
    for i in range(8):
        assert (9 - 1) * wavenet_dilation(i, 9, 40) < 40  # never pads past the sequence


def test_wavenet_block_is_a_gated_causal_dilated_conv_with_residual_and_skip():
    block = WaveNetBlock((4, 12), ctx(4, kernel=2, index=2))
    assert block.dilation == 4
    x = torch.randn(2, 4, 12)
    fg = F.conv1d(F.pad(x, (4, 0)), block.conv.weight, block.conv.bias, dilation=4)
    z = torch.tanh(fg[:, :4]) * torch.sigmoid(fg[:, 4:])
    res, skip = block(x)
    assert torch.allclose(res, x + F.conv1d(z, block.res.weight, block.res.bias), atol=ATOL)
    assert torch.allclose(skip, F.conv1d(z, block.skip.weight, block.skip.bias), atol=ATOL)


# MinimalRNN (Chen, 2017) ------------------------------------------------------------------------
def test_minimal_rnn_follows_its_update_equations():
    rnn = MinimalRNN(3, 5)
    cell = rnn.directions[0]
    x = torch.randn(2, 6, 3)
    h = torch.zeros(2, 5)
    outs = []
    for t in range(6):
        z = torch.tanh(cell.phi(x[:, t]))  # z_t = Phi(x_t)
        u = torch.sigmoid(h @ cell.gate_h.weight.T + z @ cell.gate_z.weight.T + cell.gate_z.bias)
        h = u * h + (1 - u) * z
        outs.append(h)
    y, _ = rnn(x)
    assert torch.allclose(y, torch.stack(outs, 1), atol=ATOL)


# Transformer encoder layer (Vaswani et al., 2017), pre-norm ----------------------------------------
@pytest.mark.parametrize("index", [0, 1])
def test_attention_block_is_a_pre_norm_encoder_layer(index):
    d, heads, length = 4, 2, 5
    block = AttentionBlock((d, length), ctx(d, heads=heads, norm="layer", index=index)).eval()
    x = torch.randn(2, d, length)
    s = x + (sinusoidal_positions(d, length) if index == 0 else 0)
    t = s.transpose(1, 2)  # (B, L, d)

    def ln(v, norm):
        return F.layer_norm(v, (d,), norm.weight, norm.bias, norm.eps)

    h = ln(t, block.norm1)
    q, k, v = F.linear(h, block.attn.in_proj_weight, block.attn.in_proj_bias).chunk(3, dim=-1)
    dh = d // heads

    def split(a):
        return a.reshape(2, length, heads, dh).transpose(1, 2)

    att = torch.softmax(split(q) @ split(k).transpose(-1, -2) / math.sqrt(dh), dim=-1)
    mixed = (att @ split(v)).transpose(1, 2).reshape(2, length, d)
    t = t + F.linear(mixed, block.attn.out_proj.weight, block.attn.out_proj.bias)
    f = F.relu(F.linear(ln(t, block.norm2), block.ffn1.weight[..., 0], block.ffn1.bias))
    t = t + F.linear(f, block.ffn2.weight[..., 0], block.ffn2.bias)
    assert torch.allclose(block(x), t.transpose(1, 2), atol=ATOL)
