"""benchmarks/bench_landscape.py: its enumeration and figures against direct computations."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from autodlgym.searchers.predictor import OneHot

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_landscape.py"


@pytest.fixture(scope="module")
def landscape():
    spec = importlib.util.spec_from_file_location("bench_landscape", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mnist1d(landscape):
    return landscape.enumerate_table("mnist1d-table")


def test_enumerates_every_spec_once_with_its_lookup(mnist1d):
    table, specs, vals, thr, q4 = mnist1d
    assert len(specs) == table.space.cardinality()
    assert len({s.arch_id for s in specs}) == len(specs)
    for spec, v in zip(specs[::37], vals[::37]):
        assert v == table.objective_function(spec).val_score
    outcomes = table.outcomes()
    assert thr == outcomes.top_threshold(0.01) and q4 == outcomes.top_threshold(0.04)
    assert np.nanmax(vals) == outcomes.best_val


def test_locality_of_the_top_matches_a_direct_count(landscape, mnist1d):
    table, specs, vals, thr, q4 = mnist1d
    index = {s.arch_id: i for i, s in enumerate(specs)}
    loc = landscape.locality(table.space, specs, vals, index, thr, q4, np.random.default_rng(0))
    # every top-1 % spec is taken (fewer than the 300 per class); its neighbours are exact
    # (no decision of this space is switched on by a one-step change that has options to draw)
    direct = []
    for i in np.flatnonzero(vals >= thr):
        nv = np.array([vals[index[n.arch_id]] for n in table.space.neighbours(specs[i], 0)])
        direct.append(np.mean(nv[np.isfinite(nv)] >= thr))
    assert loc["top 1 %"] == pytest.approx(np.mean(direct))
    assert 0.0 <= loc["any"] <= 1.0


def test_a_surrogate_fitted_on_the_scores_themselves_points_at_the_top(landscape, mnist1d):
    table, specs, vals, thr, q4 = mnist1d
    # with the score as its only feature, ridge ranks exactly by score: its top predictions
    # are the table's top, so precision is the top's share among the 100 best of the rest
    x = np.nan_to_num(vals, nan=0.0)[:, None]
    prec = landscape.surrogate_precision(x, vals, thr, np.random.default_rng(0), draws=3, top=1)
    assert prec["raw"] == 1.0 and prec["clipped"] == 1.0


def test_the_boosted_ceiling_finds_a_top_that_one_decision_decides(landscape, mnist1d):
    table, specs, vals, thr, q4 = mnist1d
    first = table.space.choices[0]
    # the "top" is every spec whose first decision takes its first option; some specs fail
    scores = np.array([1.0 if s[first.name] == first.options[0] else 0.0 for s in specs])
    scores[::50] = np.nan
    codes = OneHot(table.space).codes(specs)
    ceiling = landscape.ceiling_precision(
        codes, scores, 1.0, np.random.default_rng(0), iterations=50
    )
    assert ceiling == 1.0
    # and a top the decisions do not decide is found no better than its share, on average
    rng = np.random.default_rng(1)
    noise = rng.random(len(specs))
    shares = [
        landscape.ceiling_precision(codes, rng.permutation(noise), 0.5, rng, iterations=50)
        for _ in range(20)
    ]
    assert 0.2 < np.mean(shares) < 0.8
