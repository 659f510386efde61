"""Graph tasks through what a user runs on any task: every searcher, Ray workers, eval, space
sample, the baselines and the one-line refusals of what a graph task cannot do."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch_geometric")

import torch  # noqa: E402

from autodlgym import Run, cli, load_results  # noqa: E402
from autodlgym.runner import RunConfig, run_search  # noqa: E402
from autodlgym.searchers.base import SEARCHERS  # noqa: E402
from autodlgym.tasks import get_task  # noqa: E402
from autodlgym.trial import OK  # noqa: E402

TINY = {"nodes": 200}
#: searchers whose runs here take seconds more than the others (CMA-ES's start-up)
SLOW = {"cmaes"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in SEARCHERS.names()]
)
def test_every_searcher_searches_a_graph_task(name, tmp_path):
    import importlib.util

    for module in SEARCHERS.meta(name).get("requires", ()):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"searcher {name!r} needs {module!r}")
    config = RunConfig(task="csbm", task_kwargs=TINY, searcher=name, trials=3, epochs=2,
                       out=str(tmp_path / "run"), seed=0)  # fmt: skip
    run_search(config, progress=False)
    df = load_results(tmp_path / "run")
    search = df[df.phase == "search"]
    assert len(search) == 3 and (search.status == OK).all(), search.message.tolist()
    graph_blocks = {"gcn", "gat", "gin", "sage", "cheb", "arma", "graphconv", "fc", "skip", "mlp"}
    blocks = {v for c in df.columns if c.endswith(".block") for v in search[c].dropna()}
    assert blocks and blocks <= graph_blocks  # the graph space, not the array default


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_ray_search_on_csbm(ray_cluster, tmp_path):
    config = RunConfig(task="csbm", task_kwargs=TINY, searcher="random", trials=4, epochs=2,
                       workers=2, out=str(tmp_path / "run"), seed=0)  # fmt: skip
    run_search(config, progress=False)
    df = load_results(tmp_path / "run")
    assert len(df) == 4 and (df.status == OK).all(), df.message.tolist()
    assert df.worker.nunique() >= 1 and df.worker.str.startswith("w").all()


def _direct_logistic(x_tr, y_tr, x, y) -> float:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=1000).fit(x_tr, y_tr)
    return float((model.predict(x) == y).mean())


def test_graph_baselines_are_a_logistic_regression_without_the_edges():
    from autodlgym.training.baselines import baseline_names, fit_baselines

    node = get_task("csbm", **TINY)
    assert baseline_names(node) == ["logistic_regression"]
    [(name, result)] = fit_baselines(node, seed=0)
    d = node.load()
    x, y = d.graphs[0].x.numpy(), d.graphs[0].y.numpy()
    assert result.status == OK
    assert result.test_score == pytest.approx(
        _direct_logistic(x[d.train], y[d.train], x[d.test], y[d.test])
    )
    graphs = get_task("motifs", graphs=60)
    [(_, result)] = fit_baselines(graphs, seed=0)
    d = graphs.load()
    x = np.stack([g.x.numpy().mean(0) for g in d.graphs])
    y = np.array([int(g.y) for g in d.graphs])
    assert result.val_score == pytest.approx(
        _direct_logistic(x[d.train], y[d.train], x[d.val], y[d.val])
    )


def test_a_users_graph_file_gets_baselines_and_a_fingerprint(tmp_path):
    g = get_task("csbm", **TINY).load().graphs[0]
    torch.save(g, tmp_path / "g.pt")
    config = RunConfig(task=f"graph:{tmp_path / 'g.pt'}", trials=1, epochs=2,
                       out=str(tmp_path / "run"), seed=0)  # fmt: skip
    run_search(config, progress=False)
    with Run.open(tmp_path / "run") as run:
        base = run.baselines()
    assert base.status.tolist() == [OK] and 0 < base.test_score.iloc[0] <= 1
    torch.save(g.clone().subgraph(torch.arange(150)), tmp_path / "g.pt")  # the data changes
    code = cli.main(["search", "--resume", "--out", str(tmp_path / "run"), "--trials", "2",
                     "--no-progress"])  # fmt: skip
    assert code == 2


def test_eval_and_space_sample_use_the_graph_space(tmp_path, capsys):
    assert cli.main(["space", "sample", "--task", "csbm", "--n", "3", "--seed", "1"]) == 0
    specs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(s["stage1.block"] in {"gcn", "gat", "gin", "sage", "cheb", "arma", "graphconv",
                                     "fc", "skip", "mlp"} for s in specs)  # fmt: skip
    (tmp_path / "spec.json").write_text(json.dumps(specs[0]))
    code = cli.main(["eval", "--task", "csbm", "--task-opt", "nodes=200", "--arch",
                     str(tmp_path / "spec.json"), "--epochs", "2"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)["status"] == OK


def test_oneshot_on_a_graph_task_is_a_one_line_error(tmp_path, capsys):
    code = cli.main(["search", "--task", "csbm", "--fidelity", "oneshot", "--trials", "2",
                     "--out", str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "graph task" in err
    assert not (tmp_path / "run").exists()


def _kept_model(run_dir, model_dir):
    """The network rebuilt from the weights the export took (the run's kept weights)."""
    from autodlgym.nn.build import build_model
    from autodlgym.retrain import model_path
    from autodlgym.searchspace.spec import ArchSpec

    meta = json.loads((model_dir / "model.json").read_text())
    with Run.open(run_dir) as run:
        io = run.task.io
    model = build_model(ArchSpec.from_json((model_dir / "spec.json").read_text()), io)
    state = torch.load(model_path(run_dir, meta["weights_from_trial"]), weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def test_a_node_model_exports_as_a_program_and_predicts_a_new_graph(tmp_path, capsys):
    import autodlgym
    from autodlgym.export import export_model

    run_search(RunConfig(task="csbm", task_kwargs=TINY, trials=1, epochs=3,
                         out=str(tmp_path / "run"), seed=0), progress=False)  # fmt: skip
    summary = export_model(tmp_path / "run", 0, tmp_path / "model")
    assert summary.program == "program.pt2" and "predict.py" not in summary.files
    model = _kept_model(tmp_path / "run", tmp_path / "model")
    new = get_task("csbm", nodes=150, seed=7).load().graphs[0]  # a graph it never saw
    with torch.no_grad():
        want = model(new.x, new.edge_index).numpy()
    loaded = autodlgym.load_model(tmp_path / "model")
    np.testing.assert_allclose(loaded.outputs(new), want, rtol=1e-4, atol=1e-5)
    assert loaded.predict(new).tolist() == [str(i) for i in want.argmax(1)]
    np.savez(tmp_path / "new.npz", x=new.x.numpy(), edge_index=new.edge_index.numpy())
    assert cli.main(["predict", str(tmp_path / "model"), "--input", str(tmp_path / "new.npz")]) == 0
    assert capsys.readouterr().out.split() == [str(i) for i in want.argmax(1)]
    np.savez(tmp_path / "bad.npz", x=new.x.numpy()[:, :3], edge_index=new.edge_index.numpy())
    code = cli.main(["predict", str(tmp_path / "model"), "--input", str(tmp_path / "bad.npz")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "16 features per node" in err


def test_a_graph_level_model_exports_its_weights_and_predicts_new_graphs(tmp_path, capsys):
    from torch_geometric.data import Batch

    import autodlgym

    run_search(RunConfig(task="motifs", task_kwargs={"graphs": 60}, trials=1, epochs=2,
                         out=str(tmp_path / "run"), seed=0), progress=False)  # fmt: skip
    assert cli.main(["export", str(tmp_path / "run"), "--trial", "0",
                     "--out", str(tmp_path / "model")]) == 0  # fmt: skip
    assert "GRAPH.pt" in capsys.readouterr().out
    assert not (tmp_path / "model" / "program.pt2").exists()  # readouts: the weights stand
    model = _kept_model(tmp_path / "run", tmp_path / "model")
    new = list(get_task("motifs", graphs=20, seed=5).load().graphs)
    b = Batch.from_data_list(new)
    with torch.no_grad():
        want = model(b.x, b.edge_index, b.batch).numpy()
    loaded = autodlgym.load_model(tmp_path / "model")
    np.testing.assert_allclose(loaded.outputs(new), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        loaded.predict_proba(b), np.exp(want) / np.exp(want).sum(1, keepdims=True), rtol=1e-5
    )
    torch.save(new, tmp_path / "new.pt")
    assert cli.main(["predict", str(tmp_path / "model"), "--input", str(tmp_path / "new.pt")]) == 0
    assert capsys.readouterr().out.split() == [str(i) for i in want.argmax(1)]


def test_export_without_trial_takes_a_stopped_answer_trained_whole(tmp_path, capsys, fake_clock):
    """The run's answer is a trial the search's deadline stopped in its third epoch: export
    trains its architecture for the trial's whole fidelity and says so."""
    from autodlgym.searchspace.spec import ArchSpec
    from autodlgym.training.trainer import train_and_score
    from autodlgym.trial import STOPPED, Fidelity

    config = RunConfig(task="csbm", task_kwargs=TINY, trials=1, epochs=6,
                       out=str(tmp_path / "run"), seed=0)  # fmt: skip
    spec = ArchSpec({"n_stages": 1, "stage1.block": "gcn", "stage1.depth": 1,
                     "stage1.width": 16, "lr": 0.01, "weight_decay": 0.0, "dropout": 0.0,
                     "optimizer": "adam", "init": "torch_default"})  # fmt: skip
    fidelity = Fidelity(epochs=6)

    def advance(check, value):  # a second passes at each validation check
        fake_clock.advance(1.0)

    with Run.create(config) as run:
        result = train_and_score(spec, run.task, fidelity, seed=0, callback=advance,
                                 deadline=fake_clock.wall() + 2.5)  # fmt: skip
        assert result.status == STOPPED and result.epochs_run == 3
        assert result.val_score is not None and result.test_score is not None
        run.store.append(0, spec, fidelity, 0, result)
        assert run.answer() == 0
    assert cli.main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "model")]) == 0
    out = capsys.readouterr().out
    assert "stopped after 3 of its 6 epochs" in out and "trained for 6 epochs (trial 1)" in out
    df = load_results(tmp_path / "run").set_index("trial_id")
    assert df.loc[1, "status"] == OK and df.loc[1, "epochs"] == 6 and df.loc[1, "seed"] == 0
    assert df.loc[1, "epochs_run"] == 6 and df.loc[1, "phase"] == "retrain"
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["trial_id"] == 0 and meta["weights_from_trial"] == 1
    assert meta["test_score"] == pytest.approx(df.loc[1, "test_score"])
    # the exported weights are trial 1's: they score its test accuracy on the task's graph
    model = _kept_model(tmp_path / "run", tmp_path / "model")
    data = get_task("csbm", **TINY).load()
    g = data.graphs[0]
    with torch.no_grad():
        pred = model(g.x, g.edge_index).argmax(1)
    test = torch.as_tensor(data.test)
    assert float((pred[test] == g.y[test]).float().mean()) == pytest.approx(meta["test_score"])
