"""autodlgym bench: every figure it reports recomputed from the runs it made."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu

from autodlgym.analysis.bench import (
    RUN_COLUMNS,
    SUMMARY_COLUMNS,
    best_by_validation,
    format_report,
    run_bench,
)
from autodlgym.cli import main
from autodlgym.errors import AutoDLError
from autodlgym.results.store import load_results
from autodlgym.tasks import get_task


def _evolution_bench(out, seeds: int, first_seed: int = 0):
    """Evolution and random on the MNIST-1D table at budgets 5 and 20, quietly."""
    return run_bench(
        ["mnist1d-table"],
        ["evolution"],
        seeds=seeds,
        budgets=[5, 20],
        out=out,
        jobs=1,
        log=lambda s: None,
        first_seed=first_seed,
    )


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return _evolution_bench(tmp_path_factory.mktemp("bench"), seeds=3)


def test_runs_are_recomputed_from_the_run_directories(bench):
    table = get_task("mnist1d-table").lookup().outcomes()
    assert list(bench.runs.columns) == list(RUN_COLUMNS)
    assert set(bench.runs.searcher) == {"random", "evolution"}  # random added as the baseline
    for _, row in bench.runs.iterrows():
        df = load_results(bench.out / "runs" / "mnist1d-table" / row.searcher / f"seed{row.seed}")
        head = df.sort_values("trial_id").head(row.budget)
        ok = head[head.status == "ok"]
        best = ok.val_score.max()
        assert row.best_val == best
        assert row.regret == pytest.approx(table.best_val - best)
        assert row.test_at_best_val == ok[ok.val_score == best].iloc[0].test_score
        assert row.top1 == (best >= table.top_threshold(0.01))
        assert row.evaluations == len(head) == row.budget


def test_summary_is_recomputed_from_the_runs(bench):
    s, runs = bench.summary, bench.runs
    assert list(s.columns) == list(SUMMARY_COLUMNS)
    for _, row in s.iterrows():
        mine = runs[(runs.searcher == row.searcher) & (runs.budget == row.budget)]
        assert row.regret_mean == pytest.approx(mine.regret.mean())
        assert row.regret_sd == pytest.approx(mine.regret.std(ddof=1))
        assert row.regret_median == pytest.approx(mine.regret.median())
        assert row.test_mean == pytest.approx(mine.test_at_best_val.mean())
        assert row.top1_fraction == pytest.approx(mine.top1.mean())
        base = runs[(runs.searcher == "random") & (runs.budget == row.budget)].regret
        if row.searcher == "random":
            assert math.isnan(row.p_vs_random)
        else:
            want = mannwhitneyu(mine.regret, base, alternative="less").pvalue
            assert row.p_vs_random == pytest.approx(want)


def test_files_and_report(bench):
    names = {p.name for p in bench.files}
    assert names == {"bench_runs.csv", "bench_summary.csv", "bench_anytime.png"}
    assert all(p.stat().st_size > 0 for p in bench.files)
    pd.testing.assert_frame_equal(
        pd.read_csv(bench.out / "bench_summary.csv"), bench.summary, check_dtype=False
    )
    text = format_report(bench)
    assert "== mnist1d-table: 384 architectures" in text
    assert "(random expectation)" in text and "published:" in text
    assert sum(line.strip().startswith(("5 ", "20 ")) for line in text.splitlines()) == 6


def test_best_by_validation_takes_the_first_of_ties_and_skips_failures():
    val = np.array([np.nan, 0.5, 0.7, 0.7, 0.9])
    test = np.array([0.1, 0.4, 0.6, 0.65, 0.8])
    assert best_by_validation(val, test, 4) == (0.7, 0.6)
    assert best_by_validation(val, test, 1) == (
        pytest.approx(math.nan, nan_ok=True),
        pytest.approx(math.nan, nan_ok=True),
    )


def test_first_seed_runs_the_same_searches_as_a_longer_range(bench, tmp_path):
    later = _evolution_bench(tmp_path, seeds=2, first_seed=1)
    assert sorted(set(later.runs.seed)) == [1, 2]
    assert (tmp_path / "runs" / "mnist1d-table" / "evolution" / "seed2").is_dir()
    key = ["searcher", "seed", "budget"]
    mine = later.runs.drop(columns="seconds").sort_values(key).reset_index(drop=True)
    same = bench.runs[bench.runs.seed >= 1].drop(columns="seconds")
    pd.testing.assert_frame_equal(mine, same.sort_values(key).reset_index(drop=True))


def test_bad_input_is_one_line(capsys):
    with pytest.raises(AutoDLError, match="tabular"):
        run_bench(["digits"], ["random"], seeds=1, budgets=[2], jobs=1)
    assert main(["bench", "--tasks", "mnist1d-table", "--budgets", "5,x"]) == 2
    assert "--budgets" in capsys.readouterr().err
    assert main(["bench", "--tasks", "mnist1d-table", "--first-seed", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--first-seed must be 0 or more" in err and "Traceback" not in err


def test_bench_proposes_what_a_plain_search_does(tmp_path):
    from autodlgym.runner import RunConfig, run_search

    result = run_bench(
        ["nasbench-graph:cora"],
        ["tpe"],
        seeds=1,
        budgets=[15],
        out=tmp_path / "b",
        jobs=1,
        log=lambda s: None,
    )
    plain = run_search(
        RunConfig(
            out=str(tmp_path / "plain"), task="nasbench-graph:cora", searcher="tpe", trials=15
        )
    )
    bench_run = load_results(result.out / "runs" / "nasbench-graph_cora" / "tpe" / "seed0")
    assert bench_run.arch_id.tolist() == load_results(plain.run_dir).arch_id.tolist()
