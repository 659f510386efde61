"""From a search to a model you can use: search on your own data, retrain, export, predict.

The exported directory must run without autodlgym: ``predict.py`` runs in a fresh,
isolated Python process (``-I``) that imports torch and numpy but never autodlgym, pandas or
scikit-learn, and its predictions are those of the in-memory model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from data_fixtures import mixed_frame, write_images

from autodlgym import cli, load_results
from autodlgym.errors import AutoDLError
from autodlgym.export import export_model, predict_lines
from autodlgym.retrain import model_path
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.tasks import Task, from_arrays, get_task
from autodlgym.tasks import preprocessing as pp

#: runs predict.py as a user would, then says which heavy modules the process imported
ISOLATED = """
import runpy, sys
sys.argv = ["predict.py", *sys.argv[1:]]
try:
    runpy.run_path(sys.argv.pop(1), run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
seen = sorted({m.split(".")[0] for m in sys.modules} & {"autodlgym", "pandas", "sklearn", "torch"})
print("MODULES", ",".join(seen))
"""


def isolated_predict(model_dir: Path, *args: str, cwd: Path) -> tuple[list[str], str]:
    """``predict.py`` in a fresh ``python -I`` (no PYTHONPATH, no user site, no cwd on the
    path): its prediction lines and the heavy modules it imported."""
    r = subprocess.run(
        [sys.executable, "-I", "-c", ISOLATED, str(model_dir / "predict.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    return lines[:-1], lines[-1]


def in_memory_outputs(run: Path, model_dir: Path, x: np.ndarray) -> np.ndarray:
    """The outputs of the model autodlgym builds from the run's kept weights."""
    import torch

    from autodlgym.nn.build import build_model

    meta = json.loads((model_dir / "model.json").read_text())
    spec = ArchSpec.from_json((model_dir / "spec.json").read_text())
    task = Task.from_key(meta["task"])
    model = build_model(spec, task.io)
    model.load_state_dict(torch.load(model_path(run, meta["weights_from_trial"])))
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory, tiny_space_session_file):
    """A CSV with mixed column types and missing values, held-out rows without the target,
    a search on it (tiny space), and a retrain of its top 3 specs with 3 seeds."""
    root = tmp_path_factory.mktemp("csv_run")
    df = mixed_frame(n=300)
    df.iloc[:240].to_csv(root / "data.csv", index=False)
    df.iloc[240:].drop(columns="label").to_csv(root / "new.csv", index=False)
    (root / "space.json").write_text(tiny_space_session_file.read_text())
    run = root / "run"
    args = ["--task", f"csv:{root / 'data.csv'}", "--task-opt", "target=label"]
    args += ["--space", str(root / "space.json"), "--trials", "6", "--epochs", "2"]
    assert cli.main(["search", *args, "--out", str(run), "--no-progress"]) == 0
    assert cli.main(["retrain", str(run), "--top", "3", "--seeds", "3", "--epochs", "2"]) == 0
    return root, run


def test_csv_search_retrain_export_predict_in_a_fresh_torch_only_process(csv_run, capsys):
    root, run = csv_run
    df = load_results(run)
    assert (df["phase"] == "retrain").sum() == 9
    search = df[(df["phase"] == "search") & (df["status"] == "ok")]
    best = int(search.sort_values("val_score").trial_id.iloc[-1])
    out = root / "model"
    assert cli.main(["export", str(run), "--trial", str(best), "--out", str(out)]) == 0
    assert "kept by autodlgym retrain" in capsys.readouterr().out  # no training at export
    names = {p.name for p in out.iterdir()}
    assert {"spec.json", "weights.pt", "preprocessing.json", "predict.py", "model.json"} <= names
    assert "program.pt2" in names or "program.ts" in names
    meta = json.loads((out / "model.json").read_text())
    assert meta["trial_id"] == best and meta["epochs"] == 2
    # the weights exported are the best (by validation) kept seed of that architecture
    same = df[(df["arch_id"] == meta["arch_id"]) & (df["phase"] == "retrain")]
    assert meta["weights_from_trial"] == int(same.sort_values("val_score").trial_id.iloc[-1])

    lines, modules = isolated_predict(out, "--input", str(root / "new.csv"), cwd=root)
    assert modules == "MODULES torch"  # numpy and the standard library besides
    pre = json.loads((out / "preprocessing.json").read_text())
    x = pp.encode_table(pre, pp.read_csv(root / "new.csv"))
    want = [pre["labels"][i] for i in in_memory_outputs(run, out, x).argmax(axis=1)]
    assert lines == want and len(lines) == 60 and set(lines) <= {"yes", "no"}

    assert cli.main(["predict", str(out), "--input", str(root / "new.csv")]) == 0
    assert capsys.readouterr().out.strip().splitlines() == want
    # with --scores: the class probabilities of the same outputs
    scored, _ = isolated_predict(out, "--input", str(root / "new.csv"), "--scores", cwd=root)
    probs = np.array([[float(v) for v in line.split("\t")[1].split()] for line in scored])
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert [pre["labels"][i] for i in probs.argmax(axis=1)] == want


