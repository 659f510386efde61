"""The comparison page's numbers: regret to a table's optimum, the distribution of the runs'
best scores and the one-sided Mann-Whitney U against the first searcher, each checked
against a direct computation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from autodlgym.analysis.anytime import (
    best_within,
    mann_whitney_vs_first,
    plot_compare,
    plot_edf,
    run_optimum,
)
from autodlgym.analysis.report import build_comparison
from autodlgym.errors import AutoDLError
from autodlgym.run import Run
from autodlgym.tasks import get_task
from autodlgym.trial import OK, STOPPED

BASE = [0.50, 0.55, 0.60, 0.52]  # the first searcher's best scores
TPE = [0.70, 0.65, 0.58]  # better
FEW = [0.90, 0.95]  # too few runs for a test


def _scores(groups):
    import pandas as pd

    return pd.DataFrame([{"searcher": s, "best_val_score": v} for s, vals in groups for v in vals])


def test_mann_whitney_is_one_sided_against_the_first_searcher():
    t = mann_whitney_vs_first(_scores([("random", BASE), ("tpe", TPE), ("bo", FEW)]))
    assert t["searcher"].tolist() == ["tpe", "bo"]  # in the order given, baseline left out
    assert t["baseline"].tolist() == ["random", "random"]
    assert t["n"].tolist() == [3, 2] and t["n_baseline"].tolist() == [4, 4]
    want = mannwhitneyu(TPE, BASE, alternative="greater")
    assert t.loc[0, "U"] == pytest.approx(want.statistic)
    assert t.loc[0, "p_value"] == pytest.approx(want.pvalue)
    assert t.loc[0, "note"] == ""
    assert math.isnan(t.loc[1, "p_value"]) and t.loc[1, "note"] == "(too few runs)"
    # the baseline is the first row's searcher, whatever the names sort to
    flipped = mann_whitney_vs_first(_scores([("tpe", TPE), ("random", BASE)]))
    want = mannwhitneyu(BASE, TPE, alternative="greater")
    assert flipped.loc[0, "searcher"] == "random"
    assert flipped.loc[0, "p_value"] == pytest.approx(want.pvalue)
    assert mann_whitney_vs_first(_scores([("random", BASE)])).empty


def test_best_within_counts_stopped_trials_up_to_the_budget(make_run, trial_result):
    results = [
        trial_result(OK, 0.3),
        trial_result(STOPPED, 0.7, epochs=1),
        trial_result(OK, 0.9, train_seconds=10.0),
    ]
    run = make_run(results)
    with Run.open(run) as r:
        df = r.frame()
    assert best_within(df, "trials", 1) == 0.3
    assert best_within(df, "trials", 2) == 0.7  # the stopped trial's score counts
    assert best_within(df, "trials", 3) == 0.9
    assert best_within(df, "seconds", 3.0) == 0.7  # 1.5 s per trial, then 10.5 s
    assert math.isnan(best_within(df, "seconds", 1.0))
    with pytest.raises(AutoDLError):
        best_within(df, "epochs", 1)


def test_the_distribution_of_best_scores_steps_per_searcher():
    fig = plot_edf(_scores([("random", BASE), ("tpe", TPE)]))
    lines = fig.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["random (4 runs)", "tpe (3 runs)"]
    for line, vals in zip(lines, (BASE, TPE), strict=True):
        v = np.sort(vals)
        np.testing.assert_allclose(line.get_xdata(), np.concatenate([[v[0]], v]))
        np.testing.assert_allclose(
            line.get_ydata(), np.concatenate([[0.0], np.arange(1, len(v) + 1) / len(v)])
        )


def _page_runs(make_run, trial_result, groups, **kw):
    runs = []
    for searcher, finals in groups:
        for seed, best in enumerate(finals):
            # a run of two trials; its second holds its best score, its first a lower one
            results = [trial_result(OK, best - 0.1, **kw), trial_result(OK, best, **kw)]
            runs.append(make_run(results, searcher=searcher, seed=seed, name=f"{searcher}{seed}"))
    return runs


def test_the_page_tests_each_searcher_against_the_first(make_run, trial_result):
    runs = _page_runs(make_run, trial_result, [("random", BASE), ("tpe", TPE), ("bo", FEW)])
    # one shorter baseline run: the test compares every run within its single trial
    runs.append(make_run([trial_result(OK, 0.40)], searcher="random", seed=9, name="short"))
    page, summary = build_comparison(runs)
    assert summary["searcher"].iloc[0] == "random" and "final_regret" not in summary
    assert "Better than random?" in page and "(too few runs)" in page
    # within 1 trial (every run has one): each run's first score
    first = [v - 0.1 for v in TPE], [v - 0.1 for v in BASE] + [0.40]
    want = mannwhitneyu(*first, alternative="greater")
    assert f"<td>{want.pvalue:.4g}</td>" in page
    # within the fewest seconds (one trial of 1.5 s): the same scores
    assert page.count(f"<td>{want.pvalue:.4g}</td>") == 2
    assert "<td>1 trial</td>" in page and "<td>1.5 s</td>" in page
    tests = summary.attrs["significance"]
    assert tests["budget"].tolist() == ["1 trial", "1 trial", "1.5 s", "1.5 s"]
    np.testing.assert_allclose(tests["p_value"].iloc[[0, 2]], [want.pvalue] * 2)


def test_the_command_prints_the_test(make_run, trial_result, tmp_path, capsys):
    from autodlgym.cli import main

    runs = _page_runs(make_run, trial_result, [("random", BASE[:3]), ("tpe", TPE)])
    assert main(["compare", *map(str, runs), "--out", str(tmp_path / "c.html")]) == 0
    out = capsys.readouterr().out
    want = mannwhitneyu(TPE, BASE[:3], alternative="greater").pvalue
    assert "better than random? (one-sided Mann-Whitney U)" in out
    assert f"{want:.4g}" in out


def test_runs_without_compute_seconds_are_shown_by_trials_only(make_run, trial_result):
    def free(status, val):
        return dataclasses.replace(trial_result(status, val, train_seconds=0.0), eval_seconds=0.0)

    runs = [make_run([free(OK, v)], seed=i, name=f"r{i}") for i, v in enumerate((0.4, 0.6))]
    page, summary = build_comparison(runs)
    assert (summary["compute_seconds"] == 0).all()
    assert "No run records a compute second" in page
    assert "by compute seconds" not in page
    assert page.count("<img") == 2  # the score by trials, and the distribution


def test_regret_to_the_optimum_of_a_lookup_table(make_run, trial_result):
    runs = [
        make_run([trial_result(OK, v) for v in vals], seed=i, name=f"t{i}", task="mnist1d-table")
        for i, vals in enumerate(((0.5, 0.7), (0.6, 0.65)))
    ]
    optimum = get_task("mnist1d-table").outcomes(3).best_val  # the runs' 3 epochs
    assert run_optimum(runs[0]) == pytest.approx(optimum)
    page, summary = build_comparison(runs)
    np.testing.assert_allclose(summary["final_regret"], [optimum - 0.7, optimum - 0.65])
    assert page.count('alt="regret') == 2  # by trials and by seconds
    fig = plot_compare(runs, "trials", optimum=optimum)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    (line,) = ax.get_lines()
    mean = np.array([np.mean([0.5, 0.6]), np.mean([0.7, 0.65])])
    np.testing.assert_allclose(line.get_ydata(), optimum - mean)
    # a run that reached the optimum: zero regret, drawn on a symmetric-log scale
    assert plot_compare(runs, "trials", optimum=0.7).axes[0].get_yscale() == "symlog"


def test_a_task_that_trains_has_no_optimum(make_run, trial_result):
    assert run_optimum(make_run([trial_result(OK, 0.5)])) is None
