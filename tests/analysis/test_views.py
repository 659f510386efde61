"""The report's views (slices, parallel coordinates, the pair grid, final scores, timeline,
promotion chains, the table of all trials): each data function against a direct
computation on hand-made runs, and the page's table and sections in a real browser."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from autodlgym.analysis.pairs import pair_grid, top_pair
from autodlgym.analysis.parallel import parallel_coordinates
from autodlgym.analysis.promotions import promotion_chains, rung_summary
from autodlgym.analysis.report import SECTIONS, write_report
from autodlgym.analysis.scores import score_edf, val_test_scores
from autodlgym.analysis.slices import slice_data
from autodlgym.analysis.timeline import timeline, worker_usage
from autodlgym.analysis.trials import trial_details, trials_html, trials_table
from autodlgym.results.ranking import rungs
from autodlgym.results.store import ResultStore
from autodlgym.trial import OK, PRUNED, STOPPED, TIMEOUT, Fidelity, TrialResult


def _frames(run: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    with ResultStore(run, create=False) as store:
        return store.to_dataframe(), store.curves()


# The decision views: one point per architecture ---------------------------------------------
def test_slices_are_one_point_per_architecture_at_its_highest_fidelity(ranked_run, direct):
    run, ids = ranked_run
    df, _ = _frames(run)
    expected = direct(df).set_index("trial_id")
    data = slice_data(df)
    assert len(data)
    by_trial = df.set_index("trial_id")
    for decision, rows in data.groupby("decision"):
        # every scored architecture that has the decision, once, by the trial that ranks it
        has = [t for t in expected.index if not pd.isna(by_trial.loc[t, decision])]
        assert sorted(rows["trial_id"]) == sorted(has)
        assert rows["arch_id"].is_unique
        for r in rows.itertuples():
            assert r.val_score == expected.loc[r.trial_id, "val_score"]
            assert r.stopped == expected.loc[r.trial_id, "stopped"]
            raw = by_trial.loc[r.trial_id, decision]
            assert r.value == (float(raw) if isinstance(raw, (int, float)) else raw)
        values = rows.drop_duplicates("value").sort_values("x")
        if rows["scale"].iloc[0] in ("linear", "log"):  # numbers on their own scale
            assert values["x"].tolist() == [float(v) for v in values["value"]]
        else:  # options evenly spaced, in order
            assert sorted(values["x"]) == list(range(len(values)))
        assert rows["value"].nunique() >= 2
    # E, stopped at the deadline with 0.90, is in; F's pruned 0.95 and D's error are not
    assert ids["E"] in set(data["arch_id"]) and 6 in set(data["trial_id"])
    assert data.loc[data["trial_id"] == 6, "stopped"].all()
    assert not {4, 7} & set(data["trial_id"])


def test_slices_put_a_numeric_decision_on_its_own_log_scale(make_run, trial_result, space):
    rng = np.random.default_rng(3)
    lrs = [1e-3, 1e-2, 1e-3, 1e-2]
    specs = [
        type(s)({**dict(s), "lr": lr}) for s, lr in zip([space.sample(rng) for _ in range(4)], lrs)
    ]
    results = [trial_result(OK, 0.1 * (i + 1)) for i in range(4)]
    df, _ = _frames(make_run(results, specs=specs))
    rows = slice_data(df, ["lr"])
    assert set(rows["scale"]) == {"log"}  # options 10x apart: a log axis at their values
    assert rows.set_index("trial_id")["x"].to_dict() == dict(enumerate(lrs))


def test_parallel_coordinates_rescale_each_axis_and_end_on_the_score(ranked_run, direct):
    run, _ = ranked_run
    df, _ = _frames(run)
    expected = direct(df)
    data = parallel_coordinates(df, max_decisions=3)
    axes = list(dict.fromkeys(data["axis"]))
    assert axes[-1] == "val_score" and len(axes) <= 4
    for _, rows in data.groupby("axis"):
        assert sorted(rows["trial_id"]) == sorted(expected["trial_id"])
        y = rows["y"].dropna()
        assert ((y >= 0) & (y <= 1)).all()
    score = data[data["axis"] == "val_score"].set_index("trial_id")
    lo, hi = expected["val_score"].min(), expected["val_score"].max()
    for r in expected.itertuples():
        assert score.loc[r.trial_id, "y"] == pytest.approx((r.val_score - lo) / (hi - lo))
        assert score.loc[r.trial_id, "value"] == r.val_score


def test_the_pair_grid_is_the_mean_and_best_of_each_pair_of_options(ranked_run, direct):
    run, _ = ranked_run
    df, _ = _frames(run)
    expected = direct(df).merge(df.drop(columns=["val_score", "arch_id"]), on="trial_id")
    from autodlgym.analysis.slices import points, varying_decisions

    first, second = varying_decisions(points(df))[:2]
    assert top_pair(df, [second, first, "nothing"]) == (second, first)
    grid = pair_grid(df, first, second)
    both = expected.dropna(subset=[first, second])
    direct_grid = both.groupby([first, second])["val_score"].agg(["size", "mean", "max"])
    assert len(grid) == len(direct_grid)
    for r in grid.itertuples(index=False):
        a, b, n, mean, best = r
        row = direct_grid.loc[(a, b)]
        assert (n, mean, best) == (row["size"], pytest.approx(row["mean"]), row["max"])
    assert grid["n"].sum() == len(both)
    from autodlgym.errors import AutoDLError

    with pytest.raises(AutoDLError, match="two different"):
        pair_grid(df, first, first)


# Final scores ----------------------------------------------------------------------------------
def test_final_scores_leave_stopped_trials_out_of_test_but_in_the_distribution(ranked_run, direct):
    run, _ = ranked_run
    df, _ = _frames(run)
    expected = direct(df)
    tv = val_test_scores(df)
    tested = expected[~expected["stopped"]]
    assert sorted(tv["trial_id"]) == sorted(tested["trial_id"])
    tests = df.set_index("trial_id")["test_score"]
    assert (tv["test_score"].to_numpy() == tests[tv["trial_id"]].to_numpy()).all()
    edf = score_edf(df)
    assert edf["val_score"].tolist() == sorted(expected["val_score"])
    n = len(expected)
    assert edf["fraction"].tolist() == pytest.approx([(i + 1) / n for i in range(n)])
    assert edf["stopped"].tolist() == [False, False, False, True]  # E's 0.90 is the highest


def test_spearman_and_t_quantile_agree_with_scipy_stats():
    from scipy import stats

    from autodlgym.analysis._stats import spearman, t_quantile

    rng = np.random.default_rng(0)
    for n in (3, 7, 50):
        x = rng.normal(size=n)
        y = x + rng.normal(size=n)
        y[:2] = y[0]  # ties
        ref = stats.spearmanr(x, y)
        assert spearman(x, y) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-9)
    assert spearman(np.arange(4), np.arange(4)) == (pytest.approx(1.0), 0.0)
    assert all(math.isnan(v) for v in spearman(np.arange(4), np.ones(4)))
    dof = np.array([0.0, 1.0, 4.0, 30.0])
    np.testing.assert_allclose(t_quantile(0.975, dof), stats.t.ppf(0.975, dof), equal_nan=True)


# Timeline --------------------------------------------------------------------------------------
def _timeline_frame() -> pd.DataFrame:
    """Two workers; w1 runs 0-10 (ok), 12-15 (timeout, 3 s spent), 15-16 (error);
    w2 runs 2-7 (stopped), then a reused result at 20 (no time), then 30-40 (pruned)."""
    t0 = 1_700_000_000.0
    rows = [
        (0, "w1", OK, 10.0, 0.0, None),
        (1, "w2", STOPPED, 4.5, 0.5, None),
        (2, "w1", TIMEOUT, 3.0, 0.0, None),
        (3, "w1", "error", 1.0, 0.0, None),
        (4, "w2", OK, 10.0, 0.5, 0),
        (5, "w2", PRUNED, 9.0, 1.0, None),
    ]
    ends = {0: 10.0, 1: 7.0, 2: 15.0, 3: 16.0, 4: 20.0, 5: 40.0}
    return pd.DataFrame(
        {
            "trial_id": [r[0] for r in rows],
            "worker": [r[1] for r in rows],
            "status": [r[2] for r in rows],
            "train_seconds": [r[3] for r in rows],
            "eval_seconds": [r[4] for r in rows],
            "reused_from": pd.array([r[5] for r in rows], dtype="Int64"),
            "finished_at": pd.to_datetime([t0 + ends[r[0]] for r in rows], unit="s", utc=True),
        }
    )


def test_the_timeline_places_each_trial_by_its_seconds_and_counts_idle_time():
    tl = timeline(_timeline_frame()).set_index("trial_id")
    assert tl.loc[[0, 1, 2, 3, 4, 5], "start"].tolist() == [0, 2, 12, 15, 20, 30]
    assert tl.loc[[0, 1, 2, 3, 4, 5], "end"].tolist() == [10, 7, 15, 16, 20, 40]
    assert tl.loc[4, "seconds"] == 0 and tl.loc[4, "reused"]  # a reused result took no time
    assert tl.loc[2, "seconds"] == 3.0  # a timeout counts the seconds it ran
    assert tl["outcome"].to_dict() == {
        0: OK, 1: STOPPED, 2: TIMEOUT, 3: "failed", 4: OK, 5: PRUNED,
    }  # fmt: skip
    usage = worker_usage(timeline(_timeline_frame())).set_index("worker")
    # w1: busy 10 + 3 + 1 over 0-16; w2: busy 5 + 0 + 10 over 2-40, longest gap 20-30
    assert usage.loc["w1", ["trials", "busy", "idle", "span", "longest_gap"]].tolist() == [
        3, 14.0, 2.0, 16.0, 2.0,
    ]  # fmt: skip
    assert usage.loc["w2", ["trials", "busy", "idle", "span", "longest_gap"]].tolist() == [
        3, 15.0, 23.0, 38.0, 13.0,
    ]  # fmt: skip
    assert usage.loc["w2", "idle_share"] == pytest.approx(23 / 38)


# Promotion chains ------------------------------------------------------------------------------
def test_promotion_chains_follow_each_architecture_up_the_rungs(ranked_run):
    run, ids = ranked_run
    df, _ = _frames(run)
    chains = promotion_chains(df)
    # rungs: (1 epoch, 100 examples) 0, (1 epoch, all) 1, (3 epochs, all) 2. A went 1 -> 2
    # (0.80 at rung 1 by trial 0; 0.65 at rung 2, its better of trials 3 and 5); B 0 -> 1
    got = [
        (a, int(r), int(t), float(v), bool(p))
        for a, r, t, v, p in zip(chains["arch_id"], chains["rung"], chains["trial_id"],
                                 chains["val_score"], chains["promoted"])
    ]  # fmt: skip
    assert got == [
        (ids["A"], 1, 0, 0.80, True),
        (ids["A"], 2, 5, 0.65, False),
        (ids["B"], 0, 8, 0.70, True),
        (ids["B"], 1, 1, 0.50, False),
    ]
    summary = rung_summary(df).set_index("rung")
    assert summary["trials"].tolist() == [1, 4, 4]
    assert summary["architectures"].tolist() == [1, 4, 3]  # B; A B D F; A C E
    assert summary["promoted"].tolist() == [1, 1, 0]
    assert summary["best"].tolist() == [0.70, 0.80, 0.90]


def test_a_run_of_one_fidelity_has_no_promotion_chains(make_run, trial_result):
    df, _ = _frames(make_run([trial_result(OK, 0.3), trial_result(OK, 0.5)]))
    assert promotion_chains(df).empty


def test_an_asha_run_on_a_lookup_table_promotes_along_real_chains(tmp_path):
    from autodlgym import RunConfig, run_search

    run = tmp_path / "asha"
    run_search(
        RunConfig(out=str(run), task="mnist1d-table", trials=20, pruner="asha", seed=1),
        progress=False,
    )
    df, _ = _frames(run)
    chains = promotion_chains(df)
    assert len(chains) and chains["top_rung"].max() >= 1
    rung_of = dict(zip(df["trial_id"], rungs(df)))
    for arch, g in chains.groupby("arch_id", sort=False):
        assert (np.diff(g["rung"]) > 0).all()  # strictly up the ladder
        assert set(df.loc[df["trial_id"].isin(g["trial_id"]), "arch_id"]) == {arch}
        assert [rung_of[t] for t in g["trial_id"]] == g["rung"].tolist()
    from autodlgym.analysis.views import promotions_section

    section = promotions_section(df[df["phase"] == "search"])
    assert "<img" in section and "Promotion chains" in section
    for arch in chains["arch_id"].unique()[:100]:
        assert f"<td>{arch}</td>" in section


# The table of all trials -----------------------------------------------------------------------
def test_the_trials_table_has_every_trial_with_its_real_seconds(ranked_run):
    run, _ = ranked_run
    df, curves = _frames(run)
    table = trials_table(df)
    assert table["trial_id"].tolist() == sorted(df["trial_id"])
    by = df.set_index("trial_id")
    seconds = by["train_seconds"].fillna(0) + by["eval_seconds"].fillna(0)
    assert table["seconds"].tolist() == seconds.loc[table["trial_id"]].tolist()
    assert table["status"].tolist() == by.loc[table["trial_id"], "status"].tolist()
    assert table["rung"].tolist() == [1, 1, 2, 2, 1, 2, 2, 1, 0]
    details = trial_details(df, curves)
    assert sorted(details) == sorted(df["trial_id"])
    for tid, d in details.items():
        c = curves[curves["trial_id"] == tid].sort_values("epoch")
        if c.empty:
            assert d["curve"] is None
        else:
            # at the 6 significant digits the page shows
            assert d["curve"]["val_score"] == pytest.approx(c["val_score"].tolist(), rel=1e-5)
            assert d["curve"]["epoch"] == c["epoch"].tolist()
        assert d["spec"] == json.loads(by.loc[tid, "spec"])
        diag = json.loads(by.loc[tid, "diagnostics"])
        assert d["diagnostics"] == pytest.approx({k: v for k, v in diag.items()
                                                  if isinstance(v, float)}, rel=1e-5)  # fmt: skip


def test_a_message_cannot_break_out_of_the_page(make_run, trial_result):
    run = make_run([trial_result("error", message="</script><b>boom</b>")])
    df, curves = _frames(run)
    page = trials_html(df, curves)
    payload = page[page.index('id="trial-data">') + len('id="trial-data">') :]
    assert payload.count("</script>") == 1 and payload.endswith("</script>")
    assert json.loads(payload[: -len("</script>")])["0"]["message"] == "</script><b>boom</b>"


# A real browser --------------------------------------------------------------------------------
def _chromium() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        reason = "headless Chromium is not installed (apt-get install chromium)"
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    return browser


def _browse(tmp: Path, page: Path, *mode: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={tmp / 'profile'}",
            "--virtual-time-budget=5000",
            *mode,
            page.resolve().as_uri(),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp,
    )


def _with_script(page: Path, name: str, script: str) -> Path:
    """A copy of ``page`` that runs ``script`` once the page's own script has run."""
    out = page.with_name(name)
    # after the page's own DOMContentLoaded handler, which sets the tables up
    script = f"document.addEventListener('DOMContentLoaded', function () {{ {script} }});"
    out.write_text(
        page.read_text(encoding="utf-8").replace("</body>", f"<script>{script}</script></body>"),
        encoding="utf-8",
    )
    return out


