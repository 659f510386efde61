"""A user's own data from end to end: what goes wrong on the way, each pinned down.

Run paths stored absolute; the data file fingerprinted; text in numeric columns counted and
offered as ``numeric=``; identifiers and tiny data warned about; attention models exported
as programs, quietly; ``predict.py`` without Pillow or with a closed pipe; unseen categories
counted at predict time; the README's split percentages are the factories' defaults.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from data_fixtures import mixed_frame

from autodlgym import cli, load_results
from autodlgym.errors import AutoDLError
from autodlgym.run import Run
from autodlgym.tasks import get_task
from autodlgym.tasks import preprocessing as pp

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def relative_run(tmp_path_factory, tiny_space_session_file):
    """A search started in ``work/`` on ``data/d.csv``, given relative to it."""
    root = tmp_path_factory.mktemp("relative")
    (root / "work" / "data").mkdir(parents=True)
    mixed_frame(n=200).to_csv(root / "work" / "data" / "d.csv", index=False)
    args = ["search", "--task", "csv:data/d.csv", "--task-opt", "target=label", "--trials", "1"]
    args += ["--epochs", "1", "--space", str(tiny_space_session_file), "--no-progress"]
    mp = pytest.MonkeyPatch()
    mp.chdir(root / "work")
    try:
        assert cli.main([*args, "--out", "run"]) == 0
    finally:
        mp.undo()
    return root


def test_a_relative_data_path_is_stored_absolute_and_export_works_elsewhere(
    relative_run, monkeypatch
):
    root = relative_run
    with Run.open(root / "work" / "run") as run:
        assert run.settings["task"] == f"csv:{root / 'work' / 'data' / 'd.csv'}"
    monkeypatch.chdir(root)  # another directory: the data is found by its stored path
    trial = str(load_results("work/run")["trial_id"].iloc[0])
    assert cli.main(["export", "work/run", "--trial", trial, "--out", "model"]) == 0
    assert (root / "model" / "predict.py").is_file()


def test_a_changed_data_file_is_a_one_line_error_unless_allowed(relative_run, tmp_path, capsys):
    root = relative_run
    data = root / "work" / "data" / "d.csv"
    run = tmp_path / "run"
    shutil.copytree(root / "work" / "run", run)
    original = data.read_text()
    try:
        data.write_text(original + original.splitlines()[1] + "\n")  # one row more
        capsys.readouterr()
        trial = str(load_results(run)["trial_id"].iloc[0])
        assert cli.main(["export", str(run), "--trial", trial, "--out", str(tmp_path / "m")]) == 2
        err = capsys.readouterr().err
        assert "changed since the run" in err and "--allow-changed-data" in err
        assert err.count("\n") == 1
        assert cli.main(["search", "--out", str(run), "--resume", "--trials", "2"]) == 2
        assert "changed since the run" in capsys.readouterr().err
        with pytest.warns(UserWarning, match="using it as it is now"):
            with Run.open(run, allow_changed_data=True) as opened:
                assert opened.task.preprocessing["report"]["rows"] == 201  # the file as it is
    finally:
        data.write_text(original)
    with Run.open(run) as opened:  # restored: the same bytes, no complaint
        assert opened.task.preprocessing["report"]["rows"] == 200


def test_text_in_a_numeric_column_is_counted_and_numeric_reads_it(tmp_path):
    df = mixed_frame(n=100)
    df["x1"] = df["x1"].astype(object)
    df.loc[[3, 7, 9], "x1"] = ["?", "?", "n.a."]
    path = tmp_path / "junk.csv"
    df.to_csv(path, index=False)
    with pytest.warns(UserWarning, match=r"97 numbers and 3 cells .*'\?' x2.*numeric=x1"):
        as_text = get_task(f"csv:{path}", target="label")
    assert {c["name"]: c["kind"] for c in as_text.preprocessing["columns"]}["x1"] == "categorical"
    task = get_task(f"csv:{path}", target="label", numeric="x1")
    col = {c["name"]: c for c in task.preprocessing["columns"]}["x1"]
    assert col["kind"] == "numeric" and col["indicator"] and col["junk_as_missing"]
    assert task.preprocessing["report"]["not_numbers"] == {"x1": {"?": 2, "n.a.": 1}}
    numbers = pd.to_numeric(df["x1"], errors="coerce")
    train = task.preprocessing["report"]["splits"]["train"]
    assert train == 70 and np.isfinite(col["mean"])
    # predict time: the same cells are missing values, counted
    unseen: dict = {}
    x = pp.encode_table(task.preprocessing, pp.read_csv(path), unseen)
    names = [c["name"] for c in task.preprocessing["columns"]]
    at = names.index("x1")  # x1 is the first column: its value, then its indicator
    assert at == 0 and x[3, 1] == 1.0 and x[3, 0] == 0.0
    np.testing.assert_allclose(x[0, 0], (numbers[0] - col["mean"]) / col["std"], rtol=1e-5)
    assert unseen == {"x1": {"?": 2, "n.a.": 1}}
    with pytest.raises(AutoDLError, match="both categorical= and numeric="):
        get_task(f"csv:{path}", target="label", numeric="x1", categorical="x1")


def test_an_identifier_column_and_tiny_data_are_warned_about(tmp_path):
    df = mixed_frame(n=60)
    df.insert(0, "id", [f"row-{i}" for i in range(60)])
    df.to_csv(tmp_path / "ids.csv", index=False)
    with pytest.warns(UserWarning, match="'id' looks like an identifier.*drop=id"):
        get_task(f"csv:{tmp_path / 'ids.csv'}", target="label")
    df.iloc[:5].assign(label=["yes", "no", "yes", "no", "yes"]).to_csv(
        tmp_path / "five.csv", index=False
    )
    with pytest.warns(UserWarning, match=r"5 examples split 3/1/1 .*mostly noise"):
        task = get_task(f"csv:{tmp_path / 'five.csv'}", target="label", drop="id")
    assert task.preprocessing["report"]["splits"] == {"train": 3, "val": 1, "test": 1}


def test_unseen_categories_are_counted_at_predict_time():
    pre = {
        "columns": [
            {"name": "c", "kind": "categorical", "categories": ["a", "b"], "missing_slot": False}
        ]
    }
    unseen: dict = {}
    x = pp.encode_table(pre, {"c": ["a", "z", "z", "y", None]}, unseen)
    assert x.tolist() == [[1, 0], [0, 0], [0, 0], [0, 0], [0, 0]]
    assert unseen == {"c": {"z": 2, "y": 1}}
    note = pp.unseen_note(unseen)
    assert note is not None and "c: 3 cells ('z' x2, 'y' x1)" in note
    assert pp.unseen_note({}) is None


def _attention_model(io):
    from autodlgym import ArchSpec, SearchSpace, build_model

    spec = SearchSpace.default().validate(
        ArchSpec.from_json(
            '{"activation":"relu","batch_size":32,"connections":"chain","dropout":0.0,'
            '"grad_clip":1.0,"head_pool":"last","init":"he_uniform","lr":0.001,'
            '"n_stages":1,"norm":"layer","optimizer":"adam","stage1.block":"attention",'
            '"stage1.depth":2,"stage1.heads":2,"stage1.width":16,"trainable":"all",'
            '"weight_decay":0.0,"zero_init_residual":false}'
        )
    )
    return build_model(spec, io).eval()


@pytest.mark.parametrize("modality, shape", [("vector", (7,)), ("sequence", (2, 12))])
def test_attention_models_export_as_torch_export_programs_quietly(modality, shape, tmp_path, capfd):
    import torch

    from autodlgym import IOSpec
    from autodlgym.export import _save_program

    model = _attention_model(IOSpec(modality, shape, 3))
    example = torch.randn(6, *shape)
    assert _save_program(model, example, tmp_path) == "program.pt2"
    out, err = capfd.readouterr()
    assert out == "" and len(err) < 300, err[:500]
    # the guard against NaN gradients still runs while training
    model.train()
    model(example).sum().backward()


def test_a_failed_torch_export_falls_back_without_dumping_the_graph(tmp_path, capfd, monkeypatch):
    import torch

    from autodlgym import IOSpec
    from autodlgym.export import _save_program

    def noisy_export(*args, **kwargs):
        logging.getLogger("torch.fx.experimental.symbolic_shapes").warning("graph " * 5000)
        raise RuntimeError("data-dependent\n" + "def forward(...):\n" * 1000)

    monkeypatch.setattr(torch.export, "export", noisy_export)
    model = _attention_model(IOSpec("vector", (5,), 2))
    assert _save_program(model, torch.randn(4, 5), tmp_path) == "program.ts"
    out, err = capfd.readouterr()
    assert len(out) + len(err) < 300, (out + err)[:500]


def _run_isolated(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-I", "-c", code, *args], capture_output=True, text=True, cwd=cwd,
        timeout=120,
    )  # fmt: skip


def test_predict_py_for_images_without_pillow_says_how_to_get_it(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    shutil.copyfile(pp.__file__, model / "predict.py")
    pre = {
        "format": pp.FORMAT, "version": pp.VERSION, "kind": "image", "modality": "image",
        "input_shape": [1, 4, 4], "problem": "classification", "labels": ["a", "b"],
        "mode": "L", "size": [4, 4], "mean": [0.5], "std": [0.2],
    }  # fmt: skip
    (model / "preprocessing.json").write_text(json.dumps(pre))
    (tmp_path / "imgs").mkdir()
    no_pillow = (
        "import runpy, sys; sys.modules['PIL'] = None; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    r = _run_isolated(no_pillow, str(model / "predict.py"), "--input", "imgs", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "predict: error: reading images needs Pillow: pip install pillow\n"


def test_a_closed_pipe_ends_quietly(tmp_path):
    lines = (
        f"import sys; sys.path.insert(0, {str(Path(pp.__file__).parent)!r}); "
        "import preprocessing as pp; sys.exit(pp.print_lines([str(i) for i in range(200000)]))"
    )
    r = subprocess.run(
        f'"{sys.executable}" -I -c "{lines}" | head -n 2', shell=True, capture_output=True,
        text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert r.stdout == "0\n1\n" and r.stderr == ""
    r = subprocess.run(
        f'"{sys.executable}" -m autodlgym.cli space sample --n 3000 | head -n 1', shell=True,
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert r.stdout.count("\n") == 1 and r.stderr == ""


def test_the_readme_states_the_split_fractions_the_factories_use():
    from autodlgym.tasks import files

    readme = " ".join((ROOT / "README.md").read_text().split())

    def defaults(factory):
        params = inspect.signature(factory).parameters
        return params["val_fraction"].default, params["test_fraction"].default

    said = {
        "tables and image folders": {
            defaults(files.csv_task),
            defaults(files.parquet_task),
            defaults(files.images_task),
        },
        "`npz:` and `from_arrays`": {defaults(files.npz_task)},
    }
    for what, fractions in said.items():
        assert len(fractions) == 1, f"{what} use different defaults: {fractions}"
        val, test = fractions.pop()
        sentence = f"{val * 100:g} % validation and {test * 100:g} % test"
        assert re.search(re.escape(sentence) + r"[^.;]*" + re.escape(what), readme), sentence
    # from_arrays hands its options to npz_task: no defaults of its own
    assert "val_fraction" not in inspect.signature(files.from_arrays).parameters
