"""What a search found: leaderboard views, figures for notebooks, the HTML report, and the
Optuna export.

Each figure has a data function returning a tidy DataFrame (what the tests check) and a
``plot_*`` function drawing it as a matplotlib Figure (imported on first use)::

    from autodlgym import analysis
    df = analysis.load_results("runs/demo")
    analysis.anytime(df)                    # best so far by trials and compute seconds
    analysis.plot_anytime(df, x="seconds")
"""

from __future__ import annotations

from autodlgym.analysis.anytime import (
    anytime,
    compare_anytime,
    compare_bands,
    plot_anytime,
    plot_compare,
    random_search_band,
)
from autodlgym.analysis.compute import compute_by_block, compute_by_status, plot_compute
from autodlgym.analysis.curves import learning_curves, plot_learning_curves
from autodlgym.analysis.effects import (
    decision_effects,
    decision_importance,
    effects_note,
    plot_decision_effects,
    plot_decision_importance,
)
from autodlgym.analysis.initdiag import (
    diagnostic_correlations,
    init_diagnostics,
    plot_init_diagnostics,
)
from autodlgym.analysis.leaderboard import (
    best_so_far,
    choice_effects,
    export,
    failure_summary,
    leaderboard,
)
from autodlgym.analysis.optuna_export import export_optuna, run_space
from autodlgym.analysis.pairs import pair_grid, plot_pair
from autodlgym.analysis.parallel import parallel_coordinates, plot_parallel_coordinates
from autodlgym.analysis.pareto import pareto_front, plot_pareto
from autodlgym.analysis.promotions import plot_promotions, promotion_chains, rung_summary
from autodlgym.analysis.report import build_report, write_comparison, write_report
from autodlgym.analysis.scores import (
    plot_score_edf,
    plot_val_test_scores,
    score_edf,
    val_test_scores,
)
from autodlgym.analysis.slices import plot_slices, slice_data
from autodlgym.analysis.timeline import plot_timeline, timeline, worker_usage
from autodlgym.analysis.trials import trial_details, trials_table
from autodlgym.run import load_results

__all__ = [
    "anytime", "best_so_far", "build_report", "choice_effects", "compare_anytime",
    "compare_bands", "compute_by_block", "compute_by_status", "decision_effects",
    "decision_importance", "diagnostic_correlations", "effects_note", "export",
    "export_optuna", "failure_summary", "init_diagnostics", "leaderboard", "learning_curves",
    "load_results", "pair_grid", "parallel_coordinates", "pareto_front", "plot_anytime",
    "plot_compare", "plot_compute", "plot_decision_effects", "plot_decision_importance",
    "plot_init_diagnostics", "plot_learning_curves", "plot_pair", "plot_parallel_coordinates",
    "plot_pareto", "plot_promotions", "plot_score_edf", "plot_slices", "plot_timeline",
    "plot_val_test_scores", "promotion_chains", "random_search_band", "run_space",
    "rung_summary", "score_edf", "slice_data", "timeline", "trial_details", "trials_table",
    "val_test_scores", "worker_usage", "write_comparison", "write_report",
]  # fmt: skip
