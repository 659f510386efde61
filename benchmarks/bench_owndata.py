"""A new user's data against the yardsticks: search test score vs scikit-learn baselines.

scikit-learn's bundled data sets are written as a user would bring them: breast_cancer, wine
and diabetes as CSVs with an ``id`` column, a text label (classification) and 5 % of the
feature cells emptied at random (seed 0); digits as a folder of 8x8 gray PNGs, one sub-folder
per class (``images:``, resized to 32x32). Each is searched with ``--time-budget`` (default
2 minutes, the issue's target) for the seeds stated in advance (0, 1, 2), with the defaults a
new user gets (random search, ASHA, baselines and final selection as they default), and the
recorded scikit-learn baselines (HistGradientBoosting and LogisticRegression / Ridge on the
same split and inputs; a flattened LogisticRegression for images) are read back from the run.

Printed per data set: the search's test score (the run's answer) as median [min, max] over
seeds, each baseline's test score (median), the search minus the better baseline (median of
the per-seed differences; the target is >= -0.01), trials, trials ended ``timeout`` without a
score, and seconds. ``--hog N`` runs N busy loops beside the searches (the busy-machine
target). The machine's load changes these figures: run it on an idle machine to compare.

Usage::

    python benchmarks/bench_owndata.py [--budget 120] [--seeds 0,1,2] [--only wine,digits] [--hog 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATASETS = ("breast_cancer", "wine", "diabetes", "digits")


def write_table(name: str, folder: Path) -> Path:
    """A scikit-learn data set as a CSV: an id column, a text label, 5 % of cells missing."""
    from sklearn import datasets

    d = getattr(datasets, f"load_{name}")(as_frame=True)
    df = d.frame.copy()
    rng = np.random.default_rng(0)
    features = [c for c in df.columns if c != "target"]
    for col in features:
        df[col] = df[col].astype("float64")
        df.loc[rng.random(len(df)) < 0.05, col] = np.nan
    if name != "diabetes":  # classification: class names, not integers
        names = list(getattr(d, "target_names", []))
        df["target"] = [str(names[int(v)]) if names else f"class_{int(v)}" for v in df["target"]]
    df.insert(0, "id", np.arange(10_000, 10_000 + len(df)))
    path = folder / f"{name}.csv"
    df.to_csv(path, index=False)
    return path


def write_digits(folder: Path) -> Path:
    """scikit-learn's digits as one folder of 8x8 gray PNGs per class."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    root = folder / "digits"
    for i, (img, label) in enumerate(zip(d.images, d.target)):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        pixels = (img / 16.0 * 255).astype(np.uint8)
        Image.fromarray(pixels, "L").save(root / str(label) / f"{i}.png")
    return root


def _hog() -> None:  # a busy loop on one core
    while True:
        pass


def run_one(task: str, options: dict, out: Path, budget: float, seed: int) -> dict:
    from autodlgym import Run, RunConfig, load_results, run_search

    start = time.perf_counter()
    summary = run_search(
        RunConfig(out=str(out), task=task, task_kwargs=options, time_budget=budget, trials=None,
                  seed=seed),
        progress=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    df = load_results(out)
    search = df[df["phase"] == "search"]
    with Run.open(out) as run:
        base = run.baselines()
        answer = run.answer()
    test = summary.best_test_score
    if test is None and answer is not None:
        test = float(df.set_index("trial_id").loc[answer, "test_score"])
    return {
        "test": test,
        "val": summary.best_val_score,
        "baselines": {r.baseline: r.test_score for r in base.itertuples()},
        "trials": len(search),
        "bare_timeouts": int(((search.status == "timeout") & search.val_score.isna()).sum()),
        "seconds": seconds,
        "final": summary.final_note,
    }


def _fmt(x: float | None) -> str:
    return "  -  " if x is None or x != x else f"{x:.3f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=120.0, help="--time-budget seconds")
    p.add_argument("--seeds", default="0,1,2", help="seeds, stated in advance")
    p.add_argument("--only", default=",".join(DATASETS), help="data sets to run")
    p.add_argument("--hog", type=int, default=0, help="busy loops beside the searches")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    names = [n for n in args.only.split(",") if n]
    hogs = [mp.Process(target=_hog, daemon=True) for _ in range(args.hog)]
    for h in hogs:
        h.start()
    print(
        f"bench_owndata: --time-budget {args.budget:g}s, seeds {seeds}, {args.hog} busy loops; "
        "test scores (accuracy, R^2 for diabetes)"
    )
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for name in names:
                if name == "digits":
                    task, options = f"images:{write_digits(folder)}", {}
                else:
                    task, options = f"csv:{write_table(name, folder)}", {"target": "target"}
                results = []
                for seed in seeds:
                    r = run_one(task, options, folder / f"run-{name}-{seed}", args.budget, seed)
                    results.append(r)
                    print(
                        f"  {name} seed {seed}: search test {_fmt(r['test'])} (val "
                        f"{_fmt(r['val'])}), baselines "
                        + ", ".join(f"{k} {_fmt(v)}" for k, v in r["baselines"].items())
                        + f"; {r['trials']} trials, {r['bare_timeouts']} bare timeouts, "
                        f"{r['seconds']:.0f} s",
                        flush=True,
                    )
                rows.append((name, results))
    finally:
        for h in hogs:
            h.kill()
    print()
    header = (
        f"{'data set':<14} {'search test':<22} {'HGB':>6} {'linear':>7} "
        f"{'search-best':>12} {'trials':>7} {'bare t/o':>9}"
    )
    print(header)
    for name, results in rows:
        tests = [r["test"] for r in results if r["test"] is not None]
        med = statistics.median(tests) if tests else None
        span = f"[{_fmt(min(tests))}, {_fmt(max(tests))}]" if tests else ""
        hgb = [r["baselines"].get("hist_gradient_boosting") for r in results]
        lin = [
            r["baselines"].get("logistic_regression", r["baselines"].get("ridge")) for r in results
        ]
        hgb = [v for v in hgb if v is not None]
        lin = [v for v in lin if v is not None]
        diffs = [
            r["test"] - max(v for v in r["baselines"].values() if v is not None)
            for r in results
            if r["test"] is not None and any(v is not None for v in r["baselines"].values())
        ]
        print(
            f"{name:<14} {_fmt(med):>6} {span:<15} "
            f"{_fmt(statistics.median(hgb) if hgb else None):>6} "
            f"{_fmt(statistics.median(lin) if lin else None):>7} "
            f"{(f'{statistics.median(diffs):+.3f}' if diffs else '-'):>12} "
            f"{statistics.median([r['trials'] for r in results]):>7g} "
            f"{sum(r['bare_timeouts'] for r in results):>9}"
        )
    print("target: search-best >= -0.010 on each (median over seeds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