def test_the_task_rows_go_through_predict_unchanged(csv_run):
    root, run = csv_run
    out = root / "model_rows"
    export_model(run, int(load_results(run).trial_id.iloc[0]), out)
    pre = pp.load_preprocessing(out)
    task = get_task(f"csv:{root / 'data.csv'}", target="label")
    encoded = pp.encode_table(pre, pp.read_csv(root / "data.csv"))
    d = task.load()
    key = lambda rows: sorted(map(tuple, rows.tolist()))  # noqa: E731
    assert key(encoded) == key(np.concatenate([d.x_train, d.x_val, d.x_test]))


def test_export_trains_a_search_trial_without_kept_weights(tmp_path, tiny_space_file):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3)).astype(np.float32)
    y = (2.0 * x[:, 0] - x[:, 2] + 5.0).astype(np.float32)  # regression, offset targets
    task = from_arrays(x, y, path=tmp_path / "reg.npz")
    run = tmp_path / "run"
    args = ["--task", task.name, "--space", str(tiny_space_file), "--trials", "2"]
    assert cli.main(["search", *args, "--epochs", "3", "--out", str(run), "--no-progress"]) == 0
    first = int(load_results(run)["trial_id"].min())  # after the baseline (ridge), id 0
    summary = export_model(run, first, tmp_path / "model")
    assert summary.trained_now and summary.weights_from == first + 2  # a new trial
    df = load_results(run)
    kept = df[df["trial_id"] == first + 2].iloc[0]
    assert kept["phase"] == "retrain" and kept["epochs"] == 3 and kept["seed"] == 0
    np.savez(tmp_path / "new.npz", x=x[:7])
    lines = predict_lines(tmp_path / "model", tmp_path / "new.npz")
    pre = task.preprocessing
    raw = in_memory_outputs(run, tmp_path / "model", pp.standardise(pre, x[:7]))
    want = raw[:, 0] * pre["target"]["std"][0] + pre["target"]["mean"][0]
    np.testing.assert_allclose([float(v) for v in lines], want, rtol=1e-4)
    # exporting again reuses the kept weights
    assert not export_model(run, first, tmp_path / "model").trained_now


def test_image_folder_end_to_end(tmp_path, tiny_space_file):
    labels = write_images(tmp_path / "imgs", n_per_class=10)
    write_images(tmp_path / "new", n_per_class=2, seed=5)
    run = tmp_path / "run"
    args = ["--task", f"images:{tmp_path / 'imgs'}", "--task-opt", "size=8"]
    args += ["--space", str(tiny_space_file), "--trials", "2", "--epochs", "2"]
    assert cli.main(["search", *args, "--out", str(run), "--no-progress"]) == 0
    out = tmp_path / "model"
    export_model(run, int(load_results(run)["trial_id"].iloc[0]), out)
    lines, modules = isolated_predict(out, "--input", str(tmp_path / "new"), cwd=tmp_path)
    assert "autodlgym" not in modules
    pre = pp.load_preprocessing(out)
    assert pre["size"] == [8, 8] and pre["labels"] == labels
    x, names = pp.read_inputs(pre, tmp_path / "new")
    want = [pre["labels"][i] for i in in_memory_outputs(run, out, x).argmax(axis=1)]
    assert lines == [f"{n}\t{w}" for n, w in zip(names, want)] and len(lines) == 6
    assert names[0] == str(Path("blue") / "0.png")
    one = predict_lines(out, tmp_path / "new" / "blue" / "0.png")
    assert one == [want[0]]


