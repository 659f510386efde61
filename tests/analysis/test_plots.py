"""The data behind each analysis figure, checked against direct computations; every figure
draws, and warns with an empty figure when there is nothing to draw."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from autodlgym.analysis._figures import time_unit
from autodlgym.analysis.anytime import (
    anytime,
    compare_anytime,
    compare_bands,
    plot_anytime,
    plot_compare,
    random_search_band,
)
from autodlgym.analysis.compute import compute_by_block, compute_by_status, plot_compute
from autodlgym.analysis.curves import learning_curves, plot_learning_curves, top_curves
from autodlgym.analysis.effects import (
    EVALUATORS,
    decision_effects,
    decision_importance,
    effects_note,
    effects_to_draw,
    importance_note,
    plot_decision_effects,
    plot_decision_importance,
)
from autodlgym.analysis.initdiag import (
    diagnostic_correlations,
    init_diagnostics,
    plot_init_diagnostics,
)
from autodlgym.analysis.pareto import available_costs, pareto_front, plot_pareto
from autodlgym.errors import AutoDLError
from autodlgym.results.store import ResultStore, load_results
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import ERROR, FAILURES, NAN, OK, OOM, PRUNED, STOPPED, TIMEOUT, Fidelity


def _frames(run):
    with ResultStore(run, create=False) as store:
        return store.to_dataframe(), store.curves()


# Anytime -------------------------------------------------------------------------------------
def test_anytime_tracks_the_best_ok_score_and_the_compute_spent(make_run, trial_result):
    results = [
        trial_result(OK, 0.5, train_seconds=1.0),
        trial_result(ERROR, train_seconds=0.25),
        trial_result(OK, 0.7, train_seconds=2.0),
        trial_result(PRUNED, 0.9, epochs=1, train_seconds=0.5),
        trial_result(OK, 0.6, train_seconds=3.0),
    ]
    df, _ = _frames(make_run(results))
    a = anytime(df)
    assert a["best_val_score"].tolist() == [0.5, 0.5, 0.7, 0.7, 0.7]  # pruned 0.9 never counts
    assert a["best_trial_id"].tolist() == [0, 0, 2, 2, 2]
    spent = np.cumsum([r.train_seconds + r.eval_seconds for r in results])
    np.testing.assert_allclose(a["compute_seconds"], spent)


def test_anytime_counts_stopped_trials_with_the_score_they_reached(make_run, trial_result):
    results = [
        trial_result(OK, 0.5),
        trial_result(STOPPED, 0.8, epochs=1),
        trial_result(OK, 0.7),
        trial_result(STOPPED, None),  # stopped before its first score: nothing to count
    ]
    df, _ = _frames(make_run(results))
    a = anytime(df)
    assert a["best_val_score"].tolist() == [0.5, 0.8, 0.8, 0.8]
    assert a["best_trial_id"].tolist() == [0, 1, 1, 1]
    assert a["best_stopped"].tolist() == [False, True, True, True]
    labels = plot_anytime(df).axes[0].get_legend_handles_labels()[1]
    assert "stopped at the deadline" in labels
    long = compare_anytime({"r": df}, "trials")
    assert long["best_val_score"].tolist() == [0.5, 0.8, 0.8, 0.8]


def test_random_search_band_is_the_exact_distribution_of_the_best_draw():
    two = random_search_band([0.0, 1.0], 3)
    # the best of n fair coin draws is 1 unless all n are 0
    np.testing.assert_allclose(two["mean"], [0.5, 0.75, 0.875])
    values = np.random.default_rng(0).normal(size=50)
    band = random_search_band(values, 8, level=0.9)
    rng = np.random.default_rng(1)
    sims = rng.choice(values, size=(40_000, 8)).max(axis=1)
    assert band["mean"].iloc[-1] == pytest.approx(sims.mean(), abs=0.01)
    low, high = band["low"].iloc[-1], band["high"].iloc[-1]
    # the 5th and 95th percentiles of a discrete distribution: P(X <= q) >= p > P(X < q)
    assert (sims <= low).mean() >= 0.05 - 0.005 and (sims < low).mean() <= 0.05 + 0.005
    assert (sims <= high).mean() >= 0.95 - 0.005 and (sims < high).mean() <= 0.95 + 0.005
    assert (np.diff(band["mean"]) >= 0).all()
    assert (band["low"] <= band["mean"]).all() and (band["mean"] <= band["high"]).all()


@pytest.mark.parametrize(
    "values, n, level", [([], 3, 0.9), ([math.nan], 3, 0.9), ([1.0], 0, 0.9), ([1.0], 3, 1.0)]
)
def test_random_search_band_rejects_bad_input(values, n, level):
    with pytest.raises(AutoDLError):
        random_search_band(values, n, level)


def test_compare_lines_runs_up_and_bands_seeds_of_one_searcher(make_run, trial_result):
    a = make_run([trial_result(OK, v) for v in (0.2, 0.6, 0.4)], seed=0, name="a")
    b = make_run([trial_result(OK, v) for v in (0.5, 0.3)], seed=1, name="b")
    c = make_run([trial_result(OK, 0.9)], searcher="tpe", name="c")
    long = compare_anytime([a, b, c])
    got = long.pivot(index="x", columns="run", values="best_val_score")
    np.testing.assert_allclose(got["a"], [0.2, 0.6, 0.6])
    np.testing.assert_allclose(got["b"], [0.5, 0.5, math.nan])  # no extrapolation past its end
    bands = compare_bands(long)
    rs = bands[bands["searcher"] == "random"].set_index("x")
    assert rs["n_runs"].tolist() == [2, 2, 1]
    np.testing.assert_allclose(rs["mean"], [0.35, 0.55, 0.6])
    np.testing.assert_allclose(rs["low"], [0.2, 0.5, 0.6])
    secs = compare_anytime([a, b], x="seconds")
    assert secs["x"].max() == pytest.approx(3 * 1.5)  # three trials of 1.0 + 0.5 seconds
    assert isinstance(plot_compare([a, b, c]), Figure)
    other = make_run([trial_result(OK, 0.1)], name="d", task="mnist1d")
    with pytest.raises(AutoDLError, match="different tasks"):
        compare_anytime([a, other])


# Learning curves -----------------------------------------------------------------------------
def test_learning_curves_show_where_pruned_trials_stopped(make_run, trial_result):
    results = [trial_result(OK, 0.9), trial_result(PRUNED, 0.3, epochs=1), trial_result(NAN)]
    df, curves = _frames(make_run(results))
    pts = learning_curves(df, curves)
    assert pts.groupby("trial_id").size().to_dict() == {0: 3, 1: 1}  # the nan trial has none
    last = pts[pts["last"]].set_index("trial_id")
    assert last.loc[1, "status"] == PRUNED and last.loc[1, "epoch"] == 1
    assert last.loc[0, "val_score"] == pytest.approx(0.9)
    np.testing.assert_allclose(pts[pts.trial_id == 0]["val_score"], [0.3, 0.6, 0.9])
    with pytest.raises(AutoDLError, match="curves"):
        learning_curves(df, pd.DataFrame({"trial_id": [0]}))


def test_learning_curves_label_the_best_trials_outside_the_data(make_run, trial_result):
    rng = np.random.default_rng(2)
    vals = rng.random(12)
    results = [trial_result(OK, float(v)) for v in vals]
    results += [trial_result(PRUNED, 0.99, epochs=1), trial_result(NAN)]
    df, curves = _frames(make_run(results))
    # directly: the ok trials by score, best first (the pruned 0.99 is not one)
    want = [int(i) for i in np.argsort(-vals, kind="stable")[:4]]
    assert top_curves(df, curves, 4) == want
    fig = plot_learning_curves(df, curves, label_top=4)
    ax = fig.axes[0]
    labels = sorted(t.get_text() for t in ax.texts)
    assert labels == sorted(f"#{t}" for t in want)
    best = [line for line in ax.lines if line.get_label().startswith("best: trial")]
    assert best and best[0].get_label() == f"best: trial {want[0]} ({vals[want[0]]:.4f})"
    np.testing.assert_allclose(best[0].get_ydata(), vals[want[0]] * np.arange(1, 4) / 3)
    legend = ax.get_legend()
    assert legend.get_bbox_to_anchor().x0 >= ax.get_window_extent().x1  # right of the plot


def test_learning_curves_of_one_epoch_are_points_on_that_epoch(make_run, trial_result):
    rng = np.random.default_rng(1)
    vals = 0.5 + 0.01 * rng.random(8)
    df, curves = _frames(make_run([trial_result(OK, float(v), epochs=1) for v in vals]))
    ax = plot_learning_curves(df, curves).axes[0]
    assert not any(type(c).__name__ == "LineCollection" for c in ax.collections)
    x0, x1 = ax.get_xlim()
    assert x0 < 1 < x1 and x1 - x0 < 1.5 and list(ax.get_xticks()) == [1.0]
    y0, y1 = ax.get_ylim()
    assert y0 <= vals.min() and vals.max() <= y1 and y1 - y0 < 0.05


# Effects and importance -----------------------------------------------------------------------
def test_decision_effects_give_t_intervals(make_run, space, trial_result):
    from scipy import stats

    rng = np.random.default_rng(3)
    results = [trial_result(OK, float(v)) for v in rng.random(30)] + [trial_result(ERROR)]
    df, _ = _frames(make_run(results))
    eff = decision_effects(df)
    ok = df[df.status == OK]
    for option, group in ok.groupby("lr"):
        row = eff[(eff.decision == "lr") & (eff.option == option)].iloc[0]
        lo, hi = stats.t.interval(
            0.95, len(group) - 1, loc=group.val_score.mean(), scale=stats.sem(group.val_score)
        )
        assert row["n"] == len(group)
        assert row["mean"] == pytest.approx(group.val_score.mean())
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))
    assert set(eff.decision) <= set(space.names) and "lr" in set(eff.decision)


def _effects_run(make_run, space, trial_result, n=40, seed=4):
    rng = np.random.default_rng(seed)
    specs = [space.sample(rng) for _ in range(n)]
    # the score rises with lr and with the activation's position; the rest is noise
    acts = list(space["activation"].options)
    scores = [
        0.78 + 0.01 * (s["lr"] == 1e-2) + 0.002 * acts.index(s["activation"]) + 0.002 * rng.random()
        for s in specs
    ]
    df, _ = _frames(make_run([trial_result(OK, float(v)) for v in scores], specs=specs))
    return df


def test_effects_to_draw_keep_option_order_and_rank_by_spread(make_run, space, trial_result):
    df = _effects_run(make_run, space, trial_result)
    drawn = effects_to_draw(df, space, max_decisions=6)
    ok = df[df.status == OK]
    # the decisions with two options or more, ranked directly: spread of the means of the
    # options with 5 trials or more (decisions with two such options first), then of all
    rows = []
    for col in space.names:
        means = ok.groupby(col)["val_score"].mean()
        if len(means) < 2:
            continue
        counts = ok.groupby(col).size()
        solid = means[counts >= 5]
        s = solid.max() - solid.min() if len(solid) >= 2 else np.nan
        rows.append((col, s, means.max() - means.min()))
    rank = pd.DataFrame(rows, columns=["d", "solid", "every"])
    rank["has"] = rank["solid"].notna()
    rank = rank.sort_values(["has", "solid", "every"], ascending=False, kind="stable")
    want = list(rank["d"][:6])
    assert list(dict.fromkeys(drawn["decision"])) == want
    for dec, rows_ in drawn.groupby("decision", sort=False):
        order = [o for o in space[dec].options if o in set(ok[dec].dropna())]
        assert list(rows_["option"]) == order  # the space's order, not by mean
        for _, r in rows_.iterrows():
            group = ok.loc[ok[dec] == r["option"], "val_score"]
            assert r["n"] == len(group) and r["mean"] == pytest.approx(group.mean())
            assert r["interval"] == (len(group) >= 5)
    full = decision_effects(df, space=space)
    assert set(full["decision"]) >= set(want) and len(set(full["decision"])) > 6


def test_effects_figure_has_an_honest_axis_and_one_panel_per_decision(
    make_run, space, trial_result
):
    df = _effects_run(make_run, space, trial_result)
    drawn = effects_to_draw(df, space, max_decisions=8)
    fig = plot_decision_effects(df, "random", max_decisions=8, space=space)
    panels = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in panels] == list(dict.fromkeys(drawn["decision"]))
    # the y axis spans the means and the drawn intervals, not 0..1
    shown = drawn[drawn["interval"]]
    lo = min(drawn["mean"].min(), shown["ci_low"].min())
    hi = max(drawn["mean"].max(), shown["ci_high"].max())
    y0, y1 = panels[0].get_ylim()
    assert y0 <= lo and hi <= y1 and (y1 - y0) < 1.2 * (hi - lo)
    by_title = {ax.get_title(): ax for ax in panels}
    if "lr" in by_title:  # 1e-3 and 1e-2: numbers spanning 10x, on a log axis
        assert by_title["lr"].get_xscale() == "log"
    assert "of" in fig._suptitle.get_text()
    # one caption, and no searcher caveat under a random search
    assert not [t for t in fig.texts if "biased" in t.get_text()]
    fig = plot_decision_effects(df, "tpe", max_decisions=8, space=space, note=False)
    assert not [t for t in fig.texts if "biased" in t.get_text()]
    fig = plot_decision_effects(df, "tpe", max_decisions=8, space=space)
    assert len([t for t in fig.texts if "biased" in t.get_text()]) == 1


def test_effects_draw_no_interval_below_five_trials(make_run, space, trial_result):
    df = _effects_run(make_run, space, trial_result, n=12)
    drawn = effects_to_draw(df, space, max_decisions=40)
    assert (~drawn["interval"]).any()
    fig = plot_decision_effects(df, "random", max_decisions=40, space=space)
    n_bars = sum(
        len(c.get_segments()) for ax in fig.axes for c in ax.collections if c.get_segments()
    )
    assert n_bars == int(drawn["interval"].sum())


@pytest.mark.parametrize("searcher", ["random", "qmc", "tpe", "evolution", "my.plugin:Searcher"])
def test_effects_carry_a_note_under_adaptive_searchers(searcher):
    note = effects_note(searcher)
    assert (note is None) == (searcher in ("random", "qmc"))
    if note:
        assert "biased" in note and searcher in note


@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_importance_ranks_the_decision_that_drives_the_score(
    make_run, space, evaluator, trial_result
):
    rng = np.random.default_rng(0)
    specs = [space.sample(rng) for _ in range(60)]
    # the score depends on lr alone (plus a little noise)
    results = [
        trial_result(OK, (0.8 if s["lr"] == 1e-2 else 0.3) + 0.01 * rng.random()) for s in specs
    ]
    df, _ = _frames(make_run(results, specs=specs))
    imp = decision_importance(df, space, evaluator=evaluator)
    assert imp["decision"].iloc[0] == "lr"
    assert imp["importance"].sum() == pytest.approx(1.0)
    assert imp["importance"].iloc[0] > 0.5
    with pytest.raises(AutoDLError, match="evaluator"):
        decision_importance(df, space, evaluator="shap")


def test_importance_warns_on_few_or_mixed_fidelity_trials(make_run, trial_result):
    made = iter(range(10))

    def note(n, fidelities=None, failed=0):
        results = [trial_result(OK, 0.5 + 0.01 * i) for i in range(n)]
        results += [trial_result(ERROR)] * failed
        fids = None if fidelities is None else fidelities + [Fidelity(epochs=3)] * failed
        df, _ = _frames(make_run(results, fidelities=fids, name=f"r{next(made)}"))
        return importance_note(df)

    assert note(30) is None
    assert "only 29 ok trials (fewer than 30)" in note(29, failed=5)  # failures do not count
    mixed = note(30, [Fidelity(epochs=1 + i % 2) for i in range(30)])
    assert "several fidelities (2 epochs)" in mixed and "only" not in mixed
    samples = [Fidelity(epochs=3, max_train_samples=None if i % 3 else 100) for i in range(40)]
    assert "(2 training-set sizes)" in note(40, samples)


def test_importance_is_empty_below_two_ok_trials(make_run, space, trial_result):
    df, _ = _frames(make_run([trial_result(OK, 0.5), trial_result(ERROR)]))
    assert decision_importance(df, space).empty


# Pareto ----------------------------------------------------------------------------------------
def test_pareto_front_matches_a_brute_force_dominance_check(make_run, trial_result):
    rng = np.random.default_rng(5)
    # a coarse grid, so equal costs and equal scores occur
    costs = rng.integers(1, 8, size=40) * 100
    scores = rng.integers(0, 6, size=40) / 10
    results = [trial_result(OK, float(s), params=int(c)) for s, c in zip(scores, costs)]
    results.append(trial_result(ERROR, params=1))  # cheap but failed: never on the front
    df, _ = _frames(make_run(results))
    front = pareto_front(df, "params").set_index("trial_id")
    for i in range(40):
        dominated = any(
            costs[j] <= costs[i]
            and scores[j] >= scores[i]
            and (costs[j] < costs[i] or scores[j] > scores[i])
            for j in range(40)
        )
        assert front.loc[i, "on_front"] == (not dominated), i
    assert 40 not in front.index
    on = front[front["on_front"]]
    assert (on["arch"] != "").all()
    spec = json.loads(df.set_index("trial_id").loc[on.index[0], "spec"])
    assert on["arch"].iloc[0] == ArchSpec(spec).summary()
    assert available_costs(df) == ["params", "flops", "train_seconds"]


def test_pareto_front_has_one_point_per_architecture(ranked_run, direct):
    run, ids = ranked_run
    df, _ = _frames(run)
    expected = direct(df).set_index("arch_id")
    front = pareto_front(df, "params")
    assert front["arch_id"].is_unique and set(front["arch_id"]) == set(expected.index)
    pts = front.set_index("arch_id")
    for col in ("trial_id", "val_score", "stopped", "n_evals", "epochs", "rung"):
        assert pts[col].tolist() == expected.loc[pts.index, col].tolist(), col
    by_id = df.set_index("trial_id")
    assert pts["cost"].tolist() == by_id.loc[pts["trial_id"], "params"].tolist()
    for a in pts.index:  # brute-force dominance over the architectures' points
        dominated = any(
            pts.loc[b, "cost"] <= pts.loc[a, "cost"]
            and pts.loc[b, "val_score"] >= pts.loc[a, "val_score"]
            and (
                pts.loc[b, "cost"] < pts.loc[a, "cost"]
                or pts.loc[b, "val_score"] > pts.loc[a, "val_score"]
            )
            for b in pts.index
        )
        assert pts.loc[a, "on_front"] == (not dominated), a
    assert sorted(pts.index[pts["on_front"]]) == sorted(ids[k] for k in "BAE")
    assert pts.loc[ids["E"], "stopped"] and pts.loc[ids["E"], "on_front"]
    # the stopped trial is drawn (ringed) with the others
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot_pareto(df, "params")
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "stopped at the deadline (1)" in labels and "front (3)" in labels


# Init diagnostics ----------------------------------------------------------------------------
def test_diagnostic_correlations_agree_with_scipy(make_run, trial_result):
    from scipy import stats

    rng = np.random.default_rng(2)
    scores = rng.random(12)
    gains = [(1.0, float(g)) for g in rng.uniform(1, 100, 12)]
    results = [
        trial_result(OK, float(s), hanin=float(s) ** 2, gains=g) for s, g in zip(scores, gains)
    ]
    results.append(trial_result(TIMEOUT, hanin=5.0))  # not ok: left out
    df, _ = _frames(make_run(results))
    corr = diagnostic_correlations(df).set_index("diagnostic")
    assert corr.loc["hanin", "rho"] == pytest.approx(1.0)  # a monotone function of the score
    assert corr.loc["naswot", "rho"] == pytest.approx(1.0)
    spread = np.log10([g[1] / g[0] for g in gains])
    want = stats.spearmanr(spread, scores)
    assert corr.loc["gain_spread", "rho"] == pytest.approx(want.statistic)
    assert corr.loc["gain_spread", "p_value"] == pytest.approx(want.pvalue)
    long = init_diagnostics(df)
    got = long[long.diagnostic == "gain_spread"].sort_values("trial_id")["value"]
    np.testing.assert_allclose(got, spread)
    assert (corr["n"] == 12).all()


# Compute -------------------------------------------------------------------------------------
def test_compute_adds_up_by_status_and_by_block(make_run, space, trial_result):
    rng = np.random.default_rng(4)
    specs = [space.sample(rng) for _ in range(8)]
    statuses = [OK, OK, ERROR, PRUNED, OK, OOM, OK, OK]
    results = [
        trial_result(s, 0.5 if s in (OK, PRUNED) else None, train_seconds=float(i))
        for i, s in enumerate(statuses)
    ]
    df, _ = _frames(make_run(results, specs=specs))
    total = sum(r.train_seconds + r.eval_seconds for r in results)
    by_status = compute_by_status(df).set_index("status")
    assert by_status["seconds"].sum() == pytest.approx(total)
    assert by_status.loc[OK, "trials"] == 5
    assert by_status.loc[ERROR, "seconds"] == pytest.approx(2.5)
    want: dict[str, float] = {}
    for spec, r in zip(specs, results):
        blocks = [spec[f"stage{i}.block"] for i in range(1, spec["n_stages"] + 1)]
        for b in blocks:
            want[b] = want.get(b, 0.0) + (r.train_seconds + r.eval_seconds) / len(blocks)
    by_block = compute_by_block(df).set_index("block")["seconds"].to_dict()
    assert by_block == pytest.approx(want)
    assert compute_by_block(df)["share"].sum() == pytest.approx(1.0)


def test_compute_panels_share_one_status_order_and_name_their_unit(make_run, trial_result):
    results = [trial_result(ERROR, train_seconds=400.0)] * 3 + [
        trial_result(OK, 0.5, train_seconds=300.0),
        trial_result(PRUNED, 0.2, epochs=1, train_seconds=200.0),
    ]
    df, _ = _frames(make_run(results))
    fig = plot_compute(df)
    ax1, ax2 = fig.axes[:2]
    order = [t.get_text() for t in ax1.get_xticklabels()]
    assert order == [t.get_text() for t in ax2.get_xticklabels()] == [OK, PRUNED, ERROR]
    # 3 x 400.5 s of errors: minutes, each bar the status's seconds / 60
    assert ax2.get_ylabel() == "train + eval time (min)"
    want = compute_by_status(df).set_index("status")["seconds"] / 60
    heights = [p.get_height() for p in ax2.patches]
    assert heights == pytest.approx([want[s] for s in order])
    assert [p.get_height() for p in ax1.patches] == [1, 1, 3]
    assert time_unit(0.02) == (1000.0, "ms") and time_unit(30.0) == (1.0, "s")
    assert time_unit(7200.0)[1] == "h"


# Figures -------------------------------------------------------------------------------------
def _plots(df, curves, space):
    return {
        "anytime": lambda: plot_anytime(df),
        "anytime_seconds": lambda: plot_anytime(df, "seconds"),
        "curves": lambda: plot_learning_curves(df, curves),
        "effects": lambda: plot_decision_effects(df, "tpe"),
        "importance": lambda: plot_decision_importance(df, space),
        "pareto": lambda: plot_pareto(df, "params"),
        "diagnostics": lambda: plot_init_diagnostics(df),
    }


def test_every_figure_draws_a_run(make_run, space, trial_result):
    rng = np.random.default_rng(6)
    results = [
        trial_result(OK, float(v), params=int(p), hanin=float(h))
        for v, p, h in zip(rng.random(20), rng.integers(100, 10_000, 20), rng.random(20))
    ] + [trial_result(PRUNED, 0.2, epochs=1), trial_result(NAN)]
    df, curves = _frames(make_run(results))
    for name, draw in _plots(df, curves, space).items():
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # no "nothing to plot" here
            fig = draw()
        assert isinstance(fig, Figure) and fig.axes, name
        assert any(ax.has_data() for ax in fig.axes), name
    fig = plot_anytime(df, table_scores=rng.random(100))
    assert any(line.get_label() == "random search (exp.)" for line in fig.axes[0].lines)
    assert isinstance(plot_compute(df), Figure)


def test_figures_of_a_run_without_ok_trials_warn_and_come_back_empty(make_run, space, trial_result):
    results = [trial_result(s) for s in FAILURES]
    df, curves = _frames(make_run(results))
    for name, draw in _plots(df, curves, space).items():
        with pytest.warns(UserWarning):
            fig = draw()
        assert isinstance(fig, Figure), name
        assert not any(ax.has_data() for ax in fig.axes), name
    fig = plot_compute(df)  # failures are data here
    assert any(ax.has_data() for ax in fig.axes)
    empty = load_results(make_run([], name="empty"))
    with pytest.warns(UserWarning):
        plot_compute(empty)
