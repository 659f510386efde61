"""``autodlgym report``: one self-contained HTML page about a run.

The page holds a header (task, space, searcher, budget, versions, the best spec and its
architecture summary), the figures of :mod:`autodlgym.analysis` as base64 PNG images, the
top-k table, a sortable table of every trial with a drill-down (:mod:`.views`) and the
failures. It references nothing outside itself (its one script, ``report.js``, is inlined; no
font or stylesheet from the network), so it opens from disk, in a mail attachment or an
air-gapped cluster. ``autodlgym compare`` writes the same kind of page for several runs of one task.

Every section is always present: a run without an ``ok`` trial gets figures that say so and
a failures section that lists what went wrong.
"""

from __future__ import annotations

import html
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from autodlgym.analysis._html import VIEW_CSS, figure, script, section, table
from autodlgym.errors import AutoDLError
from autodlgym.trial import OK, SEARCH, STOPPED

if TYPE_CHECKING:  # pragma: no cover
    pass

#: Section ids of a report page, in order (the browser test checks each is rendered).
SECTIONS = (
    "summary", "anytime", "curves", "effects", "slices", "importance", "pairs", "parallel",
    "pareto", "scores", "timeline", "promotions", "diagnostics", "compute", "top", "trials",
    "failures",
)  # fmt: skip

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1180px;padding:0 20px 40px;color:#1d1d1d;line-height:1.4}
h1{font-size:1.6em;margin:.8em 0 .2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;
padding-bottom:.2em;margin-top:1.6em}nav a{margin-right:.9em}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1.2em}dt{font-weight:600}
dd{margin:0}img{max-width:100%;height:auto;display:block;margin:.6em 0}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}
.note{background:#fff4e5;border-left:4px solid #e69f00;padding:.5em .8em}
.empty{color:#666;font-style:italic}.figs{display:flex;flex-wrap:wrap;gap:12px}
.figs img{max-width:48%}
"""


_figure = figure
_table = table
_section = section


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "none"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def _header(
    run_dir: Path,
    df: pd.DataFrame,
    config: Mapping[str, Any],
    meta: Mapping[str, Any],
    space: Any,
    space_error: str | None = None,
    running: str | None = None,
) -> str:
    from autodlgym import __version__
    from autodlgym.analysis.anytime import _task_label
    from autodlgym.analysis.optuna_export import objectives_of
    from autodlgym.searchspace.spec import ArchSpec

    items: list[tuple[str, str]] = []
    items.append(("run", str(run_dir.resolve())))
    items.append(("task", _task_label(config) if config else "(not recorded)"))
    space_name = "from a space file" if config.get("space") else "the task's own"
    if space is not None:
        space_name += f": {len(space)} decisions, {space.cardinality():,} architectures"
    else:
        space_name += f" (cannot be rebuilt: {space_error})"
    items.append(("space", space_name))
    opts = config.get("searcher_options") or {}
    searcher = str(config.get("searcher", "?"))
    if opts:
        searcher += " (" + ", ".join(f"{k}={v}" for k, v in sorted(opts.items())) + ")"
    items.append(("searcher", searcher))
    items.append(("objectives", ", ".join(objectives_of(config))))
    budget = [
        f"{config['trials']} trials" if config.get("trials") else None,
        f"time budget {_fmt_seconds(config['time_budget'])}" if config.get("time_budget") else None,
        f"{config['epochs']} epochs per trial" if config.get("epochs") else None,
        f"at most {config['max_train_samples']} training examples"
        if config.get("max_train_samples")
        else None,
        f"trial time limit {config['trial_time_limit']}"
        if config.get("trial_time_limit") is not None
        else None,
        f"pruner {config['pruner']}" if config.get("pruner") not in (None, "none") else None,
        f"{config['workers']} workers" if config.get("workers") else None,
        f"seed {config['seed']}" if config.get("seed") is not None else None,
    ]
    items.append(("budget", ", ".join(b for b in budget if b) or "(not recorded)"))
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    spent = float(
        (df.get("train_seconds", 0).fillna(0) + df.get("eval_seconds", 0).fillna(0)).sum()
    )
    items.append(
        (
            "trials",
            f"{len(df)} finished ("
            + (", ".join(f"{n} {s}" for s, n in counts.items()) or "none")
            + f"), {_fmt_seconds(spent)} of training and evaluation",
        )
    )
    versions = {"autodlgym (this report)": __version__}
    if meta.get("schema_version"):
        versions["results store schema"] = meta["schema_version"]
    if config.get("config_version") is not None:
        versions["run config"] = config["config_version"]
    recorded = config.get("versions")
    if isinstance(recorded, Mapping):
        versions.update({str(k): str(v) for k, v in recorded.items()})
    items.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    sessions = df.attrs.get("environment") or []
    if sessions:  # what the run itself ran on, as the results store recorded it
        from autodlgym.results.environment import describe

        items.append(("ran on", describe(sessions).removeprefix("environment: ")))
    from autodlgym.analysis.leaderboard import leaderboard
    from autodlgym.results.ranking import rungs

    board = leaderboard(df, top=1) if len(df) else df
    best_html = '<p class="empty">No trial finished ok: there is no best architecture.</p>'
    if len(board):
        best = board.iloc[0]
        spec = ArchSpec.from_json(best["spec"])
        stopped_txt = ""
        if best["stopped"]:
            ran = best.get("epochs_run")
            ran_txt = "" if pd.isna(ran) else f" after {int(ran)} of {int(best['epochs'])} epochs"
            stopped_txt = f" (stopped by the search's time budget{ran_txt})"
        test = best.get("test_score")
        test_txt = "" if pd.isna(test) else f", test score {test:.4f}"
        params = best.get("params")
        params_txt = "" if pd.isna(params) else f", {int(params):,} parameters"
        fidelity_txt = ""
        top_rung = int(rungs(df).max())
        if top_rung > 0:  # several fidelities: say which one the best was trained at
            samples = best.get("max_train_samples")
            on = "" if pd.isna(samples) else f" on {int(samples):,} examples"
            examples = best.get("max_examples")
            if examples is not None and not pd.isna(examples):
                on += f" (its first {int(examples):,} examples)"
            fidelity_txt = (
                f", {int(best['epochs'])} epochs{on} (rung {int(best['rung'])} of 0-{top_rung})"
            )
        evals = int(best["n_evals"])
        evals_txt = f", {evals} evaluations of this architecture" if evals > 1 else ""
        items.append(
            (
                "best",
                f"trial {int(best['trial_id'])}: validation score {best['val_score']:.4f}"
                f"{stopped_txt}{test_txt}{params_txt}{fidelity_txt}{evals_txt}; "
                f"{spec.summary()}",
            )
        )
        best_html = (
            f"<details><summary>best spec (arch_id {html.escape(spec.arch_id)})</summary>"
            f"<pre>{html.escape(json.dumps(spec.to_dict(), indent=1, sort_keys=True))}</pre>"
            "</details>"
        )
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items)
    nav = " ".join(f'<a href="#{s}">{s}</a>' for s in SECTIONS[1:])
    return (
        f'<header id="summary"><h1>autodlgym report: {html.escape(run_dir.resolve().name)}</h1>'
        f"<nav>{nav}</nav>"
        + (f'<p class="note" id="running">{html.escape(running)}</p>' if running else "")
        + f"<dl>{rows}</dl>{best_html}</header>\n"
    )


def running_note(
    df: pd.DataFrame, in_flight: int, config: Mapping[str, Any] | None = None
) -> str | None:
    """The banner of a report written while the search runs (None once it is over).

    Args:
        df: the run's finished search trials (with ``finished_at``).
        in_flight: trials handed to workers and not finished (the store's pending rows).
        config: the run's settings; a search that finished its ``trials`` is over whatever
            pending rows a crash left behind.
    """
    if in_flight <= 0:
        return None
    planned = (config or {}).get("trials")
    if planned and len(df) >= int(planned):
        return None
    trials = "trial" if in_flight == 1 else "trials"
    stamps = df["finished_at"].dropna() if "finished_at" in df.columns and len(df) else []
    if len(stamps):
        last = pd.Timestamp(stamps.max())
        last = last.tz_localize("UTC") if last.tzinfo is None else last.tz_convert("UTC")
        shown = f"this page shows the trials finished by {last:%Y-%m-%d %H:%M:%S} UTC"
    else:
        shown = "no trial has finished yet"
    return f"Search still running: {in_flight} {trials} in flight; {shown}."


def build_report(
    run_dir: str | os.PathLike[str],
    top: int = 10,
    table_scores: Sequence[float] | np.ndarray | None = None,
) -> str:
    """The report page of a run, as HTML text (see the module docstring).

    Args:
        run_dir: the run directory.
        top: rows of the top-k table.
        table_scores: every validation score of the task's table, for random search's
            expectation band on the anytime plot; by default every score of a lookup
            task's table (:meth:`Run.table_scores <autodlgym.run.Run.table_scores>`).

    Raises:
        AutoDLError: no run in ``run_dir``; ``top < 1``.
    """
    from autodlgym.analysis import views
    from autodlgym.analysis.anytime import plot_anytime
    from autodlgym.analysis.compute import compute_by_block, compute_by_status, plot_compute
    from autodlgym.analysis.curves import plot_learning_curves
    from autodlgym.analysis.effects import (
        _draw_importance,
        decision_importance,
        effects_note,
        importance_note,
        plot_decision_effects,
    )
    from autodlgym.analysis.initdiag import diagnostic_correlations, plot_init_diagnostics
    from autodlgym.analysis.leaderboard import failure_summary, leaderboard
    from autodlgym.analysis.pareto import available_costs, pareto_front, plot_pareto
    from autodlgym.run import Run
    from autodlgym.searchspace.spec import ArchSpec

    if top < 1:
        raise AutoDLError(f"--top must be a positive number of rows, got {top}")
    run = Path(run_dir)
    space, space_error = None, None
    with Run.open(run) as opened:
        try:
            space = opened.space
        except AutoDLError as exc:
            space_error = str(exc)
        df = opened.frame()
        curves = opened.curves()
        config = opened.settings
        meta = opened.store.meta()
        in_flight = len(opened.store.pending())
        if table_scores is None:
            table_scores = opened.table_scores()
        baselines = opened.baselines()
    # the search's trials only: retrained evaluations (autodlgym retrain) are not search trials
    df = df[df["phase"] == SEARCH].reset_index(drop=True)
    curves = curves[curves["trial_id"].isin(df["trial_id"])].reset_index(drop=True)
    searcher = config.get("searcher")

    running = running_note(df, in_flight, config)
    parts = [_header(run, df, config, meta, space, space_error, running)]

    band = (
        "<p>Dashed: random search's expected best on this table, with its 90 % band.</p>"
        if table_scores is not None
        else ""
    )
    parts.append(
        _section(
            "anytime",
            "Anytime performance",
            band
            + '<div class="figs">'
            + _figure(lambda: plot_anytime(df, "trials", table_scores), "best so far by trials")
            + _figure(lambda: plot_anytime(df, "seconds"), "best so far by compute seconds")
            + "</div>",
        )
    )
    parts.append(
        _section(
            "curves",
            "Learning curves",
            "<p>Validation score after each epoch; a cross marks where a pruned or failed "
            "trial stopped.</p>"
            + _figure(lambda: plot_learning_curves(df, curves), "learning curves"),
        )
    )
    note = effects_note(searcher)
    parts.append(
        _section(
            "effects",
            "Per-decision effects",
            (f'<p class="note">{html.escape(note)}</p>' if note else "")
            + _figure(
                lambda: plot_decision_effects(df, searcher, space=space, note=False),
                "decision effects",
            ),
        )
    )
    imp = decision_importance(df, space) if space is not None else pd.DataFrame()
    ranked = views.ranked_decisions(imp, df)
    parts.append(views.slices_section(df, space, ranked, imp))
    if space is not None:
        imp_body = _figure(
            lambda: _draw_importance(imp, "ped-anova", 15, None), "decision importance"
        )
        if imp.empty:
            imp_body += '<p class="empty">No decision could be ranked.</p>'
    else:
        imp_body = '<p class="empty">The run\'s search space cannot be rebuilt.</p>'
    small = importance_note(df) if space is not None and len(df) else None
    imp_note = f'<p class="note" id="importance-note">{html.escape(small)}</p>' if small else ""
    parts.append(
        _section(
            "importance",
            "Decision importance",
            "<p>PED-ANOVA (optuna.importance) over the ok trials; decisions that not every "
            "trial has are left out.</p>" + imp_note + imp_body,
        )
    )
    parts.append(views.pairs_section(df, space, imp))
    parts.append(views.parallel_section(df, space, ranked))
    costs = available_costs(df) if len(df) else []
    pareto_body = '<div class="figs">'
    for cost in costs or ["params"]:
        pareto_body += _figure(lambda cost=cost: plot_pareto(df, cost), f"Pareto front {cost}")
    pareto_body += "</div>"
    if costs:
        front = pareto_front(df, costs[0])
        front = front[front["on_front"]].drop(columns="on_front")
        if costs[0] in ("params", "flops"):
            front["cost"] = front["cost"].round().astype("Int64")
        front.insert(3, "status", np.where(front.pop("stopped"), STOPPED, OK))
        pareto_body += (
            f"<h3>Specs on the front (validation score vs {costs[0]}; one row per "
            "architecture, at the highest fidelity it reached)</h3>"
        )
        pareto_body += _table(front.rename(columns={"cost": costs[0]}), "")
    parts.append(_section("pareto", "Pareto fronts", pareto_body))
    parts.append(views.scores_section(df))
    parts.append(views.timeline_section(df))
    parts.append(views.promotions_section(df))
    corr = diagnostic_correlations(df)
    parts.append(
        _section(
            "diagnostics",
            "Diagnostics at initialisation",
            _figure(lambda: plot_init_diagnostics(df), "init diagnostics")
            + _table(corr, "No diagnostics recorded."),
        )
    )
    parts.append(
        _section(
            "compute",
            "Where the compute went",
            _figure(lambda: plot_compute(df), "compute by status and block")
            + '<div class="figs">'
            + _table(compute_by_status(df) if len(df) else pd.DataFrame(), "No trials.")
            + _table(
                compute_by_block(df) if len(df) else pd.DataFrame(),
                "No block decisions in this space.",
            )
            + "</div>",
        )
    )
    board = leaderboard(df, top=top) if len(df) else pd.DataFrame()
    if len(board):
        board = board.assign(arch=[ArchSpec.from_json(s).summary() for s in board["spec"]])
        cols = ["rank", "trial_id", "val_score", "test_score", "status", "n_evals", "epochs"]
        cols += ["epochs_run", "rung", "params", "flops", "train_seconds", "arch", "arch_id"]
        # columns the run does not record (FLOPs of a table's rows) are left out
        board = board[[c for c in cols if c in board.columns and board[c].notna().any()]]
    parts.append(
        _section(
            "top",
            f"Top {top} architectures",
            "<p>One row per architecture: its trial at the highest fidelity it reached, with "
            "its best validation score there; <code>n_evals</code> counts its trials. A "
            "trial stopped by the search's time budget ranks with the score it reached "
            "(status <code>stopped</code>).</p>"
            + _table(board, "No trial finished ok: nothing to rank.")
            + baselines_html(baselines),
        )
    )
    parts.append(views.trials_section(df, curves))
    summary = failure_summary(df) if len(df) else pd.DataFrame()
    fail_body = _table(summary, "No trials yet.") if len(summary) or not len(df) else ""
    failed = df[df["status"] != OK] if len(df) else df
    if len(failed):
        shown = failed.head(200)
        listing = pd.DataFrame(
            {
                "trial_id": shown["trial_id"],
                "status": shown["status"],
                "arch": [ArchSpec.from_json(s).summary() for s in shown["spec"]],
                "message": shown["message"],
            }
        )
        more = f" (first 200 of {len(failed)})" if len(failed) > 200 else ""
        fail_body += f"<h3>Trials that did not finish ok{more}</h3>" + _table(listing, "")
    else:
        fail_body += "<p>Every trial finished ok.</p>"
    parts.append(_section("failures", "Failures", fail_body))
    return _page(f"autodlgym report: {run.resolve().name}", "".join(parts))


def baselines_html(baselines: pd.DataFrame) -> str:
    """The run's scikit-learn baselines as a small table (nothing for a run without them):
    what a network has to beat, fitted on the same split and inputs."""
    if baselines is None or not len(baselines):
        return ""
    from autodlgym.analysis.baselines import LABELS

    shown = pd.DataFrame(
        {
            "baseline": [LABELS.get(str(n), str(n)) for n in baselines["baseline"]],
            "status": baselines["status"],
            "val_score": baselines["val_score"],
            "test_score": baselines["test_score"],
            "fit_seconds": baselines["train_seconds"],
        }
    )
    return (
        '<h3 id="baselines">Baselines</h3><p>scikit-learn models fitted on the same training '
        "split and inputs as the networks, scored on the same validation and test splits "
        "(never seen by the searcher).</p>" + _table(shown, "")
    )


def _page(title: str, body: str) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}{VIEW_CSS}</style></head><body>\n"
        f'{body}<footer><p class="empty">Written by autodlgym on {html.escape(stamp)}.</p>'
        f"</footer><script>{script()}</script></body></html>\n"
    )


def write_report(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    top: int = 10,
    table_scores: Sequence[float] | np.ndarray | None = None,
) -> Path:
    """Write :func:`build_report` to ``out`` (default ``RUN_DIR/report.html``); return it."""
    page = build_report(run_dir, top=top, table_scores=table_scores)
    path = Path(out) if out is not None else Path(run_dir) / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


# Several runs --------------------------------------------------------------------------------
def build_comparison(runs: Sequence[str | os.PathLike[str]]) -> tuple[str, pd.DataFrame]:
    """A page comparing several runs of one task, and its summary.

    Runs are grouped by searcher; the first group (the searcher of the first run given) is
    the baseline. The page shows the anytime curves (mean and min-max band over each
    searcher's runs) by trials and by compute seconds (by trials only when no run records a
    compute second, as on lookup tables), the regret to the table's optimum when the task
    is a lookup table, the empirical distribution of each searcher's best scores, and a
    one-sided Mann-Whitney U of each other searcher against the baseline
    (:func:`~autodlgym.analysis.anytime.mann_whitney_vs_first`) on the best score every run
    reached within the budget all of them had (the fewest trials, the fewest seconds).

    Returns:
        ``(html, summary)``: the page, and one row per run with ``run``, ``searcher``,
        ``seed``, ``trials``, ``ok``, ``stopped`` (trials stopped by the search's time budget:
        they count with the score they reached), ``best_val_score``, ``compute_seconds``
        (the search's trials; retrained evaluations are left out) and, when the optimum is
        known, ``final_regret`` (optimum - ``best_val_score``). ``summary.attrs
        ["significance"]`` holds the test table (``budget``, then the columns of
        :func:`~autodlgym.analysis.anytime.mann_whitney_vs_first`).
    """
    from autodlgym.analysis.anytime import (
        _load_run,
        _task_label,
        anytime,
        best_within,
        mann_whitney_vs_first,
        plot_compare,
        plot_edf,
        run_optimum,
    )

    if not runs:
        raise AutoDLError("compare needs at least one run directory")
    rows = []
    frames = []
    task = ""
    for r in runs:
        df, config = _load_run(r)
        frames.append(df)
        task = _task_label(config) if config else task
        a = anytime(df)
        rows.append(
            {
                "run": str(r),
                "searcher": str(config.get("searcher", "?")),
                "seed": config.get("seed"),
                "trials": len(df),
                "ok": int((df["status"] == OK).sum()) if len(df) else 0,
                "stopped": int((df["status"] == STOPPED).sum()) if len(df) else 0,
                "best_val_score": float(a["best_val_score"].iloc[-1]) if len(a) else np.nan,
                "compute_seconds": float(a["compute_seconds"].iloc[-1]) if len(a) else 0.0,
            }
        )
    summary = pd.DataFrame(rows)
    optimum = run_optimum(runs[0])
    if optimum is not None:
        summary["final_regret"] = optimum - summary["best_val_score"]
    by_seconds = bool((summary["compute_seconds"] > 0).any())
    axes = ("trials", "seconds") if by_seconds else ("trials",)
    why = (
        ""
        if by_seconds
        else '<p class="note">No run records a compute second (table lookups cost none): '
        "every view is by trials.</p>"
    )
    label = {"trials": "by trials", "seconds": "by compute seconds"}
    figures = "".join(
        _figure(lambda x=x: plot_compare(runs, x), f"best so far {label[x]}") for x in axes
    )
    if optimum is not None:
        figures += "".join(
            _figure(lambda x=x: plot_compare(runs, x, optimum=optimum), f"regret {label[x]}")
            for x in axes
        )
    tests = []
    for x in axes:
        budget = float(summary["trials" if x == "trials" else "compute_seconds"].min())
        scores = pd.DataFrame(
            {
                "searcher": summary["searcher"],
                "best_val_score": [best_within(df, x, budget) for df in frames],
            }
        )
        t = mann_whitney_vs_first(scores)
        unit = ("trial" if budget == 1 else "trials") if x == "trials" else "s"
        t.insert(0, "budget", f"{budget:g} {unit}")
        tests.append(t)
    significance = pd.concat(tests, ignore_index=True)
    summary.attrs["significance"] = significance
    baseline = html.escape(str(summary["searcher"].iloc[0]))
    body = (
        f'<header id="summary"><h1>autodlgym comparison: {html.escape(task)}</h1>'
        f"<p>{len(runs)} runs. Runs of one searcher (seeds) are drawn as their mean with a "
        "min-max band.</p>"
        + (
            f"<p>Optimum of the table: {optimum:.6g} (regret = optimum - best so far).</p>"
            if optimum is not None
            else ""
        )  # fmt: skip
        + "</header>\n"
        + _section("anytime", "Anytime performance", why + f'<div class="figs">{figures}</div>')
        + _section(
            "edf",
            "Best scores of the runs",
            _figure(lambda: plot_edf(summary), "distribution of the runs' best scores"),
        )
        + _section(
            "significance",
            f"Better than {baseline}?",
            f"<p>One-sided Mann-Whitney U of each searcher's runs against {baseline}'s (the "
            "searcher of the first run): the best validation score each run reached within "
            "the budget every run had. A small p value says the searcher scores higher.</p>"
            + _table(significance, "One searcher only: nothing to compare against."),
        )
        + _section("runs", "Runs", _table(summary, "No runs."))
    )
    return _page(f"autodlgym comparison: {task}", body), summary


def write_comparison(
    runs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str] = "compare.html"
) -> tuple[Path, pd.DataFrame]:
    """Write :func:`build_comparison` to ``out``; return the path and the summary."""
    page, summary = build_comparison(runs)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path, summary


# Command line ----------------------------------------------------------------------------------
def report_command(args: Any) -> int:
    """``autodlgym report RUN [--out FILE] [--top K]``."""
    if not Path(args.run).is_dir():
        raise AutoDLError(f"run directory {args.run!r} does not exist")
    t0 = time.perf_counter()
    path = write_report(args.run, args.out, top=args.top)
    print(f"report of {args.run} written to {path} ({time.perf_counter() - t0:.1f} s)")
    return 0


def compare_command(args: Any) -> int:
    """``autodlgym compare RUN1 RUN2 ... [--out FILE]``."""
    for r in args.runs:
        if not Path(r).is_dir():
            raise AutoDLError(f"run directory {r!r} does not exist")
    path, summary = write_comparison(args.runs, args.out)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        tests = summary.attrs.get("significance")
        if tests is not None and not tests.empty:
            print(f"\nbetter than {summary['searcher'].iloc[0]}? (one-sided Mann-Whitney U)")
            print(tests.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"comparison written to {path}")
    return 0