def test_onnx_is_written_when_onnx_is_installed(csv_run):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    import onnx
    from onnx.reference import ReferenceEvaluator

    root, run = csv_run
    out = root / "model_onnx"
    summary = export_model(run, int(load_results(run).trial_id.iloc[0]), out)
    assert summary.onnx == "model.onnx", summary.onnx
    graph = onnx.load(str(out / "model.onnx"))
    onnx.checker.check_model(graph)
    # onnx's own reference evaluator gives the outputs of the kept weights
    x = pp.encode_table(pp.load_preprocessing(out), pp.read_csv(root / "new.csv"))[:5]
    (got,) = ReferenceEvaluator(graph).run(None, {"x": x})
    np.testing.assert_allclose(got, in_memory_outputs(run, out, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["export", "{run}", "--trial", "999", "--out", "{root}/m"], "no trial 999"),
        (["export", "{root}/nowhere", "--trial", "0", "--out", "{root}/m"], "no autodlgym run"),
        (["predict", "{root}/nowhere", "--input", "{root}/new.csv"], "does not exist"),
        (["predict", "{root}/model", "--input", "{root}/data.csv.missing"], "does not exist"),
        (["predict", "{root}/model", "--input", "{root}/space.json"], "not a table"),
    ],
)
def test_bad_export_and_predict_input_is_one_line(csv_run, capsys, argv, words):
    root, run = csv_run
    if not (root / "model").is_dir():
        export_model(run, int(load_results(run).trial_id.iloc[0]), root / "model")
    argv = [a.format(run=run, root=root) for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_predict_names_a_missing_column(csv_run, tmp_path):
    root, run = csv_run
    if not (root / "model").is_dir():
        export_model(run, int(load_results(run).trial_id.iloc[0]), root / "model")
    (tmp_path / "partial.csv").write_text("x1,colour\n0.5,red\n")
    with pytest.raises(AutoDLError, match="no column 'x2'"):
        predict_lines(root / "model", tmp_path / "partial.csv")


def test_built_in_tasks_export_an_array_preprocessing(tmp_path):
    from autodlgym.export import preprocessing_for

    task = get_task("digits")
    pre = preprocessing_for(task)
    assert pre["kind"] == "array" and pre["mean"] is None and pre["task"] == "digits"
    assert pre["labels"] == [str(i) for i in range(10)] and pre["input_shape"] == [1, 8, 8]
    x = task.load().x_test[:4]
    np.savez(tmp_path / "x.npz", x=x)
    got, names = pp.read_inputs(pre, tmp_path / "x.npz")
    np.testing.assert_array_equal(got, x)
    assert names is None
    np.save(tmp_path / "bad.npy", x[:, 0])
    with pytest.raises(pp.InputError, match="shape"):
        pp.read_inputs(pre, tmp_path / "bad.npy")


def test_load_model_predicts_a_dataframe_as_predict_py_does(csv_run):
    import autodlgym

    root, run = csv_run
    out = root / "model_py"
    export_model(run, int(load_results(run).trial_id.iloc[0]), out)
    model = autodlgym.load_model(out)
    new = pd.read_csv(root / "new.csv")
    want = predict_lines(out, root / "new.csv")
    assert model.predict(new).tolist() == want == model.predict(root / "new.csv").tolist()
    probs = model.predict_proba(new)
    pre = pp.load_preprocessing(out)
    x = pp.encode_table(pre, pp.read_csv(root / "new.csv"))
    logits = in_memory_outputs(run, out, x)
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probs, z / z.sum(axis=1, keepdims=True), rtol=1e-4, atol=1e-6)
    assert model.classes == ["no", "yes"]
    # a category the training split never had: predicted, counted, reported once
    odd = new.head(3).assign(colour=["purple", "purple", "red"])
    with pytest.warns(UserWarning, match=r"colour: 2 cells \('purple' x2\)"):
        assert len(model.predict(odd)) == 3
    with pytest.raises(AutoDLError, match="DataFrame or a dict"):
        model.predict(np.zeros((2, 3)))
