"""The graph blocks, readouts and top-k pooling against their papers' equations, computed
directly from each part's own weights on a tiny graph (docs/blocks.md lists them)."""

from __future__ import annotations

import math

import pytest
import torch

from autodlgym.nn.blocks import BlockContext, Graph
from autodlgym.searchspace import builtins
from autodlgym.searchspace.registry import BLOCKS

pytest.importorskip("torch_geometric")

from autodlgym.nn.graph import Readout, TopKDownsample  # noqa: E402

#: a path 0-1-2-3 and an edge 1-3, both directions
EDGES = torch.tensor([[0, 1, 1, 2, 2, 3, 1, 3], [1, 0, 2, 1, 3, 2, 3, 1]])
N, F, W = 4, 3, 5


def _adjacency() -> torch.Tensor:
    a = torch.zeros(N, N)
    a[EDGES[1], EDGES[0]] = 1.0  # row i: the neighbours j that send to i
    return a


def _block(name: str, **options):
    ctx = BlockContext(W, activation="identity", options=options)
    torch.manual_seed(0)
    block = BLOCKS.get(name)((F,), ctx)
    x = torch.randn(N, F)
    return block, x, block(x, Graph(EDGES))


def _sym_norm(a: torch.Tensor) -> torch.Tensor:
    d = a.sum(1).clamp(min=1e-12).pow(-0.5)
    return d[:, None] * a * d[None, :]


def test_gcn_is_the_normalised_adjacency_with_self_loops():
    block, x, y = _block("gcn")
    conv = block.conv
    want = _sym_norm(_adjacency() + torch.eye(N)) @ x @ conv.lin.weight.T + conv.bias
    assert torch.allclose(y, want, atol=1e-5)


def test_gat_attends_over_neighbours_and_self():
    block, x, y = _block("gat", heads=1)
    conv = block.conv
    h = x @ conv.lin.weight.T
    s, d = (h * conv.att_src[0, 0]).sum(-1), (h * conv.att_dst[0, 0]).sum(-1)
    mask = (_adjacency() + torch.eye(N)) > 0
    e = torch.nn.functional.leaky_relu(d[:, None] + s[None, :], 0.2).masked_fill(~mask, -math.inf)
    want = torch.softmax(e, dim=1) @ h + conv.bias
    assert torch.allclose(y, want, atol=1e-5)


def test_gat_heads_concatenate_to_the_width_rounded_up():
    block, _, y = _block("gat", heads=2)
    assert y.shape == (N, 6) and block.out_shape == (6,)


def test_gin_is_an_mlp_of_the_node_plus_the_sum_of_its_neighbours():
    block, x, y = _block("gin")
    assert torch.allclose(y, block.conv.nn(x + _adjacency() @ x), atol=1e-5)


def test_sage_adds_the_mean_of_the_neighbours():
    block, x, y = _block("sage")
    conv = block.conv
    a = _adjacency()
    mean = (a @ x) / a.sum(1, keepdim=True)
    assert torch.allclose(y, conv.lin_l(mean) + conv.lin_r(x), atol=1e-5)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_cheb_sums_chebyshev_polynomials_of_the_scaled_laplacian(k):
    block, x, y = _block("cheb", cheb_k=k)
    conv = block.conv
    lap = -_sym_norm(_adjacency())  # 2 L / lambda_max - I with lambda_max = 2
    terms = [x, lap @ x]
    while len(terms) < k:
        terms.append(2 * lap @ terms[-1] - terms[-2])
    want = sum(lin(t) for lin, t in zip(conv.lins, terms)) + conv.bias
    assert torch.allclose(y, want, atol=1e-5)


def test_arma_one_stack_one_layer():
    block, x, y = _block("arma")
    conv = block.conv
    propagated = _sym_norm(_adjacency()) @ (x @ conv.init_weight[0])
    want = torch.relu(propagated + x @ conv.root_weight[0, 0] + conv.bias[0, 0])
    assert torch.allclose(y, want, atol=1e-5)


def test_graphconv_adds_the_sum_of_the_neighbours():
    block, x, y = _block("graphconv")
    conv = block.conv
    assert torch.allclose(y, conv.lin_rel(_adjacency() @ x) + conv.lin_root(x), atol=1e-5)


def test_fc_and_skip_ignore_the_edges():
    block, x, y = _block("fc")
    assert torch.allclose(y, block.linear(x), atol=1e-6)
    block, x, y = _block("skip")
    assert torch.equal(y, x) and block.out_shape == (F,)


@pytest.mark.parametrize("name", builtins.GRAPH_BLOCKS)
def test_without_a_graph_every_example_is_an_isolated_node(name):
    block, x, _ = _block(name, heads=2, cheb_k=2)
    lonely = block(x, None)
    alone = torch.cat(
        [block(x[i : i + 1], Graph(torch.zeros(2, 0, dtype=torch.long))) for i in range(N)]
    )
    assert torch.allclose(lonely, alone, atol=1e-5)


def test_readouts_pool_each_graph():
    x = torch.randn(5, 3)
    batch = torch.tensor([0, 0, 1, 1, 1])
    assert torch.allclose(Readout("mean", 3)(x, batch)[1], x[2:].mean(0))
    assert torch.allclose(Readout("max", 3)(x, batch)[0], x[:2].amax(0))
    assert torch.allclose(Readout("sum", 3)(x, batch)[1], x[2:].sum(0))
    att = Readout("attention", 3)
    gate = att.aggr.gate_nn
    w = torch.softmax(gate(x[2:]).squeeze(-1), 0)
    assert torch.allclose(att(x, batch)[1], (w[:, None] * x[2:]).sum(0), atol=1e-6)


def test_topk_keeps_the_best_half_of_each_graph_gated_by_its_score():
    torch.manual_seed(0)
    pool = TopKDownsample((3,))
    x = torch.randn(6, 3)
    batch = torch.tensor([0, 0, 0, 0, 1, 1])
    edges = torch.tensor([[0, 1, 2, 4], [1, 2, 3, 5]])
    y, graph = pool(x, Graph(edges, batch))
    p = pool.pool.select.weight[0]
    score = torch.tanh(x @ p / p.norm())
    keep = [int(i) for i in score[:4].topk(2).indices] + [4 + int(score[4:].argmax())]
    assert torch.allclose(
        y,
        x[sorted(keep, key=lambda i: (i >= 4, -score[i]))]
        * score[sorted(keep, key=lambda i: (i >= 4, -score[i]))][:, None],
        atol=1e-6,
    )
    assert graph.batch.tolist() == [0, 0, 1]
