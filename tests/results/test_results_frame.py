"""ResultStore.to_dataframe / load_results: columns, dtypes, pending rows, empty runs."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from autodlgym.results.store import BASE_COLUMNS, ResultStore, load_results
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import ERROR, NAN, OK, Fidelity, TrialResult


@pytest.fixture
def run(tmp_path, space, make_result, fidelity):
    with ResultStore(tmp_path) as store:
        store.save_config({"task": "mnist1d", "space": space.to_config()})
        for i, status in enumerate([OK, NAN, OK, ERROR, OK]):
            store.append(i, space.sample(i), fidelity, 3, make_result(i, status))
        store.add_pending(5, space.sample(5), Fidelity(1, max_train_samples=64), 3)
    return tmp_path


def test_one_row_per_finished_trial_with_flat_columns(run, space):
    df = load_results(run)
    assert df["trial_id"].tolist() == [0, 1, 2, 3, 4]
    base = list(BASE_COLUMNS)
    choices = [c.name for c in space.choices]
    diag = ["diag_jacobian_norm", "diag_sum_inv_width"]  # the per-layer list is not flattened
    # TrialResult fields kept in the extra JSON (steps_run) follow the base columns
    assert list(df.columns) == base + ["steps_run"] + choices + diag + ["diagnostics", "spec"]
    assert df["steps_run"].tolist() == [0] * 5
    assert df["status"].tolist() == [OK, NAN, OK, ERROR, OK]
    assert df["val_score"].tolist()[::2] == [0.5, 0.502, 0.504]
    assert df["val_score"].isna().tolist() == [False, True, False, True, False]
    assert df["epochs"].tolist() == [3] * 5 and df["max_train_samples"].isna().all()
    assert df["seed"].tolist() == [3] * 5
    assert df["message"].tolist()[3] == "RuntimeError: bad candidate 1"
    assert json.loads(df["diagnostics"].iloc[0])["gain"] == [1.0, 0.9, 0.8]
    assert df["diag_jacobian_norm"].tolist() == [1.5, 2.5, 3.5, 4.5, 5.5]
    for i, row in df.iterrows():
        spec = ArchSpec.from_json(row["spec"])
        assert spec == space.sample(i) and row["arch_id"] == spec.arch_id
        for name, value in space.columns(spec).items():
            assert (pd.isna(row[name]) and value is None) or row[name] == value


def test_numeric_columns_have_numeric_dtypes(run):
    df = load_results(run)
    for name, dtype in BASE_COLUMNS.items():
        assert str(df[name].dtype) == dtype, name
    assert str(df["finished_at"].dt.tz) == "UTC"
    assert df["finished_at"].is_monotonic_increasing
    assert str(df["lr"].dtype) == "float64"
    assert str(df["n_stages"].dtype) == "Int64"
    assert str(df["stage2.width"].dtype) == "Int64"  # missing where n_stages == 1
    assert str(df["stage1.block"].dtype) == "str"
    assert str(df["zero_init_residual"].dtype) == "boolean"
    # an inactive-everywhere decision still gets the dtype of its options
    assert str(df["stage2.bidirectional"].dtype) == "boolean"
    assert pd.api.types.is_float_dtype(df["diag_sum_inv_width"])


def test_include_pending_adds_running_rows(run):
    df = load_results(run, include_pending=True)
    assert df["trial_id"].tolist() == [0, 1, 2, 3, 4, 5]
    last = df.iloc[-1]
    assert last["status"] == "running"
    assert last["max_train_samples"] == 64 and last["epochs"] == 1
    assert pd.isna(last["val_score"]) and pd.isna(last["finished_at"])
    assert list(df.columns) == list(load_results(run).columns)


def test_an_empty_run_gives_an_empty_frame_with_the_base_columns(tmp_path):
    ResultStore(tmp_path).close()
    df = load_results(tmp_path, include_pending=True)
    assert len(df) == 0
    assert list(df.columns) == [*BASE_COLUMNS, "diagnostics", "spec"]
    for name, dtype in BASE_COLUMNS.items():
        assert str(df[name].dtype) == dtype, name


def test_an_empty_run_with_a_space_has_its_choice_columns(tmp_path, space):
    with ResultStore(tmp_path) as store:
        store.save_config({"space": space.to_config()})
        df = store.to_dataframe()
    assert len(df) == 0 and set(space.names) <= set(df.columns)


def test_without_a_space_there_is_one_column_per_spec_key(tmp_path, fidelity):
    with ResultStore(tmp_path) as store:
        store.append(0, ArchSpec(width=8, block="mlp", seed=1), fidelity, 0, TrialResult(OK, 0.5))
        store.append(1, ArchSpec(width=16, deep=True), fidelity, 0, TrialResult(OK, 0.6))
        df = store.to_dataframe()
    fields = {f.name for f in dataclasses.fields(TrialResult)}
    extra = [
        c
        for c in df.columns
        if c not in BASE_COLUMNS and c not in fields and c not in ("diagnostics", "spec")
    ]
    assert extra == ["block", "deep", "choice_seed", "width"]  # "seed" clashes with a base column
    assert df["width"].tolist() == [8, 16] and str(df["width"].dtype) == "Int64"
    assert df["choice_seed"].tolist()[0] == 1 and df["seed"].tolist() == [0, 0]
    assert str(df["deep"].dtype) == "boolean" and pd.isna(df["deep"].iloc[0])


def test_a_space_that_cannot_be_rebuilt_falls_back_to_spec_keys(tmp_path, fidelity):
    with ResultStore(tmp_path) as store:
        store.save_config({"space": {"base": "no-such-base"}})
        store.append(0, ArchSpec(width=8), fidelity, 0, TrialResult(OK, 0.5))
        with pytest.warns(UserWarning, match="cannot be rebuilt"):
            df = store.to_dataframe()
    assert df["width"].tolist() == [8]


def test_diagnostics_read_back_under_one_scheme_and_as_a_tidy_layer_frame(tmp_path, space):
    import torch

    from autodlgym.errors import AutoDLError
    from autodlgym.nn.build import build_model
    from autodlgym.searchspace.io import IOSpec
    from autodlgym.training.diagnostics import diagnose

    spec = ArchSpec({"n_stages": 1, "stage1.block": "residual", "stage1.depth": 3})
    io = IOSpec("sequence", (1, 12), 4)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        d = diagnose(build_model(spec, io), torch.randn(8, 1, 12))
    fid = Fidelity(1)
    old = {"block_names": ["conv", "mlp"], "gains": [2.0, None], "grad_norms": [0.5, 0.25]}
    with ResultStore(tmp_path) as store:
        store.append(0, spec, fid, 0, TrialResult(OK, diagnostics=d.to_dict()))
        store.append(1, spec, fid, 0, TrialResult(ERROR))  # no diagnostics: no rows
        store.append(2, spec, fid, 0, TrialResult(OK, diagnostics=old))  # a version-1 record
    df = load_results(tmp_path)
    cols = d.to_columns()
    for name, value in cols.items():
        assert df[name][0] == pytest.approx(value) or (value is None and pd.isna(df[name][0]))
    layers = load_results(tmp_path, diagnostics="layers")
    assert list(layers.columns) == ["trial_id", "layer", "block", "gain", "grad_norm"]
    assert layers["trial_id"].tolist() == [0, 0, 0, 2, 2]
    assert layers["layer"].tolist() == [0, 1, 2, 0, 1]
    assert layers["block"].tolist() == ["residual"] * 3 + ["conv", "mlp"]
    assert layers["gain"][:3].tolist() == pytest.approx(d.gains)
    assert layers["grad_norm"][:3].tolist() == pytest.approx(d.grad_norms)
    assert layers["gain"][3] == 2.0 and pd.isna(layers["gain"][4])
    with pytest.raises(AutoDLError, match="columns or layers"):
        load_results(tmp_path, diagnostics="blocks")
