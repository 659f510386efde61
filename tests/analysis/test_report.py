"""The HTML report, the comparison page and the Optuna export: a real search end to end,
hand-made runs of every built-in searcher, a run where every trial failed, the command line,
and a real browser."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from autodlgym.analysis.optuna_export import _Encoder, export_optuna, spec_params
from autodlgym.analysis.report import (
    SECTIONS,
    build_report,
    running_note,
    write_comparison,
    write_report,
)
from autodlgym.cli import main
from autodlgym.errors import AutoDLError
from autodlgym.results.store import ResultStore
from autodlgym.searchers.base import SEARCHERS
from autodlgym.searchspace.space import SearchSpace
from autodlgym.trial import FAILURES, OK, PRUNED, Fidelity

#: searcher options a run records and its page shows beside the name (zero-cost: pool, batch)
FAST_OPTIONS = {"zero-cost": {"pool": 2, "batch": 16}}


class _Page(HTMLParser):
    """Section ids, image sources and link targets of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("section", "header") and "id" in a:
            self.ids.append(a["id"])
        if tag == "img":
            self.images.append(a.get("src", ""))
        for key in ("src", "href"):
            if a.get(key):
                self.links.append(a[key])


def _parse(page: str) -> _Page:
    p = _Page()
    p.feed(page)
    return p


def _check_self_contained(page: str, min_figures: int = 5) -> _Page:
    p = _parse(page)
    assert p.ids == list(SECTIONS)
    assert len(p.images) >= min_figures
    assert all(src.startswith("data:image/png;base64,") for src in p.images)
    # nothing from the network or the disk: only embedded images and in-page anchors
    assert all(link.startswith(("data:", "#")) for link in p.links), p.links
    assert "Traceback" not in page
    return p


def _check_searcher_parts(page: str, df: pd.DataFrame, searcher: str) -> None:
    """The parts of a page that depend on the run's searcher: its name in the header, the best
    trial, and the note about biased means under an adaptive searcher (exactly once)."""
    assert f"searcher</dt><dd>{searcher}" in page
    ok = df[df.status == OK]
    if len(ok):
        best = ok.sort_values("val_score", ascending=False).iloc[0]
        assert f"trial {int(best.trial_id)}: validation score {best.val_score:.4f}" in page
    effects = page[page.index('<section id="effects">') : page.index('<section id="importance">')]
    assert effects.count('class="note"') == (searcher not in ("random", "qmc"))
    assert page.count("Per-option means are then biased") == effects.count('class="note"')


def test_report_and_export_of_a_real_search(tmp_path, tiny_space_config):
    # end to end: a real search's store, its page and its Optuna study (the page's parts that
    # depend on the searcher are checked for every built-in searcher on hand-made runs below)
    from autodlgym.runner import RunConfig, run_search

    run = tmp_path / "run"
    run_search(
        RunConfig(
            out=str(run),
            task="digits",
            space=tiny_space_config,
            searcher="evolution",
            trials=3,
            epochs=1,
            max_train_samples=128,
            seed=0,
        ),  # fmt: skip
        progress=False,
    )
    path = write_report(run, tmp_path / "report.html")
    page = path.read_text(encoding="utf-8")
    _check_self_contained(page)
    with ResultStore(run, create=False) as store:
        df = store.to_dataframe()
    assert len(df) == 3
    _check_searcher_parts(page, df, "evolution")
    db = export_optuna(run, tmp_path / "study.db")
    import optuna

    study = optuna.load_study(study_name="autodlgym", storage=f"sqlite:///{db}")
    assert len(study.trials) == len(df)


@pytest.mark.parametrize("searcher", SEARCHERS.names())
def test_the_page_of_a_run_of_every_builtin_searcher(make_run, trial_result, searcher):
    results = [trial_result(OK, 0.4), trial_result(OK, 0.7), trial_result(PRUNED, 0.9, epochs=1)]
    run = make_run(results, searcher=searcher, searcher_options=FAST_OPTIONS.get(searcher, {}))
    page = build_report(run)
    _check_self_contained(page)
    with ResultStore(run, create=False) as store:
        df = store.to_dataframe()
    _check_searcher_parts(page, df, searcher)
    for key, value in FAST_OPTIONS.get(searcher, {}).items():
        assert f"{key}={value}" in page  # the searcher's options beside its name


