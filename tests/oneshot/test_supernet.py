"""The one-shot evaluators on a tiny sub-space and a 64-example slice of MNIST-1D: weights
are inherited exactly as cut, specs outside are reported, and scores follow the weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autodlgym.oneshot import EVALUATORS, HypernetEvaluator, SupernetEvaluator, layout
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from tests.oneshot.tiny import TINY, mnist1d_slice


def spec_of(**changes):
    base = {
        "n_stages": 1, "connections": "chain", "activation": "relu", "norm": "none",
        "dropout": 0.0, "init": "he_normal", "zero_init_residual": False, "trainable": "all",
        "head_pool": "avg", "optimizer": "adam", "lr": 1e-2, "weight_decay": 0.0,
        "batch_size": 32, "grad_clip": 0.0, "stage1.block": "conv", "stage1.depth": 2,
        "stage1.width": 4, "stage1.kernel": 3, "stage1.dilation": 1,
    }  # fmt: skip
    base.update(changes)
    if base["stage1.block"] == "recurrent":
        base.pop("stage1.kernel", None)
        base.pop("stage1.dilation", None)
        base.update({"stage1.cell": "gru", "stage1.bidirectional": False})
        base["stage1.chrono_init"] = False
    return ArchSpec(base)


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return mnist1d_slice(tmp_path_factory.mktemp("slice") / "s.npz")


@pytest.fixture(scope="module")
def space():
    return SearchSpace.from_config(TINY)


@pytest.fixture(scope="module", params=sorted(EVALUATORS))
def fitted(request, space, task):
    return EVALUATORS[request.param](space, task, epochs=2, seed=0).fit()


def test_layout_counts_networks_and_partitions(space, task):
    ev = SupernetEvaluator(space, task)
    # conv: 2 widths x 2 depths x 2 kernels; recurrent: 2 widths x 2 depths
    assert len(ev.networks) == 12
    assert [dict(p)["lr"] for p in ev.partitions] == [1e-3, 1e-2]
    conv2 = ev.slots[
        "stage1,block=conv,connections=chain,norm=none|stages.0.units.1.block.conv.weight"
    ]
    assert conv2.shape == (8, 8, 5) and conv2.spatial == 1
    gru = ev.slots[
        "stage1,bidirectional=False,block=recurrent,cell=gru,connections=chain,norm=none"
        "|stages.0.units.0.block.cell.weight_hh_l0"
    ]
    assert gru.shape == (24, 8) and gru.gates == 3


@pytest.mark.parametrize("block", ["conv", "recurrent"])
def test_inherited_weights_are_the_cut_of_the_shared_ones(fitted, block):
    spec = spec_of(**{"stage1.block": block, "stage1.width": 4, "stage1.depth": 2})
    part = layout.partition_key(spec)
    net = layout.network_key(spec)
    keys = [k for k, _ in fitted._names[net.to_json()]]
    full = {k: t.detach() for k, t in fitted._slot_tensors(part, net, keys).items()}
    group = next(iter(k for k in keys if "units.1" in k)).split("|")[0]
    model = fitted.inherit(spec)
    state = model.state_dict()
    if block == "conv":
        big = full[f"{group}|stages.0.units.1.block.conv.weight"]  # (8, 8, 5)
        want = big[:4, :4, 1:4]  # first channels, the centre of the kernel
        assert torch.equal(state["stages.0.units.1.block.conv.weight"], want)
    else:
        big = full[f"{group}|stages.0.units.1.block.cell.weight_ih_l0"]  # (3 * 8, 8)
        want = torch.cat([big[g * 8 : g * 8 + 4, :4] for g in range(3)])  # per gate r, z, n
        assert torch.equal(state["stages.0.units.1.block.cell.weight_ih_l0"], want)
    head = full[f"head@{group}|head.linear.weight"]
    assert torch.equal(state["head.linear.weight"], head[:, :4])
    # the supernet's own forward equals the stand-alone network holding those weights
    x = torch.randn(5, 1, 40, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(fitted.forward(spec, x), model(x), atol=1e-6)


def test_specs_outside_are_reported_not_mapped(fitted):
    wider = fitted.score(spec_of(**{"stage1.width": 16}))
    assert wider.status == "outside" and wider.val_score is None
    assert "stage1.width=16" in wider.message
    frozen = fitted.score(spec_of(trainable="head"))
    assert frozen.status == "outside" and "trainable='head'" in frozen.message


def test_init_laws_share_a_score_and_learning_rates_do_not(fitted):
    a = fitted.score(spec_of(init="he_normal"))
    b = fitted.score(spec_of(init="orthogonal"))
    assert a.status == b.status == "ok" and a.val_score == b.val_score
    slow, fast = (fitted.inherit(spec_of(lr=lr)) for lr in (1e-3, 1e-2))
    w = "stages.0.units.0.block.conv.weight"
    assert not torch.equal(slow.state_dict()[w], fast.state_dict()[w])


def test_score_is_the_accuracy_of_the_inherited_network(fitted, task):
    spec = spec_of(**{"stage1.block": "recurrent", "stage1.width": 8, "stage1.depth": 1})
    data = task.load()
    model = fitted.inherit(spec)
    with torch.no_grad():
        pred = model(torch.tensor(data.x_val)).argmax(1).numpy()
    assert fitted.score(spec).val_score == pytest.approx(float(np.mean(pred == data.y_val)))


def test_training_is_seeded_and_changes_the_weights(space, task):
    evs = [SupernetEvaluator(space, task, epochs=1, seed=s) for s in (0, 0, 1)]
    before = evs[0].inherit(spec_of()).state_dict()
    for ev in evs:
        ev.fit()
    after = [ev.inherit(spec_of()).state_dict() for ev in evs]
    w = "stages.0.units.1.block.conv.weight"
    assert not torch.equal(before[w], after[0][w])
    assert torch.equal(after[0][w], after[1][w]) and not torch.equal(after[0][w], after[2][w])


def test_batch_norm_is_recalibrated_on_training_batches(task):
    config = {**TINY, "globals": {**TINY["globals"], "norm": {"options": ["batch"]}}}
    ev = SupernetEvaluator(SearchSpace.from_config(config), task, epochs=1, recalibrate=1).fit()
    spec = spec_of(norm="batch", **{"stage1.depth": 1})
    ev.score(spec)
    x = torch.tensor(task.load().x_train)  # 64 examples: one recalibration batch
    model = ev.inherit(spec)
    ev._recalibrate(model, x)
    conv = model.stages[0].units[0].block.conv
    with torch.no_grad():
        want = conv(x).mean(dim=(0, 2))
    bn = model.stages[0].units[0].block.post[0]
    assert torch.allclose(bn.running_mean, want, atol=1e-5)


def test_saved_weights_are_reused_only_for_the_same_setup(fitted, space, task, tmp_path):
    path = fitted.save(tmp_path / "supernet.pt")
    kind = type(fitted)
    same = kind(space, task, epochs=2, seed=0)
    assert same.load(path)
    spec = spec_of(**{"stage1.kernel": 5})
    assert same.score(spec).val_score == fitted.score(spec).val_score
    assert not kind(space, task, epochs=2, seed=1).load(path)
    assert not kind(space, task, epochs=2, seed=0).load(tmp_path / "missing.pt")


def test_hypernet_generates_each_networks_weights_from_its_encoding(space, task):
    ev = HypernetEvaluator(space, task, epochs=1, seed=0).fit()
    a, b = spec_of(**{"stage1.depth": 1}), spec_of(**{"stage1.depth": 2})
    part = layout.partition_key(a)
    bank = ev.banks[part]
    key = next(k for k in ev.slot_keys if k.endswith("units.0.block.conv.weight"))
    i = ev._index[key]
    for spec in (a, b):
        h = bank.encoder(ev.encode(spec))
        want = bank.base[i] + sum(h[k] * bank.basis[i][k] for k in range(ev.rank))
        got = ev._slot_tensors(part, layout.network_key(spec), [key])[key]
        assert torch.allclose(got, want, atol=1e-6)
    wa = ev.inherit(a).state_dict()["stages.0.units.0.block.conv.weight"]
    wb = ev.inherit(b).state_dict()["stages.0.units.0.block.conv.weight"]
    assert not torch.equal(wa, wb)  # the depth changes the generated first layer


def test_a_lookup_task_is_refused(space):
    with pytest.raises(Exception, match="lookup table"):
        SupernetEvaluator(space, "mnist1d-table")


def test_finetuning_trains_a_copy_with_the_specs_own_optimizer(space, task):
    ev = SupernetEvaluator(space, task, epochs=1, seed=3, finetune=2).fit()
    spec = spec_of(lr=1e-2)
    shared = [p.detach().clone() for p in ev.banks[layout.partition_key(spec)].parameters()]
    got = ev.score(spec).val_score
    for before, after in zip(shared, ev.banks[layout.partition_key(spec)].parameters()):
        assert torch.equal(before, after)  # scoring never changes the shared weights
    # the same two steps by hand: Adam at the spec's lr, batches of 32 in a seeded order
    data = task.load()
    x, y = torch.tensor(data.x_train), torch.tensor(data.y_train)
    model = ev.inherit(spec).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(3))
    for idx in (perm[:32], perm[32:]):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    with torch.no_grad():
        pred = model.eval()(torch.tensor(data.x_val)).argmax(1).numpy()
    assert got == pytest.approx(float(np.mean(pred == data.y_val)))
