"""Selection that holds up: the search's answer chosen on the mean of several seeds of its best
candidates, recorded, reported with its spread and exported by default."""

from __future__ import annotations

import numpy as np
import pytest

from autodlgym import Run, RunConfig, cli, load_results, run_search
from autodlgym.errors import AutoDLError
from autodlgym.tasks import from_arrays


@pytest.fixture(scope="module")
def final_run(tmp_path_factory, tiny_space_session_file):
    import json

    root = tmp_path_factory.mktemp("final")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 4)).astype(np.float32)
    task = from_arrays(x, (x[:, 0] + x[:, 1] > 0).astype(np.int64), path=root / "d.npz")
    config = RunConfig(
        out=str(root / "run"), task=task, space=json.loads(tiny_space_session_file.read_text()),
        trials=5, epochs=1, final_seeds=3, baselines=False,
    )  # fmt: skip
    return root, run_search(config)


def test_the_answer_is_the_best_mean_over_seeds(final_run):
    root, summary = final_run
    df = load_results(root / "run")
    search = df[df["phase"] == "search"]
    retrain = df[df["phase"] == "retrain"]
    with Run.open(root / "run") as run:
        final = run.final()
        assert run.answer() == summary.best_trial_id == final["trial_id"]
    candidates = final["candidates"]
    assert 1 <= len(candidates) <= 3 and len(retrain) == 2 * len(candidates)
    assert sorted(retrain["seed"].unique().tolist()) == [1, 2]
    means = {}
    for c in candidates:
        own = search[search["trial_id"] == c["trial_id"]]
        again = retrain[retrain["arch_id"] == c["arch_id"]]
        assert (again["epochs"] == int(own["epochs"].iloc[0])).all()
        vals = np.concatenate([own["val_score"].to_numpy(), again["val_score"].to_numpy()])
        assert c["n"] == 3 and c["val_mean"] == pytest.approx(vals.mean())
        assert c["val_sd"] == pytest.approx(vals.std(ddof=1))
        means[c["trial_id"]] = vals.mean()
    assert summary.best_val_score == pytest.approx(max(means.values()))
    assert means[summary.best_trial_id] == max(means.values())
    assert summary.final_seeds == 3 and summary.best_val_sd == final["val_sd"]
    assert "final choice: trial" in summary.final_note and "over 3 seeds" in summary.final_note
    # the searcher saw the search's trials only
    assert summary.finished == 5 == len(search)


def test_export_defaults_to_the_final_choice(final_run, capsys):
    root, summary = final_run
    assert cli.main(["export", str(root / "run"), "--out", str(root / "model")]) == 0
    assert f"trial {summary.best_trial_id} exported" in capsys.readouterr().out


def test_final_seeds_is_off_by_default_without_a_time_budget_and_checked():
    assert RunConfig(out="x").final_seeds is None
    with pytest.raises(AutoDLError, match="--final-seeds"):
        RunConfig(out="x", final_seeds=-1)