def test_a_run_where_every_trial_failed_gets_an_honest_page(make_run, trial_result, tmp_path):
    run = make_run([trial_result(s, message=f"{s}: kind {s}") for s in (*FAILURES, PRUNED)])
    assert main(["report", str(run), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    _check_self_contained(page)
    assert "No trial finished ok" in page
    for status in FAILURES:
        assert f"{status}: kind {status}" in page  # each failure with its message
    assert "nothing to plot" in page or "no trial finished ok" in page.lower()


def test_a_run_without_trials_still_renders(make_run, tmp_path):
    page = build_report(make_run([], name="empty"))
    _check_self_contained(page)
    assert "0 finished" in page


def test_the_header_tells_what_was_searched(make_run, trial_result, space):
    run = make_run(
        [trial_result(OK, 0.4, params=123_456), trial_result(OK, 0.8, params=654_321)],
        searcher="tpe",
        searcher_options={"objectives": "val_score,params"},
        versions={"torch": "2.13.0"},
    )
    page = build_report(run, top=1)
    assert "digits" in page and "tpe (objectives=val_score,params)" in page
    assert f"{len(space)} decisions, {space.cardinality():,} architectures" in page
    assert "2 trials" in page and "3 epochs per trial" in page
    assert "torch 2.13.0" in page
    assert f"results store schema {ResultStore.SCHEMA_VERSION}" in page
    with ResultStore(run, create=False) as store:
        spec = store.to_dataframe().set_index("trial_id").loc[1, "spec"]
    from autodlgym.searchspace.spec import ArchSpec

    summary = ArchSpec.from_json(spec).summary()
    assert (
        f"trial 1: validation score 0.8000, test score 0.7900, 654,321 parameters; {summary}"
        in page
    )
    top = page[page.index('id="top"') : page.index('id="trials"')]
    assert top.count("<tr") == 2  # header + top 1
    with pytest.raises(AutoDLError, match="top"):
        build_report(run, top=0)


class _Tables(HTMLParser):
    """The tables of a piece of a page, as lists of rows of cell texts (header row first)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None


def _tables(page: str, section: str) -> list[list[dict[str, str]]]:
    """The tables of a section of a report, one dict per row (header -> cell text)."""
    start = page.index(f'id="{section}"')
    end = page.index("</section>", start)
    parser = _Tables()
    parser.feed(page[start:end])
    return [[dict(zip(t[0], row)) for row in t[1:]] for t in parser.tables]


def test_the_header_and_top_table_rank_architectures_and_mark_stopped_trials(ranked_run, direct):
    from autodlgym.searchspace.spec import ArchSpec

    run, ids = ranked_run
    with ResultStore(run, create=False) as store:
        df = store.to_dataframe()
    expected = direct(df)
    page = html.unescape(build_report(run))
    # the best is E's trial 6, stopped at 0.90 above every ok trial; no test score
    spec = ArchSpec.from_json(df.set_index("trial_id").loc[6, "spec"])
    assert (
        "trial 6: validation score 0.9000 (stopped by the search's time budget after 2 of 3 "
        f"epochs), 3,000 parameters, 3 epochs (rung 2 of 0-2); {spec.summary()}"
    ) in page
    assert f"best spec (arch_id {ids['E']})" in page
    (top,) = _tables(page, "top")
    assert [int(r["trial_id"]) for r in top] == expected["trial_id"].tolist() == [6, 5, 2, 1]
    assert [r["arch_id"] for r in top] == expected["arch_id"].tolist()
    assert [float(r["val_score"]) for r in top] == expected["val_score"].tolist()
    assert [r["status"] for r in top] == ["stopped", "ok", "ok", "ok"]
    assert [int(r["n_evals"]) for r in top] == expected["n_evals"].tolist() == [1, 3, 1, 2]
    assert [int(r["rung"]) for r in top] == expected["rung"].tolist()
    assert [int(r["epochs"]) for r in top] == expected["epochs"].tolist()
    assert [int(r["epochs_run"]) for r in top] == [2, 3, 3, 1]
    # the front of score against params, one row per architecture:
    # B (500, 0.50), A (1000, 0.65), C (2000, 0.55: dominated by A), E (3000, 0.90)
    front = _tables(page, "pareto")[0]
    assert [int(r["trial_id"]) for r in front] == [1, 5, 6]
    assert [r["arch_id"] for r in front] == [ids[k] for k in "BAE"]
    assert [r["status"] for r in front] == ["ok", "ok", "stopped"]
    assert [int(r["params"]) for r in front] == [500, 1000, 3000]


def test_a_run_of_one_fidelity_names_no_rung_in_the_header(make_run, trial_result):
    run = make_run([trial_result(OK, 0.4), trial_result("stopped", 0.7, epochs=1)])
    page = html.unescape(build_report(run))
    assert "trial 1: validation score 0.7000 (stopped by the search's time budget after 1 of" in (
        page
    )
    assert "rung" not in page[: page.index('id="anytime"')]


def test_a_report_written_mid_run_says_the_search_is_still_running(make_run, trial_result, space):
    run = make_run([trial_result(OK, 0.4), trial_result(OK, 0.6)], trials=10)
    assert 'id="running"' not in build_report(run)
    with ResultStore(run) as store:
        finished = store.to_dataframe()["finished_at"].max()
        for i in (2, 3, 4):
            store.add_pending(i, space.sample(i), Fidelity(epochs=3), 0)
    page = html.unescape(build_report(run))
    banner = re.search(r'<p class="note" id="running">([^<]*)</p>', page).group(1)
    stamp = pd.Timestamp(finished).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")
    assert banner == (
        f"Search still running: 3 trials in flight; this page shows the trials finished by "
        f"{stamp} UTC."
    )
    assert page.index(banner) < page.index('id="anytime"')


def test_importance_of_a_small_run_carries_a_note_above_the_figure(make_run, trial_result):
    page = build_report(make_run([trial_result(OK, v) for v in (0.2, 0.5, 0.6)]))
    section = page[page.index('<section id="importance">') : page.index('id="pareto"')]
    assert 'id="importance-note"' in section and "only 3 ok trials" in section
    assert section.index('id="importance-note"') < section.index("<img")


def test_the_running_note_is_quiet_once_the_search_is_over():
    df = pd.DataFrame({"finished_at": pd.to_datetime([0, 1], unit="s", utc=True)})
    assert running_note(df, 0, {"trials": 5}) is None
    assert running_note(df, 2, {"trials": 2}) is None  # pending rows a crash left behind
    assert running_note(df.iloc[:0], 1, {}) == (
        "Search still running: 1 trial in flight; no trial has finished yet."
    )


def test_a_table_task_gets_random_search_band(make_run, trial_result):
    run = make_run([trial_result(OK, v) for v in (0.2, 0.5)])
    assert "expected best on this table" not in build_report(run)
    assert "expected best on this table" in build_report(run, table_scores=np.linspace(0, 1, 9))


def test_the_band_comes_from_the_lookup_table_of_the_run(tmp_path):
    from autodlgym import Run, RunConfig, run_search
    from autodlgym.tasks import get_task

    run_search(RunConfig(out=str(tmp_path / "t"), task="mnist1d-table", trials=5), progress=False)
    with Run.open(tmp_path / "t") as run:
        np.testing.assert_allclose(
            np.sort(run.table_scores()), np.sort(get_task("mnist1d-table").outcomes(5).val)
        )
    assert "expected best on this table" in build_report(tmp_path / "t")


def test_compare_writes_one_page_for_several_runs(make_run, trial_result, tmp_path):
    a = make_run([trial_result(OK, v) for v in (0.2, 0.6)], seed=0, name="a")
    b = make_run([trial_result(OK, v) for v in (0.5, 0.3)], seed=1, name="b")
    c = make_run([trial_result(OK, 0.4), trial_result("stopped", 0.8, epochs=1)], seed=2, name="c")
    path, summary = write_comparison([a, b, c], tmp_path / "cmp.html")
    # a stopped trial counts with the score it reached
    assert summary["best_val_score"].tolist() == [0.6, 0.5, 0.8]
    assert summary["ok"].tolist() == [2, 2, 1] and summary["stopped"].tolist() == [0, 0, 1]
    p = _parse(path.read_text(encoding="utf-8"))
    # the score by trials and by seconds, and the distribution of the runs' best scores
    assert p.ids == ["summary", "anytime", "edf", "significance", "runs"]
    assert len(p.images) == 3 and "final_regret" not in summary  # digits trains: no optimum
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "c2.html")]) == 0


def test_commands_reject_a_missing_run_in_one_line(tmp_path, capsys):
    for cmd in (["report"], ["compare"], ["export-optuna"]):
        assert main([*cmd, str(tmp_path / "nothing")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "does not exist" in err


# Optuna export ---------------------------------------------------------------------------------
def test_export_writes_every_trial_as_an_optuna_trial(make_run, trial_result, space, tmp_path):
    import optuna
    from optuna.trial import TrialState

    results = [
        trial_result(OK, 0.7),
        trial_result(PRUNED, 0.4, epochs=2),
        trial_result("oom"),
        trial_result(OK, 0.9, epochs=4),
    ]
    run = make_run(results)
    assert main(["export-optuna", str(run), "--out", str(tmp_path / "s.db")]) == 0
    study = optuna.load_study(study_name="autodlgym", storage=f"sqlite:///{tmp_path / 's.db'}")
    with ResultStore(run, create=False) as store:
        df = store.to_dataframe()
        curves = store.curves()
    assert [t.state for t in study.trials] == [
        TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE,
    ]  # fmt: skip
    for t, (_, row) in zip(study.trials, df.iterrows()):
        assert t.user_attrs["arch_id"] == row.arch_id and t.user_attrs["status"] == row.status
        params, dists = spec_params(space, json.loads(row.spec))
        assert t.params == params and t.distributions == dists
        curve = curves[curves.trial_id == row.trial_id]
        assert t.intermediate_values == dict(zip(curve.epoch.astype(int), curve.val_score))
        if row.status == OK:
            assert t.value == pytest.approx(row.val_score)
    with pytest.raises(AutoDLError, match="already exists"):
        export_optuna(run, tmp_path / "s.db")


def test_export_of_a_multi_objective_run_keeps_its_objectives(make_run, trial_result, tmp_path):
    import optuna

    run = make_run(
        [trial_result(OK, 0.5, params=10), trial_result(OK, 0.6, params=99)], searcher="nsga2"
    )
    db = export_optuna(run, tmp_path / "mo.db")
    study = optuna.load_study(study_name="autodlgym", storage=f"sqlite:///{db}")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["val_score", "params"]
    assert [t.values for t in study.trials] == [[0.5, 10.0], [0.6, 99.0]]
    assert len(study.best_trials) == 2


def test_the_fast_encoder_agrees_with_suggest_on_the_default_space():
    space = SearchSpace.default()
    rng = np.random.default_rng(0)
    encode = _Encoder(space)
    for _ in range(300):
        spec = space.sample(rng)
        assert encode(spec) == spec_params(space, spec)
    assert spec_params(space, {"no_such_decision": 1}) is None


# A real browser --------------------------------------------------------------------------------
def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _browse(browser: str, tmp: Path, page: Path, *mode: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={tmp / 'profile'}",
            *mode,
            page.resolve().as_uri(),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp,
    )


def test_chromium_renders_the_page_with_every_section(make_run, trial_result, tmp_path):
    browser = _chromium()
    if browser is None:
        reason = "headless Chromium is not installed (apt-get install chromium)"
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    rng = np.random.default_rng(0)
    results = [
        trial_result(OK, float(v), params=int(p))
        for v, p in zip(rng.random(12), rng.integers(100, 9999, 12))
    ]
    run = make_run(results + [trial_result("error"), trial_result(PRUNED, 0.1, epochs=1)])
    page = write_report(run, tmp_path / "page.html")
    shot = tmp_path / "shot.png"
    done = _browse(browser, tmp_path, page, f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.is_file(), done.stderr[-2000:]
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    # not blank: a good share of the pixels are not background white, in several colours
    ink = (pixels < 0.9).any(axis=-1).mean()
    assert ink > 0.03, ink
    assert len(np.unique((pixels * 8).astype(int).reshape(-1, 3), axis=0)) > 20
    dom = _browse(browser, tmp_path, page, "--dump-dom").stdout
    p = _parse(dom)
    assert p.ids == list(SECTIONS)
    assert len(p.images) >= 5
    for sid in SECTIONS:
        assert re.search(rf'id="{sid}"', dom)
