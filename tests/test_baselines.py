"""scikit-learn baselines beside the search: fitted on the same split and inputs, recorded as
their own phase, shown by ``search``, ``leaderboard`` and ``report``, never seen by searchers
or rankings. Every recorded score is checked against scikit-learn run here directly."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from data_fixtures import mixed_frame

from autodlgym import Run, cli, load_results
from autodlgym.tasks import from_arrays, get_task
from autodlgym.training.baselines import baseline_names, fit_baselines, score
from autodlgym.trial import BASELINE, SEARCH


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory, tiny_space_session_file):
    root = tmp_path_factory.mktemp("baselines")
    mixed_frame(n=300).to_csv(root / "d.csv", index=False)
    run = root / "run"
    args = ["search", "--task", f"csv:{root / 'd.csv'}", "--task-opt", "target=label"]
    args += ["--space", str(tiny_space_session_file), "--trials", "2", "--epochs", "1"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main([*args, "--out", str(run), "--no-progress", "--seed", "3"]) == 0
    return root, run, out.getvalue()


def test_table_baselines_are_recorded_as_scikit_learn_computes_them(csv_run):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    root, run, _ = csv_run
    d = get_task(f"csv:{root / 'd.csv'}", target="label").load()
    want = {}
    for name, model in (
        ("hist_gradient_boosting", HistGradientBoostingClassifier(random_state=3)),
        ("logistic_regression", LogisticRegression(max_iter=1000)),
    ):
        model.fit(d.x_train, d.y_train)
        want[name] = (
            float((model.predict(d.x_val) == d.y_val).mean()),
            float((model.predict(d.x_test) == d.y_test).mean()),
        )
    with Run.open(run) as opened:
        base = opened.baselines()
        fidelities = opened.store.fidelities()
    assert base["baseline"].tolist() == ["hist_gradient_boosting", "logistic_regression"]
    assert (base["status"] == "ok").all()
    for row in base.itertuples():
        assert (row.val_score, row.test_score) == pytest.approx(want[row.baseline])
        assert fidelities[row.trial_id].phase == BASELINE


def test_baselines_stay_out_of_the_search_and_its_rankings(csv_run):
    root, run, printed = csv_run
    df = load_results(run)
    assert set(df["phase"]) == {SEARCH} and len(df) == 2  # the frame holds networks only
    with Run.open(run) as opened:
        told = opened.store.results(phase=SEARCH)
        assert len(told) == 2 and all("baseline" not in spec for _, spec, _ in told)
        assert int(opened.best()["trial_id"].iloc[0]) in set(df["trial_id"])
    # shown where a user looks: the search's summary and the leaderboard
    assert "baselines (scikit-learn, same split): HistGradientBoosting val" in printed
    assert "the best baseline" in printed


def test_the_leaderboard_and_report_show_the_baselines(csv_run, capsys, tmp_path):
    _, run, _ = csv_run
    assert cli.main(["leaderboard", str(run), "--wide"]) == 0
    out = capsys.readouterr().out
    assert "HistGradientBoosting val" in out and "LogisticRegression val" in out
    page = tmp_path / "r.html"
    assert cli.main(["report", str(run), "--out", str(page)]) == 0
    html = page.read_text()
    assert 'id="baselines"' in html and "LogisticRegression" in html


def test_regression_gets_ridge_and_images_a_flattened_linear_model(tmp_path):
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=200)).astype(np.float32)
    task = from_arrays(x, y, path=tmp_path / "reg.npz")
    assert baseline_names(task) == ["ridge"]  # not a table: the linear reference alone
    ((name, result),) = fit_baselines(task, seed=0)
    d = task.load()
    ridge = Ridge().fit(d.x_train, d.y_train[:, 0])
    assert result.val_score == pytest.approx(r2_score(d.y_val[:, 0], ridge.predict(d.x_val)))
    assert result.test_score == pytest.approx(r2_score(d.y_test[:, 0], ridge.predict(d.x_test)))

    images = rng.normal(size=(90, 1, 4, 4)).astype(np.float32)
    labels = (images[:, 0, 0, 0] > 0).astype(np.int64)
    task = from_arrays(images, labels, path=tmp_path / "img.npz")
    ((name, result),) = fit_baselines(task, seed=0)
    d = task.load()
    flat = LogisticRegression(max_iter=1000).fit(d.x_train.reshape(len(d.x_train), -1), d.y_train)
    assert name == "logistic_regression"
    want = (flat.predict(d.x_test.reshape(len(d.x_test), -1)) == d.y_test).mean()
    assert result.test_score == pytest.approx(want)


def test_score_pools_r2_over_targets_as_the_trainer_does():
    y = np.array([[0.0, 1.0], [1.0, 3.0], [2.0, 5.0]])
    p = np.array([[0.0, 2.0], [1.0, 3.0], [2.0, 4.0]])
    sst = ((y - y.mean(axis=0)) ** 2).sum()
    assert score(get_task("adding"), y, p) == pytest.approx(1 - 2.0 / sst)


def test_no_baselines_turns_them_off(tmp_path, tiny_space_file):
    rng = np.random.default_rng(1)
    task = from_arrays(rng.normal(size=(60, 3)), rng.integers(0, 2, 60), path=tmp_path / "a.npz")
    run = tmp_path / "run"
    args = ["search", "--task", task.name, "--space", str(tiny_space_file), "--trials", "1"]
    assert cli.main([*args, "--epochs", "1", "--out", str(run), "--no-baselines"]) == 0
    with Run.open(run) as opened:
        assert opened.baselines().empty and opened.config.baselines is False