def _result(status: str, val: float | None, epochs: int, worker: str, i: int) -> TrialResult:
    scored = status in (OK, STOPPED, PRUNED)
    curve = [
        {"epoch": e, "train_loss": 1.0 / e, "val_score": val * e / epochs, "seconds": 0.1 * e}
        for e in range(1, epochs + 1)
    ] if scored else []  # fmt: skip
    return TrialResult(
        status=status,
        val_score=val if status in (OK, STOPPED) else None,
        test_score=val - 0.02 if status == OK else None,
        params=100 * (i + 1),
        flops=1000 * (i + 1),
        train_seconds=0.5 + i,
        eval_seconds=0.1,
        epochs_run=len(curve),
        curve=curve,
        diagnostics={"hanin": 0.05 * i, "gains": [1.0, 1.5], "naswot": 10.0 + i},
        message="" if status in (OK, PRUNED) else f"{status}: it broke",
        worker=worker,
    )


@pytest.fixture(scope="module")
def browsed_run(tmp_path_factory, space) -> Path:
    """A report of a small run with something in every section: two fidelities (four
    promotions), stopped, pruned and failed trials, two workers, curves and diagnostics."""
    tmp = tmp_path_factory.mktemp("browse")
    rng = np.random.default_rng(0)
    specs = [space.sample(rng) for _ in range(14)]
    kinds = [OK] * 6 + [STOPPED, PRUNED, "error", TIMEOUT]
    trials = []
    for i, spec in enumerate(specs):
        status = kinds[i % len(kinds)]
        val = float(rng.uniform(0.3, 0.9)) if status in (OK, STOPPED, PRUNED) else None
        trials.append((spec, 1, _result(status, val, 1, f"w{i % 2}", i)))
    for i in range(4):  # four go up a rung
        trials.append((specs[i], 3, _result(OK, 0.92 - 0.01 * i, 3, f"w{i % 2}", 14 + i)))
    run = tmp / "run"
    with ResultStore(run) as store:
        store.save_config(
            {"config_version": 1, "task": "digits", "searcher": "random", "seed": 0,
             "space": space.to_config(), "trials": len(trials), "epochs": 3}
        )  # fmt: skip
        for i, (spec, epochs, r) in enumerate(trials):
            store.append(i, spec, Fidelity(epochs=epochs), 0, r)
    return write_report(run, tmp / "page.html")


