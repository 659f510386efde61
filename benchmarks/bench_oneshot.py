"""Can a one-shot ranking be trusted here? Each one-shot evaluator against stand-alone
training on the 384 architectures of ``mnist1d-table``.

The table (``autodlgym/data/lookup_mnist1d.json``, made by ``make_lookup_table.py``) holds
every architecture of its space trained on its own for 5 epochs on MNIST-1D (seed 0). Each
evaluator (:mod:`autodlgym.oneshot`) covers that same space: it trains its shared weights
once, then scores all 384 specs with inherited weights, as inherited and after ``--finetune``
steps of each network's own optimizer from them (96 distinct networks and training settings:
specs that differ only in their init law share a score). Printed per evaluator, seed and
fine-tuning length: Spearman's rho
and Kendall's tau (``scipy.stats``) of its validation scores against the table's final
validation accuracies, the top-10 overlap (ties in the one-shot scores, e.g. specs that
differ only in their init law, broken by the table's order), the seconds spent (training the
shared weights, scoring) and their ratio to the table's stand-alone seconds; then the
published ranges and two reference points that bound what a scorer blind to the init law
can reach on this table (the table's own means over init laws, per network with and without
the training settings).

Seeds are fixed in advance (``--seeds``, default 0 1 2): one evaluator per seed, and the
figures are reported as mean and range over seeds. This machine is shared and has 2 cores:
seconds are noisy; the correlations are not timed and do not depend on load.

    python benchmarks/bench_oneshot.py                       # both evaluators, seeds 0 1 2
    python benchmarks/bench_oneshot.py --evaluators supernet --seeds 0 --epochs 30 --finetune 0
    python benchmarks/bench_oneshot.py --evaluators supernet --split depth,width  # few-shot

Top-10 overlap counts specs, and specs that differ only in their init law tie in the one-shot
scores (a recurrent block also ignores the activation), so it moves in steps of several.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
from scipy import stats

#: published figures, for comparison (not measured here)
PUBLISHED = [
    (
        "Yu et al., 'Evaluating the Search Phase of NAS', ICLR 2020",
        "weight-sharing vs stand-alone ranking, Kendall tau close to 0 (about -0.2 to 0.2) on "
        "reduced spaces of 32 architectures (PTB RNN cells, NASBench-101 CNNs)",
    ),
    (
        "Zela et al., 'NAS-Bench-1Shot1', ICLR 2020",
        "one-shot vs stand-alone validation error, Spearman mostly between about -0.2 and 0.6 "
        "across its three spaces and over the search epochs (DARTS, GDAS, PC-DARTS, ENAS...)",
    ),
]


def load_table() -> tuple[list[dict], list[float], float]:
    from autodlgym.tasks.tabular import MNIST1D_TABLE

    table = json.loads(MNIST1D_TABLE.read_text())
    rows = [r for r in table["rows"] if r["status"] == "ok" and r["val"]]
    return (
        rows,
        [float(r["val"][-1]) for r in rows],
        float(sum(r["seconds"] for r in table["rows"])),
    )


def top_overlap(scores: list[float], truth: list[float], k: int = 10) -> int:
    """How many of the k best by ``scores`` are among the k best by ``truth`` (stable sorts:
    ties keep the table's order)."""
    by_score = np.argsort(-np.asarray(scores), kind="stable")[:k]
    by_truth = np.argsort(-np.asarray(truth), kind="stable")[:k]
    return len(set(by_score.tolist()) & set(by_truth.tolist()))


def reference_points(rows: list[dict], truth: list[float]) -> dict[str, float]:
    """Spearman of the table against its own means over the decisions a scorer ignores."""
    from autodlgym.oneshot.layout import network_key, partition_key

    def spearman_of(key) -> float:
        groups: dict = {}
        for r, y in zip(rows, truth):
            groups.setdefault(key(r["spec"]), []).append(y)
        means = [statistics.fmean(groups[key(r["spec"])]) for r in rows]
        return float(stats.spearmanr(means, truth).statistic)

    return {
        "network + training settings (init law averaged out)": spearman_of(
            lambda s: (network_key(s).to_json(), partition_key(s))
        ),
        "network only (training settings averaged out)": spearman_of(
            lambda s: network_key(s).to_json()
        ),
    }


def run_one(
    kind: str,
    seed: int,
    epochs: int,
    finetunes: list[int],
    split: tuple[str, ...],
    rows: list[dict],
    truth: list[float],
) -> list[dict]:
    """Fit one evaluator, then score the table's specs once per fine-tuning length."""
    from autodlgym.oneshot import EVALUATORS
    from autodlgym.searchspace.spec import ArchSpec
    from autodlgym.tasks.base import get_task

    space = get_task("mnist1d-table").default_space()
    ev = EVALUATORS[kind](space, "mnist1d", epochs=epochs, seed=seed, split=split)
    t0 = time.perf_counter()
    ev.fit()
    fit_s = time.perf_counter() - t0
    out = []
    for finetune in finetunes:
        ev.finetune = finetune  # scores are cached per fine-tuning length
        t0 = time.perf_counter()
        scored = ev.score_many(ArchSpec(r["spec"]) for r in rows)
        score_s = time.perf_counter() - t0
        outside = [s for s in scored if s.status != "ok"]
        if outside:
            raise SystemExit(f"{len(outside)} table specs are outside: {outside[0].message}")
        values = [s.val_score if np.isfinite(s.val_score) else -1.0 for s in scored]
        out.append(
            {
                "finetune": finetune,
                "spearman": float(stats.spearmanr(values, truth).statistic),
                "kendall": float(stats.kendalltau(values, truth).statistic),
                "top10": top_overlap(values, truth),
                "fit_s": fit_s,
                "score_s": score_s,
                "mean_score": float(np.mean(values)),
                "skipped": sum(ev.skipped_steps.values()),
            }
        )
    return out


def summary(values: list[float], fmt: str = "{:.3f}") -> str:
    mean = fmt.format(statistics.fmean(values))
    if len(values) == 1:
        return mean
    return f"{mean} [{fmt.format(min(values))}, {fmt.format(max(values))}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evaluators", default="supernet,hypernet")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="default: the evaluator's")
    parser.add_argument(
        "--finetune",
        type=int,
        nargs="+",
        default=[0, 28],
        help="steps each scored network trains from its inherited weights (0: none)",
    )
    parser.add_argument(
        "--split", default="", help="stage decisions that do not share weights, e.g. depth"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import torch

    from autodlgym.oneshot import EVALUATORS

    torch.set_num_threads(args.threads)
    rows, truth, standalone_s = load_table()
    print(
        f"mnist1d-table: {len(rows)} architectures trained stand-alone (5 epochs, seed 0), "
        f"{standalone_s:.0f} s of training in all when the table was made"
    )
    print(
        f"seeds {args.seeds}; {args.threads} torch thread(s); shared 2-core machine: seconds are noisy"
    )
    results: dict[str, list[dict]] = {}
    split = tuple(s for s in args.split.split(",") if s)
    shared = f", split by {', '.join(split)}" if split else ""
    for kind in args.evaluators.split(","):
        epochs = args.epochs or EVALUATORS[kind].default_epochs
        for seed in args.seeds:
            for r in run_one(kind, seed, epochs, args.finetune, split, rows, truth):
                name = f"{kind} ({epochs} epochs{shared}, finetune {r['finetune']} steps)"
                results.setdefault(name, []).append(r)
                print(
                    f"  {name} seed {seed}: spearman {r['spearman']:.3f} kendall "
                    f"{r['kendall']:.3f} top-10 {r['top10']}/10, fit {r['fit_s']:.1f} s, score "
                    f"{r['score_s']:.1f} s, mean score {r['mean_score']:.3f}, skipped steps "
                    f"{r['skipped']}",
                    flush=True,
                )
    print("summary: mean [min, max] over seeds")
    for name, runs in results.items():
        cost = [r["fit_s"] + r["score_s"] for r in runs]
        print(
            f"  {name}: spearman {summary([r['spearman'] for r in runs])}, "
            f"kendall {summary([r['kendall'] for r in runs])}, "
            f"top-10 overlap {summary([r['top10'] for r in runs], '{:.1f}')}/10, "
            f"cost {summary(cost, '{:.0f}')} s = "
            f"{summary([c / standalone_s for c in cost], '{:.3f}')} x the table's stand-alone seconds"
        )
    if results:
        best = max(results, key=lambda k: statistics.fmean(r["spearman"] for r in results[k]))
        rho = statistics.fmean(r["spearman"] for r in results[best])
        verdict = "meets" if rho >= 0.6 else "misses"
        print(f"better evaluator: {best}, mean spearman {rho:.3f} ({verdict} the 0.6 target)")
    print("reference points (the table against its own means, no evaluator):")
    for name, rho in reference_points(rows, truth).items():
        print(f"  spearman {rho:.3f}: {name}")
    print("published, for comparison:")
    for source, text in PUBLISHED:
        print(f"  {source}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
