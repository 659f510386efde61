"""Graph tasks: generated graphs measured against their options, a user's graph file and its
one-line errors, training on nodes and on batches of graphs, the cost model, searches and
the Gymnasium ids on a graph task."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch_geometric")

import torch  # noqa: E402

from autodlgym import SearchSpace  # noqa: E402
from autodlgym.nn.build import build_model  # noqa: E402
from autodlgym.searchspace.cost import estimate_cost  # noqa: E402
from autodlgym.tasks import get_task  # noqa: E402
from autodlgym.training.trainer import train_and_score, train_model  # noqa: E402
from autodlgym.trial import OK, Fidelity  # noqa: E402

GCN = {"n_stages": 1, "stage1.block": "gcn", "stage1.depth": 2, "stage1.width": 16, "lr": 1e-2}
SMALL = {"nodes": 300}


def _homophily(g) -> float:
    y, e = g.y.numpy(), g.edge_index.numpy()
    return float((y[e[0]] == y[e[1]]).mean())


@pytest.mark.parametrize("h", [0.0, 0.5, 0.9])
def test_csbm_has_the_homophily_degree_and_classes_it_is_given(h):
    task = get_task("csbm", homophily=h, nodes=2000, classes=3)
    g = task.load().graphs[0]
    assert _homophily(g) == pytest.approx(h, abs=0.03)
    assert g.edge_index.shape[1] / 2000 == pytest.approx(5.0, rel=0.1)  # mean degree
    assert np.bincount(g.y.numpy()).tolist() == [667, 667, 666]
    assert task.io.modality == "node" and task.io.n_outputs == 3


def test_csbm_class_means_are_snr_apart_and_the_graph_is_reproducible():
    g = get_task("csbm", snr=3.0, nodes=4000).load().graphs[0]
    x, y = g.x.numpy(), g.y.numpy()
    gap = np.linalg.norm(x[y == 0].mean(0) - x[y == 1].mean(0))
    assert gap == pytest.approx(3.0, abs=0.25)
    again = get_task("csbm", snr=3.0, nodes=4000, seed=0).load().graphs[0]
    assert torch.equal(g.edge_index, again.edge_index)
    other = get_task("csbm", snr=3.0, nodes=4000, seed=1).load().graphs[0]
    assert not torch.equal(g.x, other.x)


def test_karate_and_motifs():
    karate = get_task("karate").load()
    assert karate.graphs[0].num_nodes == 34 and sum(karate.sizes()) == 34
    motifs = get_task("motifs", graphs=40).load()
    labels = [int(g.y) for g in motifs.graphs]
    assert sum(labels) == 20 and motifs.level == "graph" and sum(motifs.sizes()) == 40
    for g in motifs.graphs:  # a tree of 20 nodes + the motif's 5 + the edge joining them
        assert g.num_nodes == 25
        assert g.edge_index.shape[1] == 2 * (19 + (6 if int(g.y) else 5) + 1)


def test_a_node_task_learns_with_message_passing_where_an_mlp_cannot():
    task = get_task("csbm", homophily=0.9, snr=0.5, **SMALL)
    gcn = train_and_score(GCN, task, Fidelity(40), seed=0)
    mlp = train_and_score({**GCN, "stage1.block": "mlp"}, task, Fidelity(40), seed=0)
    assert gcn.status == mlp.status == OK
    assert gcn.test_score > mlp.test_score + 0.1
    # one full-graph step per epoch, a check each
    assert gcn.steps_run == 40 and len(gcn.curve) == 40
    again = train_and_score(GCN, task, Fidelity(40), seed=0)
    assert again.val_score == gcn.val_score and again.test_score == gcn.test_score


def test_the_trial_records_the_cost_model_and_diagnostics():
    task = get_task("csbm", **SMALL)
    result, model = train_model(GCN, task, Fidelity(2), seed=0)
    cost = estimate_cost(GCN, task.io)
    assert result.params == cost.params == sum(p.numel() for p in model.parameters())
    assert result.flops == cost.flops
    # FLOPs per node as torch counts a whole-graph forward
    g = task.load().graphs[0]
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(g.x, g.edge_index)
    assert counter.get_total_flops() / g.num_nodes == pytest.approx(cost.flops, rel=0.05)
    assert result.diagnostics["naswot"] is not None and result.diagnostics["naswot_units"] > 0


def test_a_fidelity_trains_on_a_fixed_subset_of_the_training_nodes():
    task = get_task("csbm", **SMALL)
    full = train_and_score(GCN, task, Fidelity(3), seed=0)
    few = train_and_score(GCN, task, Fidelity(3, max_train_samples=20), seed=0)
    assert full.status == few.status == OK and full.train_loss != few.train_loss
    rungs = task.default_fidelities(Fidelity(100))
    assert rungs[0].epochs >= 3 and rungs[-1].epochs == 100


def test_graph_classification_batches_graphs():
    task = get_task("motifs", graphs=60)
    spec = {"n_stages": 2, "stage1.block": "gin", "stage1.width": 16, "stage2.block": "mlp",
            "stage2.width": 8, "stage2.downsample": "topk", "readout": "attention",
            "norm": "batch", "batch_size": 16}  # fmt: skip
    r = train_and_score(spec, task, Fidelity(2), seed=0)
    assert r.status == OK, r.message
    assert r.steps_run == 2 * 3  # 36 training graphs in batches of 16
    assert 0.0 <= r.test_score <= 1.0 and r.params == estimate_cost(spec, task.io).params


def test_the_default_graph_spaces():
    node = get_task("csbm").default_space()
    graph = get_task("motifs").default_space()
    assert "batch_size" not in node.names and "readout" not in node.names
    assert {"readout", "batch_size", "stage2.downsample"} <= set(graph.names)
    blocks = set(node["stage1.block"].options)
    assert {"gcn", "gat", "gin", "sage", "cheb", "arma", "graphconv", "fc", "mlp"} == blocks
    assert not blocks & set(SearchSpace.default()["stage1.block"].options) - {"mlp"}
    rng = np.random.default_rng(0)
    io = get_task("motifs").io
    for _ in range(10):  # every sampled graph spec builds and costs what it has
        spec = graph.sample(rng)
        assert estimate_cost(spec, io).params == sum(
            p.numel() for p in build_model(spec, io).parameters()
        )


def test_a_users_graph_from_npz_and_pt(tmp_path):
    g = get_task("csbm", **SMALL).load().graphs[0]
    np.savez(tmp_path / "g.npz", x=g.x.numpy(), edge_index=g.edge_index.numpy(), y=g.y.numpy())
    task = get_task(f"graph:{tmp_path / 'g.npz'}")
    assert task.io.modality == "node" and task.io.shape == (16,)
    assert train_and_score(GCN, task, Fidelity(2)).status == OK
    graphs = list(get_task("motifs", graphs=30).load().graphs)
    torch.save(graphs, tmp_path / "many.pt")
    task = get_task(f"graph:{tmp_path / 'many.pt'}")
    assert task.io.modality == "graph" and sum(task.load().sizes()) == 30


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        ({"x": np.ones((3, 2))}, "lacks edge_index, y"),
        ({"x": np.ones((3, 2)), "edge_index": np.array([[0], [7]]), "y": np.zeros(3, int)},
         "outside 0..2"),
    ],
)  # fmt: skip
def test_a_bad_graph_file_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    if content is not None:
        np.savez(path, **content)
    arch = tmp_path / "gcn.json"
    arch.write_text(json.dumps(GCN))
    proc = subprocess.run(
        [sys.executable, "-m", "autodlgym", "eval", "--arch", str(arch), "--no-validate",
         "--task", f"graph:{path}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_the_nasbench_graph_space_trains_on_a_graph_task():
    space = SearchSpace.from_file("nasbench-graph")
    assert space.names == ["links", "op1", "op2", "op3", "op4"]
    spec = space.validate({"links": "0-1-1-2", "op1": "gat", "op2": "graph", "op3": "skip",
                           "op4": "cheb"})  # fmt: skip
    task = get_task("csbm", **SMALL)
    result, model = train_model(spec, task, Fidelity(2), seed=0)
    assert result.status == OK, result.message
    assert [u.name for u in model.blocks] == ["gat", "graphconv", "skip", "cheb"]
    assert result.params == estimate_cost(spec, task.io).params


def test_a_search_and_the_gym_id_on_csbm(tmp_path):
    import gymnasium

    import autodlgym
    from autodlgym.runner import RunConfig, run_search

    config = RunConfig(task="csbm", task_kwargs=SMALL, searcher="random", trials=4, epochs=3,
                       out=str(tmp_path / "run"), seed=0)  # fmt: skip
    run_search(config)
    df = autodlgym.load_results(tmp_path / "run")
    assert len(df) == 4 and (df.status == OK).all()
    env = gymnasium.make("autodlgym/CSBM-v0")
    env.reset(seed=0)
    _, reward, *_ = env.step(env.action_space.sample())
    assert np.isfinite(reward)


def test_a_time_budgeted_search_on_a_graph_task_sizes_final_selection_from_its_nodes(tmp_path):
    """Final selection is on by default under a time budget for small data; a graph task's
    training size is its training nodes (it has no ``x_train``: this crashed the search)."""
    import autodlgym
    from autodlgym.runner import RunConfig, run_search

    assert get_task("csbm", **SMALL).load().sizes()[0] < 10_000
    config = RunConfig(task="csbm", task_kwargs=SMALL, searcher="random", time_budget=6.0,
                       epochs=2, pruner="none", out=str(tmp_path / "run"), seed=0)  # fmt: skip
    run_search(config)
    df = autodlgym.load_results(tmp_path / "run")
    assert (df[df.phase == "search"].status == OK).any()
    assert (df.phase == "retrain").any()