def test_chromium_sorts_the_trials_table_and_opens_a_drill_down(browsed_run):
    tmp = browsed_run.parent
    script = (
        "var th = document.querySelectorAll('#all-trials thead th');"
        "var col = Array.prototype.findIndex.call(th, function (h) {"
        "  return h.textContent === 'val_score'; });"
        "th[col].click();"  # best first
        "document.querySelector('#all-trials tr.trial[data-trial=\"3\"]').click();"
    )
    page = _with_script(browsed_run, "sorted.html", script)
    dom = _browse(tmp, page, "--dump-dom").stdout
    assert 'data-ready="1"' in dom  # the page's script ran
    table = dom[dom.index('<table id="all-trials"') : dom.index('id="trial-data"')]
    order = [int(t) for t in re.findall(r'<tr class="trial[^"]*" id="trial-(\d+)"', table)]
    df, _ = _frames(browsed_run.parent / "run")
    scores = df.set_index("trial_id")["val_score"]
    expected = sorted(
        df["trial_id"], key=lambda t: (pd.isna(scores[t]), -np.nan_to_num(scores[t]), t)
    )
    assert order == expected  # highest score first, trials without a score last
    assert 'aria-sort="descending"' in table
    # trial 3's detail row sits right below it, with its spec, curve and diagnostics
    assert re.search(r'id="trial-3"[^>]*>(?:(?!</tr>).)*</tr><tr class="detail" data-for="3"',
                     table, re.S)  # fmt: skip
    opened = table[table.index('id="detail-3"') :]
    opened = opened[: opened.index('<tr class="trial')]
    assert "<svg" in opened and "<polyline" in opened  # the learning curve
    assert "hanin" in opened and "<pre>" in opened  # diagnostics and the spec
    spec = json.loads(df.set_index("trial_id").loc[3, "spec"])
    first = sorted(spec)[0]
    assert f"&quot;{first}&quot;" in opened or f'"{first}"' in opened


