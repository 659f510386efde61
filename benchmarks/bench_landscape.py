"""How learnable the top of a tabular task is: the figures behind "The searchers on the
tables" in docs/benchmarks.md.

For each table (every spec of its space enumerated and looked up):

1. ``top1``: the share of the space's specs whose validation score is in the table's top 1 %
   (what one random draw hits; :meth:`Outcomes.top_mass` counts the same over the table's
   distinct architectures).
2. Locality: the chance that a one-step neighbour (:meth:`SearchSpace.neighbours`, one decision
   changed) of a spec is in the top 1 %, for specs in the top 1 %, in the top 4 % but not
   the top 1 %, and for all specs. Local moves help as much as the first two exceed the third.
3. A surrogate's precision: ridge regression on the one-hot encoding (the predictor's) of 100
   random specs, on their raw validation scores and on the scores clipped below at their
   median (so the model spends itself on the top, not on how bad the worst are); printed is
   the share of its 100 highest predictions among the other specs that are in the top 1 %
   (mean over ``--draws`` draws of the 100). 1.0 would mean the model can point at the top.
4. The ceiling of any surrogate: a gradient-boosted tree model (scikit-learn's
   ``HistGradientBoostingRegressor``, each decision a categorical feature) fitted on four
   fifths of the table's specs; printed is the share of the top 1 % among its best 1 % of
   predictions on the other fifth. A searcher whose surrogate has seen ~100 specs should not
   expect to beat this per evaluation: it is the most that knowing the rest of the table tells
   about where the top 1 % lies.
5. With ``--runs N``: the share of a predictor search's 100 evaluations that land in the top
   4 %, and in the top 1 % (to set against 4.), over the runs ``autodlgym bench`` makes with
   seeds 0..N-1.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_landscape.py \
        [--tasks nasbench-graph:cora,nasbench-graph:physics] [--draws 20] [--runs 0]

The product of every decision's options is enumerated, so keep to small spaces (the tables').
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge

from autodlgym.analysis.bench import _run_one
from autodlgym.searchers.predictor import OneHot
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.tasks import get_task


def enumerate_table(task: str) -> tuple[object, list[ArchSpec], np.ndarray, float, float]:
    """The table, every spec of its space, each one's validation score (NaN where it
    fails) and the top-1 % and top-4 % thresholds."""
    table = get_task(task).lookup()
    space = table.space
    seen: dict[str, ArchSpec] = {}
    for values in itertools.product(*[c.options for c in space.choices]):
        active: dict = {}
        for c, v in zip(space.choices, values):
            if space.is_active(c, active):
                active[c.name] = v
        spec = space.validate(active)
        seen.setdefault(spec.arch_id, spec)
    specs, vals = [], []
    for spec in seen.values():
        result = table.objective_function(spec)
        specs.append(spec)
        vals.append(result.val_score if result.ok else np.nan)
    outcomes = table.outcomes()
    return table, specs, np.array(vals), outcomes.top_threshold(0.01), outcomes.top_threshold(0.04)


def locality(space, specs, vals, index, thr, q4, rng, per_class=300) -> dict[str, float]:
    """Chance that a one-step neighbour is in the top 1 %, by the class of the spec."""
    classes = {
        "top 1 %": np.flatnonzero(vals >= thr),
        "top 4-1 %": np.flatnonzero((vals >= q4) & (vals < thr)),
        "any": np.flatnonzero(np.isfinite(vals)),
    }
    out = {}
    for name, members in classes.items():
        picked = rng.choice(members, min(per_class, len(members)), replace=False)
        hits = []
        for i in picked:
            nv = [vals[index[n.arch_id]] for n in space.neighbours(specs[i], rng)]
            nv = np.array([v for v in nv if np.isfinite(v)])
            hits.append(np.mean(nv >= thr) if len(nv) else 0.0)
        out[name] = float(np.mean(hits))
    return out


def surrogate_precision(x, vals, thr, rng, draws, n=100, top=100) -> dict[str, float]:
    """Share of a ridge model's ``top`` best predictions (fitted on ``n`` random specs)
    that are in the top 1 %."""
    ok = np.flatnonzero(np.isfinite(vals))
    out = {"raw": [], "clipped": []}
    for _ in range(draws):
        train = rng.choice(ok, n, replace=False)
        rest = np.setdiff1d(ok, train)
        for target in out:
            y = vals[train]
            if target == "clipped":
                y = np.maximum(y, np.median(y))
            pred = Ridge(alpha=1.0).fit(x[train], y).predict(x[rest])
            best = rest[np.argsort(-pred, kind="stable")[:top]]
            out[target].append(np.mean(vals[best] >= thr))
    return {k: float(np.mean(v)) for k, v in out.items()}


def ceiling_precision(codes, vals, thr, rng, iterations=500) -> float:
    """Share of the top 1 % among the best 1 % of predictions on a held-out fifth of the specs,
    by a gradient-boosted model fitted on the other four fifths. ``codes``: the specs' option
    indices (:meth:`OneHot.codes`; -1, an inactive decision, is a missing value to the model)."""
    ok = rng.permutation(np.flatnonzero(np.isfinite(vals)))
    held, train = ok[: len(ok) // 5], ok[len(ok) // 5 :]
    model = HistGradientBoostingRegressor(
        max_iter=iterations, categorical_features=list(range(codes.shape[1])), random_state=0
    )
    pred = model.fit(codes[train], vals[train]).predict(codes[held])
    best = held[np.argsort(-pred, kind="stable")[: max(1, len(held) // 100)]]
    return float(np.mean(vals[best] >= thr))


def concentration(
    task: str, q4: float, thr: float, runs: int, budget: int = 100
) -> tuple[float, float]:
    """Mean shares of a predictor search's evaluations that land in the top 4 % and in the
    top 1 %, over the runs ``autodlgym bench`` makes (seeds 0 .. runs-1)."""
    shares = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(runs):
            run = _run_one(task, "predictor", seed, budget, str(Path(tmp) / f"seed{seed}"))
            val = np.nan_to_num(run["val"], nan=-np.inf)
            shares.append((float(np.mean(val >= q4)), float(np.mean(val >= thr))))
    top4, top1 = np.mean(shares, axis=0)
    return float(top4), float(top1)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="nasbench-graph:cora,nasbench-graph:physics")
    p.add_argument("--draws", type=int, default=20)
    p.add_argument("--runs", type=int, default=0)
    args = p.parse_args(argv)
    for task in args.tasks.split(","):
        table, specs, vals, thr, q4 = enumerate_table(task)
        rng = np.random.default_rng(0)
        index = {s.arch_id: i for i, s in enumerate(specs)}
        encoder = OneHot(table.space)
        x = encoder(specs)
        loc = locality(table.space, specs, vals, index, thr, q4, rng)
        prec = surrogate_precision(x, vals, thr, rng, args.draws)
        ceiling = ceiling_precision(encoder.codes(specs), vals, thr, rng)
        line = (
            f"{task}: {len(specs)} specs, top1 {np.mean(vals >= thr):.4f}; "
            f"P(neighbour in top 1 %) from top 1 % {loc['top 1 %']:.3f}, "
            f"from top 4-1 % {loc['top 4-1 %']:.3f}, from any {loc['any']:.3f}; "
            f"ridge on 100 random: top-100 predictions in top 1 % raw {prec['raw']:.3f}, "
            f"clipped {prec['clipped']:.3f}; "
            f"boosted trees on 4/5 of the table: best 1 % of predictions in top 1 % {ceiling:.3f}"
        )
        if args.runs:
            top4, top1 = concentration(task, q4, thr, args.runs)
            line += f"; predictor evaluations in top 4 %: {top4:.3f}, in top 1 %: {top1:.3f}"
        print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
