"""The report's views of the decisions, the scores, the workers, the rungs and every trial:
one function per section, each returning the section's HTML (see
:func:`~autodlgym.analysis.report.build_report`, which places them).

Each section draws from the data function of its figure (``slice_data``,
``parallel_coordinates``, ``pair_grid``, ``val_test_scores``, ``score_edf``, ``timeline``,
``promotion_chains``, ``trials_table``), so what the page shows is what those return.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import pandas as pd

from autodlgym.analysis._html import figure, section, table

if TYPE_CHECKING:  # pragma: no cover
    from autodlgym.searchspace.space import SearchSpace

#: Decisions shown in the slice plot and on the parallel coordinates' axes.
MAX_SLICES = 12
MAX_AXES = 8


def ranked_decisions(imp: pd.DataFrame, df: pd.DataFrame) -> list[str]:
    """The decision columns of ``df``: those ``imp`` (decision importance) ranks first, most
    important first, then the rest in frame order."""
    from autodlgym.analysis.leaderboard import choice_columns

    cols = choice_columns(df)
    first = [d for d in imp.get("decision", pd.Series(dtype="str")) if d in cols]
    return first + [c for c in cols if c not in first]


def _order_text(imp: pd.DataFrame) -> str:
    return (
        "most important first (PED-ANOVA, as in the importance section)"
        if len(imp)
        else "in the space's order"
    )


def slices_section(
    df: pd.DataFrame, space: SearchSpace | None, ranked: list[str], imp: pd.DataFrame
) -> str:
    """Validation score against each decision."""
    from autodlgym.analysis.slices import plot_slices

    return section(
        "slices",
        "Score by decision",
        "<p>Each point is one architecture at the highest fidelity it reached. Numeric "
        "decisions on their own scale (log when the options span 10x or more), categories "
        f"with the number of architectures per option; decisions {_order_text(imp)}.</p>"
        + figure(lambda: plot_slices(df, ranked, space, MAX_SLICES), "score by decision"),
    )


def pairs_section(df: pd.DataFrame, space: SearchSpace | None, imp: pd.DataFrame) -> str:
    """The two most important decisions together."""
    from autodlgym.analysis.pairs import plot_pair, top_pair

    pair = top_pair(df, ranked_decisions(imp, df)) if len(df) else None
    if pair is None:
        body = '<p class="empty">Fewer than two decisions vary among the scored trials.</p>'
    else:
        first, second = pair
        why = (
            "the two decisions that importance ranks first"
            if len(imp) >= 2
            else "the first two decisions that vary (importance could not rank them)"
        )
        body = (
            f"<p>{html.escape(first)} against {html.escape(second)}, {why}: each cell is "
            "the mean validation score of the architectures that took that pair, with their "
            "number; blank where none did.</p>"
            + figure(lambda: plot_pair(df, first, second, space), f"{first} and {second}")
        )
    return section("pairs", "Two decisions together", body)


def parallel_section(df: pd.DataFrame, space: SearchSpace | None, ranked: list[str]) -> str:
    """Parallel coordinates over the most important decisions."""
    from autodlgym.analysis.parallel import plot_parallel_coordinates

    return section(
        "parallel",
        "Parallel coordinates",
        f"<p>The most important decisions that vary (at most {MAX_AXES}), then the validation "
        "score; "
        "one line per architecture, the best on top.</p>"
        + figure(
            lambda: plot_parallel_coordinates(df, ranked, space, MAX_AXES),
            "parallel coordinates",
        ),
    )


def scores_section(df: pd.DataFrame) -> str:
    """Test against validation, and the distribution of the final scores."""
    from autodlgym.analysis.scores import plot_score_edf, plot_val_test_scores

    return section(
        "scores",
        "Final scores",
        "<p>One point per architecture at the highest fidelity it reached. Searchers only "
        "see validation scores; a test score far below its validation score is a sign of "
        "selection by luck. A trial stopped by the deadline has no test score: it is only in "
        "the distribution.</p>"
        + '<div class="figs">'
        + figure(lambda: plot_val_test_scores(df), "test against validation score")
        + figure(lambda: plot_score_edf(df), "distribution of validation scores")
        + "</div>",
    )


def timeline_section(df: pd.DataFrame) -> str:
    """Trials per worker over time, and each worker's idle time."""
    from autodlgym.analysis.timeline import plot_timeline, timeline, worker_usage

    tl = timeline(df) if len(df) else pd.DataFrame()
    usage = worker_usage(tl) if len(tl) else pd.DataFrame()
    if len(usage):
        usage = usage.assign(idle_share=(100 * usage["idle_share"]).round(1)).rename(
            columns={
                "busy": "busy_s",
                "idle": "idle_s",
                "span": "span_s",
                "longest_gap": "longest_gap_s",
                "idle_share": "idle_%",
            }  # fmt: skip
        )
    return section(
        "timeline",
        "Timeline",
        "<p>Each trial from its start (when it was recorded, less its training and "
        "evaluation seconds) to its end, on the worker that ran it; a reused result takes "
        "no time. Gaps are idle time: the searcher thinking, data loading, the store, or a "
        "worker waiting for work.</p>"
        + figure(lambda: plot_timeline(df), "timeline of trials per worker")
        + table(usage, "No trial has finished."),
    )


def promotions_section(df: pd.DataFrame) -> str:
    """ASHA promotion chains, with the rungs' counts."""
    from autodlgym.analysis.promotions import plot_promotions, promotion_chains, rung_summary

    chains = promotion_chains(df) if len(df) else pd.DataFrame()
    if chains.empty:
        return section(
            "promotions",
            "Promotions between rungs",
            '<p class="empty">Every trial ran at one fidelity: no rungs, no promotions.</p>',
        )
    summary = rung_summary(df)
    listing = []
    for arch, g in chains.groupby("arch_id", sort=False):
        steps = " → ".join(
            f"r{int(r)} #{int(t)} "
            + ("—" if pd.isna(v) else f"{v:.4f}")
            + ("" if s in ("ok",) else f" ({s})")
            for r, t, v, s in zip(g["rung"], g["trial_id"], g["val_score"], g["status"])
        )
        listing.append({"arch_id": arch, "top_rung": int(g["top_rung"].iloc[0]), "chain": steps})
    shown = pd.DataFrame(listing)
    more = f" (the first 100 of {len(shown)})" if len(shown) > 100 else ""
    return section(
        "promotions",
        "Promotions between rungs",
        "<p>Under ASHA a promotion trains the same spec again at the next rung's fidelity. "
        "Grey: every architecture's score at each rung it reached; lines: the architectures "
        "promoted at least once.</p>"
        + figure(lambda: plot_promotions(df), "promotion chains")
        + table(summary, "")
        + f"<h3>Promotion chains{more} (rung, trial, validation score)</h3>"
        + table(shown.head(100), ""),
    )


def trials_section(df: pd.DataFrame, curves: pd.DataFrame) -> str:
    """Every trial, sortable, each with its drill-down."""
    from autodlgym.analysis.trials import trials_html

    return section(
        "trials",
        f"All trials ({len(df)})",
        "<p>Click a column header to sort, a row to open the trial: its spec, learning "
        "curve and diagnostics at initialisation. <code>#trial-N</code> at the end of the "
        "address opens trial N.</p>" + trials_html(df, curves),
    )
