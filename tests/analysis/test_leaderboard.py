"""Leaderboard views: ranking, best-so-far, per-choice effects, failures, export."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autodlgym.analysis.leaderboard import (
    MAIN_COLUMNS,
    best_so_far,
    choice_columns,
    choice_effects,
    export,
    failure_summary,
    leaderboard,
)
from autodlgym.errors import AutoDLError
from autodlgym.results.store import ResultStore, load_results
from autodlgym.trial import ERROR, NAN, OK, RETRAIN, STOPPED, Fidelity, TrialResult

SCORES = [0.3, None, 0.9, 0.5, None, 0.9, 0.1]
STATUSES = [OK, NAN, OK, OK, ERROR, OK, OK]


@pytest.fixture
def run(tmp_path, space):
    with ResultStore(tmp_path) as store:
        store.save_config({"space": space.to_config()})
        for i, (score, status) in enumerate(zip(SCORES, STATUSES)):
            result = TrialResult(
                status,
                val_score=score,
                params=100 - i,
                message="" if status == OK else f"{status} in trial {i}",
            )
            store.append(i, space.sample(i), Fidelity(1), 0, result)
    return tmp_path


def test_leaderboard_ranks_ok_trials_by_validation_score(run, space):
    board = leaderboard(run, top=3)
    assert board["rank"].tolist() == [1, 2, 3]
    assert board["trial_id"].tolist() == [2, 5, 3]  # tie at 0.9: earlier trial first
    assert board["val_score"].tolist() == [0.9, 0.9, 0.5]
    main = [c for c in MAIN_COLUMNS if c in board.columns]
    assert list(board.columns[: len(main)]) == main
    assert list(board.columns[len(main) : len(main) + len(space)]) == space.names
    added = {"rank", "n_evals", "rung", "stopped"}
    assert set(board.columns) == set(load_results(run).columns) | added
    assert board["n_evals"].tolist() == [1, 1, 1] and board["rung"].tolist() == [0, 0, 0]
    assert not board["stopped"].any()


def test_leaderboard_options(run):
    df = load_results(run)
    everything = leaderboard(df, top=None, status=None, per="trial")
    assert len(everything) == len(df)
    assert everything["trial_id"].tolist()[-2:] == [1, 4]  # missing scores rank last
    failures = leaderboard(df, top=None, status=[NAN, ERROR], per="trial")
    assert failures["trial_id"].tolist() == [1, 4]
    smallest = leaderboard(df, top=2, by="params")  # fewer parameters rank first
    assert smallest["trial_id"].tolist() == [6, 5] and list(smallest.columns[:3]) == [
        "rank", "trial_id", "params",
    ]  # fmt: skip
    largest = leaderboard(df, top=2, by="params", ascending=False)
    assert largest["trial_id"].tolist() == [0, 2]
    assert len(leaderboard(df.iloc[:0])) == 0
    with pytest.raises(AutoDLError, match="no column"):
        leaderboard(df, by="accuracy")
    with pytest.raises(AutoDLError, match="top"):
        leaderboard(df, top=0)
    with pytest.raises(AutoDLError, match="per must be"):
        leaderboard(df, per="model")
    assert df.equals(load_results(run))  # the input is left alone


# Ranking by architecture at its highest fidelity ------------------------------------------
def test_the_leaderboard_has_one_row_per_architecture_at_its_highest_fidelity(ranked_run, direct):
    run, ids = ranked_run
    df = load_results(run)
    board = leaderboard(run, top=None)
    assert board["arch_id"].is_unique
    assert board["rank"].tolist() == [1, 2, 3, 4]
    # E stopped at 0.90 above every ok trial; A's 0.65 at 3 epochs, not its 0.80 at 1; B's
    # 0.50 on the whole training set, not its 0.70 on 100 examples; D failed, F was pruned
    assert board["arch_id"].tolist() == [ids[k] for k in "EACB"]
    assert board["trial_id"].tolist() == [6, 5, 2, 1]
    assert board["val_score"].tolist() == [0.90, 0.65, 0.55, 0.50]
    assert board["n_evals"].tolist() == [1, 3, 1, 2]
    assert board["epochs"].tolist() == [3, 3, 3, 1]
    assert board["rung"].tolist() == [2, 2, 2, 1]  # fidelities: 1 on 100, 1, 3 epochs
    assert board["stopped"].tolist() == [True, False, False, False]
    assert board["status"].tolist() == ["stopped", "ok", "ok", "ok"]
    expected = direct(df)
    got = board[expected.columns].astype({"epochs": "int64"})
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    # the chosen trial's own columns come with it
    by_id = df.set_index("trial_id")
    assert board["test_score"].isna().tolist() == [True, False, False, False]
    assert board["test_score"].iloc[1] == by_id.loc[5, "test_score"]
    assert board["params"].tolist() == by_id.loc[[6, 5, 2, 1], "params"].tolist()
    main = [c for c in MAIN_COLUMNS if c in board.columns]
    assert list(board.columns[: len(main)]) == main
    assert leaderboard(df, top=2).equals(board.head(2))


def test_the_trial_view_ranks_every_scored_trial(ranked_run):
    run, ids = ranked_run
    df = load_results(run)
    board = leaderboard(df, top=None, per="trial")
    scored = df[df["status"].isin([OK, STOPPED])].sort_values(
        ["val_score", "trial_id"], ascending=[False, True]
    )
    assert board["trial_id"].tolist() == scored["trial_id"].tolist() == [6, 0, 8, 5, 3, 2, 1]
    counts = df["arch_id"].value_counts()
    assert board["n_evals"].tolist() == [counts[a] for a in scored["arch_id"]]
    assert board["rung"].tolist() == [2, 1, 0, 2, 2, 2, 1]
    assert board["stopped"].tolist() == [True] + [False] * 6
    assert leaderboard(df, top=None, status=OK, per="trial")["trial_id"].tolist() == [
        0, 8, 5, 3, 2, 1,
    ]  # fmt: skip


def test_leaderboard_status_and_by_options_rank_architectures(ranked_run):
    run, ids = ranked_run
    df = load_results(run)
    # every trial counts: F's pruned 0.95 stands for F; D, with no score, ranks last
    everything = leaderboard(df, top=None, status=None)
    assert everything["trial_id"].tolist() == [7, 6, 5, 2, 1, 4]
    assert everything["arch_id"].tolist() == [ids[k] for k in "FEACBD"]
    assert everything["n_evals"].tolist() == [1, 1, 3, 1, 2, 1]
    ok_only = leaderboard(df, top=None, status=OK)
    assert ok_only["trial_id"].tolist() == [5, 2, 1]
    # by another column: each architecture still stands by its best score, ranked by params
    cheapest = leaderboard(df, top=None, by="params")
    assert cheapest["trial_id"].tolist() == [1, 5, 2, 6]
    assert cheapest["params"].tolist() == [500, 1000, 2000, 3000]
    # retrained evaluations are not the search's: B's row is then its one search trial
    retrained = df.assign(phase=np.where(df["trial_id"] == 1, RETRAIN, df["phase"]))
    board = leaderboard(retrained, top=None).set_index("arch_id")
    assert board.loc[ids["B"], "trial_id"] == 8 and board.loc[ids["B"], "n_evals"] == 1
    assert board.loc[ids["B"], "rung"] == 0  # 1 epoch on 100 examples, the lowest
    assert len(leaderboard(retrained, top=None, per="trial")) == 7  # a view of every trial


def test_best_so_far_counts_stopped_trials(ranked_run):
    run, _ = ranked_run
    df = load_results(run)
    curve = best_so_far(df)
    scores = df["val_score"].where(df["status"].isin([OK, STOPPED]))
    assert curve["best_val_score"].tolist() == scores.cummax().ffill().tolist()
    assert curve["best_val_score"].tolist() == [0.8] * 6 + [0.9] * 3
    assert curve["best_trial_id"].tolist() == [0] * 6 + [6] * 3
    assert curve["best_stopped"].tolist() == [False] * 6 + [True] * 3


def test_best_so_far_on_a_run(run):
    curve = best_so_far(load_results(run))
    assert curve["n_trials"].tolist() == list(range(1, 8))
    assert curve["best_val_score"].tolist() == [0.3, 0.3, 0.9, 0.9, 0.9, 0.9, 0.9]
    assert curve["best_trial_id"].tolist() == [0, 0, 2, 2, 2, 2, 2]


@given(
    trials=st.lists(
        st.tuples(st.sampled_from([OK, OK, NAN, "pruned", STOPPED]), st.floats(0, 1)),
        max_size=30,
    ),
    order=st.randoms(use_true_random=False),
)
def test_best_so_far_is_the_running_maximum_of_ok_and_stopped_scores(trials, order):
    ids = list(range(len(trials)))
    order.shuffle(ids)  # rows in any order: the view sorts by trial id
    df = pd.DataFrame(
        {
            "trial_id": ids,
            "status": [trials[i][0] for i in ids],
            "val_score": [trials[i][1] if trials[i][0] != NAN else np.nan for i in ids],
        }
    )
    curve = best_so_far(df)
    assert curve["trial_id"].tolist() == sorted(ids)
    best = curve["best_val_score"].to_numpy()
    seen = best[~np.isnan(best)]
    assert (np.diff(seen) >= 0).all()  # monotone
    for n in range(len(trials)):
        prefix = [s for status, s in trials[: n + 1] if status in (OK, STOPPED)]
        if not prefix:
            assert math.isnan(best[n]) and pd.isna(curve["best_trial_id"].iloc[n])
            continue
        assert best[n] == max(prefix)
        holder = int(curve["best_trial_id"].iloc[n])
        assert trials[holder][0] in (OK, STOPPED) and trials[holder][1] == max(prefix)
        assert holder == min(
            i for i in range(n + 1) if trials[i][0] in (OK, STOPPED) and trials[i][1] == max(prefix)
        )
        assert curve["best_stopped"].iloc[n] == (trials[holder][0] == STOPPED)


def test_choice_effects_by_hand():
    df = pd.DataFrame(
        {
            "trial_id": range(6),
            "status": [OK, OK, OK, NAN, OK, OK],
            "val_score": [0.2, 0.4, 0.9, np.nan, 0.5, 0.7],
            "optimizer": ["sgd", "sgd", "adam", "adam", "sgd", "adam"],
            "kernel": pd.array([3, None, 5, 5, 3, None], dtype="Int64"),
        }
    )
    assert choice_columns(df) == ["optimizer", "kernel"]
    fx = choice_effects(df)
    assert fx[["decision", "option"]].values.tolist() == [
        ["optimizer", "adam"], ["optimizer", "sgd"], ["kernel", 5], ["kernel", 3],
    ]  # fmt: skip
    adam = fx.iloc[0]
    assert (adam["count"], adam["n_ok"]) == (3, 2)
    assert adam["ok_rate"] == pytest.approx(2 / 3)
    assert adam["mean"] == pytest.approx(0.8) and adam["median"] == pytest.approx(0.8)
    assert adam["max"] == pytest.approx(0.9)
    sgd = fx.iloc[1]
    assert sgd["count"] == 3 and sgd["mean"] == pytest.approx(1.1 / 3)
    assert sgd["median"] == pytest.approx(0.4)
    assert fx.iloc[3]["count"] == 2  # kernel inactive in two trials: left out
    only = choice_effects(df, "kernel")
    assert only["decision"].unique().tolist() == ["kernel"]
    with pytest.raises(AutoDLError, match="no column"):
        choice_effects(df, "width")


def test_choice_effects_on_a_run_covers_every_active_decision(run, space):
    df = load_results(run)
    fx = choice_effects(df)
    active = [c for c in space.names if df[c].notna().any()]
    assert fx["decision"].unique().tolist() == active
    for decision, group in fx.groupby("decision", sort=False):
        assert group["count"].sum() == df[decision].notna().sum()


def test_failure_summary_counts_statuses_with_examples(run):
    summary = failure_summary(load_results(run))
    assert summary["status"].tolist() == [ERROR, NAN]  # no row for ok trials
    assert summary["count"].tolist() == [1, 1]
    assert summary["share"].tolist() == pytest.approx([1 / 7, 1 / 7])  # of all 7 trials
    assert summary["examples"].tolist() == ["error in trial 4", "nan in trial 1"]


def test_failure_summary_keeps_the_most_common_messages_first():
    df = pd.DataFrame({"status": [ERROR] * 4, "message": ["b", "a", "b", ""]})
    assert failure_summary(df)["examples"].tolist() == ["b | a"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_round_trips(run, tmp_path, suffix):
    df = load_results(run)
    path = export(df, tmp_path / "out" / f"results{suffix}")
    back = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert list(back.columns) == list(df.columns)
    assert back["trial_id"].tolist() == df["trial_id"].tolist()
    np.testing.assert_allclose(back["val_score"], df["val_score"])
    assert back["spec"].tolist() == df["spec"].tolist()
    if suffix == ".parquet":  # Parquet keeps the dtypes
        assert back.dtypes.astype(str).tolist() == df.dtypes.astype(str).tolist()


def test_export_writes_mixed_option_columns_to_parquet(tmp_path):
    fx = choice_effects(
        pd.DataFrame({"status": [OK] * 2, "val_score": [0.1, 0.2], "a": ["x", "y"], "b": [1, 2]})
    )
    back = pd.read_parquet(export(fx, tmp_path / "fx.parquet"))
    assert back["option"].tolist() == ["y", "x", "2", "1"]


def test_export_rejects_other_extensions(run, tmp_path):
    with pytest.raises(AutoDLError, match=r"\.csv or \.parquet"):
        export(load_results(run), tmp_path / "results.xlsx")
