"""A search rediscovers the priors.

On MNIST-1D the spatial priors (convolution, recurrence) beat plain MLPs (Greydanus 2020);
once the positions are shuffled they lose that edge. A search over the default space on each
task should find the same: here two random searches (``run_search``, same seed and time
budget) over ``rediscover.yaml`` (the default space at laptop size) write their runs under ``OUT/runs``, and the per-block effect of the
first stage (:func:`~autodlgym.analysis.leaderboard.choice_effects`) and the blocks of the top
candidates are compared between the tasks.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from autodlgym.experiments.base import Outcome, figure, load_space, pct

NAME = "rediscover"
CLAIM = "a search favours conv/recurrent blocks on ordered MNIST-1D, not on the shuffled variant"
SOURCE = "Greydanus 2020 (MNIST-1D)"

SPATIAL = {"conv", "residual", "dense", "inception", "se", "wavenet", "recurrent", "attention"}


def run(quick: bool = False, seed: int = 0, out: str | Path | None = None) -> Outcome:
    import pandas as pd

    from autodlgym.analysis.leaderboard import choice_effects
    from autodlgym.run import load_results
    from autodlgym.runner import RunConfig, run_search

    budget, top = (12.0, 5) if quick else (240.0, 10)
    root = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="rediscover-"))
    rows, effects = [], {}
    for task in ("mnist1d", "mnist1d_shuffled"):
        run_dir = root / "runs" / task
        run_search(
            RunConfig(
                out=str(run_dir),
                task=task,
                searcher="random",
                trials=None,
                space=load_space("rediscover").to_config(),
                time_budget=budget,
                epochs=1 if quick else 3,
                seed=seed,
                trial_time_limit=5.0 if quick else 30.0,
                max_train_samples=500 if quick else None,
                final_seeds=0,  # the experiment reads the search's trials, not a final answer
            )  # fmt: skip
        )
        df = load_results(run_dir)
        ok = df[df.status == "ok"]
        eff = choice_effects(ok, "stage1.block") if len(ok) else pd.DataFrame()
        effects[task] = eff
        best = ok.sort_values("val_score", ascending=False).head(top)
        spatial_share = float(best["stage1.block"].isin(SPATIAL).mean()) if len(best) else None
        by_kind = ok.assign(spatial=ok["stage1.block"].isin(SPATIAL)).groupby("spatial").val_score
        means = by_kind.mean()
        rows.append(
            {
                "task": task,
                "trials": len(df),
                "ok": len(ok),
                "best_val": pct(ok.val_score.max()) if len(ok) else None,
                "mean_val_spatial_blocks": pct(means.get(True)) if True in means else None,
                "mean_val_mlp_highway": pct(means.get(False)) if False in means else None,
                "measured": spatial_share,
                "published": "spatial blocks win" if task == "mnist1d" else "edge lost",
            }
        )
    table = pd.DataFrame(rows)
    fig, axes = figure(ncols=2, width=4.8)
    for ax, (task, eff) in zip(axes, effects.items()):
        if len(eff):
            e = eff.dropna(subset=["mean"]).sort_values("mean")
            colors = ["C0" if o in SPATIAL else "C3" for o in e.option]
            ax.barh(e.option.astype(str), e["mean"], color=colors)
        ax.set_title(f"{task}: mean val by stage-1 block", fontsize=10)
        ax.set_xlabel("validation accuracy")
    fig.tight_layout()
    lines = [
        f"{r.task}: {r.ok} trials, share of spatial blocks among the top {top}: "
        f"{r.measured if r.measured is None else round(r.measured, 2)}; mean val spatial "
        f"{r.mean_val_spatial_blocks} % against mlp/highway {r.mean_val_mlp_highway} %."
        for r in table.itertuples()
    ]
    return Outcome(table, fig, lines)
