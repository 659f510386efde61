"""autodlgym retrain: the top specs of a search with several seeds, in a phase of their own."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from autodlgym import cli, load_results
from autodlgym.analysis.retrained import retrained
from autodlgym.errors import AutoDLError
from autodlgym.results.store import ResultStore
from autodlgym.retrain import model_path, retrain, top_specs
from autodlgym.runner import RunConfig, run_search
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.tasks import from_arrays
from autodlgym.training.trainer import train_and_score
from autodlgym.trial import BASELINE, RETRAIN, SEARCH, Fidelity


@pytest.fixture
def searched(tmp_path, tiny_space_config):
    """A four-trial search on a small two-class vector task."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    task = from_arrays(x, y, path=tmp_path / "arrays.npz")
    out = tmp_path / "run"
    run_search(RunConfig(out=str(out), task=task, space=tiny_space_config, trials=4, epochs=1))
    return out, task


def test_retrain_trains_the_top_specs_with_each_seed_in_the_retrain_phase(searched):
    out, task = searched
    before = load_results(out)
    view = retrain(out, top=2, seeds=2, epochs=2)
    df = load_results(out)
    done = df[df["phase"] == RETRAIN]
    best = top_specs(before, 2)
    assert len(done) == 4 and set(done["arch_id"]) == set(best["arch_id"])
    assert sorted(done["seed"]) == [0, 0, 1, 1] and set(done["epochs"]) == {2}
    assert done["time_limit"].isna().all() and done["max_train_samples"].isna().all()
    assert (df[df["phase"] == SEARCH]["trial_id"] == before["trial_id"]).all()
    for trial_id in done["trial_id"]:
        assert model_path(out, trial_id).is_file()
    # the view's numbers, computed directly from the recorded trials
    assert list(view["arch_id"]) == sorted(
        set(best["arch_id"]), key=lambda a: -done[done["arch_id"] == a]["val_score"].mean()
    )
    for row in view.itertuples():
        scores = done[done["arch_id"] == row.arch_id]
        assert row.n_seeds == 2 and row.epochs == 2
        assert row.val_mean == pytest.approx(scores["val_score"].mean())
        assert row.val_sd == pytest.approx(np.std(scores["val_score"], ddof=1))
        assert row.test_sd == pytest.approx(np.std(scores["test_score"], ddof=1))
        assert row.search_val_score == best.set_index("arch_id").at[row.arch_id, "val_score"]
    # a recorded score is what training that spec at that fidelity and seed gives
    first = done.iloc[0]
    spec = ArchSpec.from_json(first["spec"])
    direct = train_and_score(spec, task, Fidelity(2), int(first["seed"]))
    assert direct.ok, direct.message
    assert first["val_score"] == pytest.approx(direct.val_score)
    assert first["test_score"] == pytest.approx(direct.test_score)


def test_retrain_again_trains_nothing_and_search_resume_ignores_it(searched):
    out, _ = searched
    retrain(out, top=1, seeds=2, epochs=1)
    n = len(load_results(out))
    retrain(out, top=1, seeds=2, epochs=1)  # recorded already: nothing new
    assert len(load_results(out)) == n
    # the retrained trials are not search trials: the budget and the searcher ignore them
    summary = run_search(RunConfig(out=str(out), trials=5), resume=True)
    df = load_results(out)
    assert (df["phase"] == SEARCH).sum() == 5 and (df["phase"] == RETRAIN).sum() == 2
    assert summary.finished == 5
    with ResultStore(out, create=False) as store:
        told = set(pickle.loads(store.load_state("searcher"))["told"])
        assert store.n_finished(phase=SEARCH) == 5 and store.n_finished(phase=RETRAIN) == 2
        assert store.n_finished() == 7 + store.n_finished(phase=BASELINE)  # its yardsticks
    assert told == set(df[df["phase"] == SEARCH]["trial_id"])


def test_fidelity_keys_keep_the_phases_apart():
    search, final = Fidelity(2), Fidelity(2, phase=RETRAIN)
    assert search.key() == '{"epochs":2,"max_train_samples":null,"time_limit":null}'
    assert final.key() != search.key() and Fidelity.from_key(final.key()) == final
    with pytest.raises(AutoDLError):
        Fidelity(1, phase="other")


def test_leaderboard_keeps_retrained_apart(searched, capsys):
    out, _ = searched
    assert cli.main(["leaderboard", str(out), "--retrained"]) == 2  # nothing retrained yet
    assert "autodlgym retrain" in capsys.readouterr().err
    assert cli.main(["retrain", str(out), "--top", "2", "--seeds", "2", "--epochs", "1"]) == 0
    printed = capsys.readouterr().out
    rows = printed.strip().splitlines()[1:]  # after the header
    assert len(rows) == 2 and all(row.count("+-") == 2 for row in rows)  # val and test
    assert cli.main(["leaderboard", str(out)]) == 0
    board = capsys.readouterr().out
    assert board.startswith("4 trials") and "4 retrained evaluations" in board
    assert cli.main(["leaderboard", str(out), "--retrained", "--top", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "+-" in lines[1]
    view = retrained(out)
    assert list(view["rank"]) == [1, 2] and view["val_mean"].is_monotonic_decreasing


def test_search_views_leave_retrained_evaluations_out(searched):
    import optuna

    from autodlgym.analysis.optuna_export import STUDY_NAME, export_optuna

    out, _ = searched
    retrain(out, top=1, seeds=2, epochs=1)
    db = export_optuna(out)
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{db}")
    assert len(study.trials) == 4


@pytest.mark.parametrize(
    "args, words",
    [
        (["--top", "0"], "--top"),
        (["--seeds", "0"], "--seeds"),
    ],
)
def test_bad_retrain_input_is_one_line(searched, capsys, args, words):
    out, _ = searched
    assert cli.main(["retrain", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_retrain_needs_a_run(tmp_path):
    with pytest.raises(AutoDLError, match="no autodlgym run"):
        retrain(tmp_path)