def test_chromium_opens_a_trial_named_in_the_address(browsed_run):
    tmp = browsed_run.parent
    page = _with_script(browsed_run, "hash.html", "")
    dom = _browse(tmp, page, "--dump-dom").stdout.replace("&amp;", "&")
    assert 'id="detail-' not in dom  # nothing open without #trial-N
    uri = page.resolve().as_uri() + "#trial-5"
    done = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp / 'profile'}", "--virtual-time-budget=5000", "--dump-dom", uri],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert 'id="detail-5"' in done.stdout and 'class="trial st-' in done.stdout


def test_chromium_draws_every_section_of_the_page(browsed_run):
    from matplotlib.image import imread

    tmp = browsed_run.parent
    probe = (
        "document.querySelectorAll('body > section, body > header').forEach(function (s) {"
        "  var r = s.getBoundingClientRect();"
        "  s.setAttribute('data-box', Math.round(r.top + window.scrollY) + ','"
        "    + Math.round(r.height)); });"
        "document.body.setAttribute('data-height', document.documentElement.scrollHeight);"
    )
    dom = _browse(tmp, _with_script(browsed_run, "probe.html", probe), "--dump-dom",
                  "--window-size=1280,1000").stdout  # fmt: skip
    boxes = {
        sid: tuple(map(int, box.split(",")))
        for sid, box in re.findall(r'<(?:section|header) id="([^"]+)" data-box="([^"]+)"', dom)
    }
    assert list(boxes) == list(SECTIONS)
    height = int(re.search(r'data-height="(\d+)"', dom).group(1))
    shot = tmp / "page.png"
    done = _browse(tmp, browsed_run, f"--screenshot={shot}", "--force-device-scale-factor=0.5",
                   f"--window-size=1280,{height}")  # fmt: skip
    assert shot.is_file(), done.stderr[-2000:]
    pixels = imread(shot)[..., :3]
    scale = pixels.shape[0] / height
    for sid, (top, h) in boxes.items():
        assert h > 40, sid
        crop = pixels[int(top * scale) : int((top + h) * scale)]
        colours = np.unique((crop * 255).astype(np.uint8).reshape(-1, 3), axis=0)
        assert len(colours) > 1, f"section {sid} is blank"
        ink = (crop < 0.9).any(axis=-1).mean()
        assert ink > 0.005, f"section {sid} has almost nothing drawn ({ink:.4f})"


def test_importance_leaves_scikit_learn_unimported_until_fanova_asks(tmp_path):
    import sys

    code = (
        "import sys, numpy as np, pandas as pd\n"
        "from autodlgym.analysis.effects import decision_importance\n"
        "from autodlgym.searchspace.space import SearchSpace\n"
        "space = SearchSpace.from_config({'base': 'default', 'max_stages': 1})\n"
        "rng = np.random.default_rng(0)\n"
        "specs = [space.sample(rng) for _ in range(12)]\n"
        "df = pd.DataFrame({'trial_id': range(12), 'status': 'ok',\n"
        "                   'val_score': rng.random(12), 'spec': [s.to_json() for s in specs],\n"
        "                   'arch_id': [s.arch_id for s in specs]})\n"
        "assert len(decision_importance(df, space)), 'PED-ANOVA ranked nothing'\n"
        "assert 'sklearn' not in sys.modules and 'scipy.stats' not in sys.modules\n"
        "assert len(decision_importance(df, space, 'fanova'))\n"
        "assert 'sklearn.ensemble' in sys.modules\n"
        "print('fine')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)  # fmt: skip
    assert done.stdout.strip() == "fine", done.stderr[-3000:]
