"""Train the reference learned searcher on one fold of ``nbgraph-loo`` and judge it on the
held-out table beside random search and evolution.

The policy (a GRU over the search history, REINFORCE; see docs/rl.md) trains on 8
NAS-Bench-Graph tables and never sees the 9th; it is then run as a searcher
(``--searcher rl:PATH``) on that table, 100 evaluations per search, and the figures are those
of ``autodlgym bench``. A few minutes on one CPU core with the defaults below.

    python examples/rl_learned_searcher.py [--fold cora] [--seconds 120] [--seeds 10]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from autodlgym.analysis.bench import format_report
from autodlgym.rl import evaluate, suites, train_searcher
from autodlgym.searchers.learned import save_policy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fold", default="cora", help="the held-out table (a fold of nbgraph-loo)")
    p.add_argument("--seconds", type=float, default=120.0, help="training time at most")
    p.add_argument("--seeds", type=int, default=10, help="test searches per method")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    args = p.parse_args()

    fold = suites.get("nbgraph-loo").fold(args.fold)
    policy = train_searcher(
        list(fold.train), batch=32, iterations=10_000, seconds=args.seconds, lr=1e-2, seed=args.seed
    )
    out = Path(tempfile.mkdtemp(prefix="rl-example-"))
    path = save_policy(policy, out / f"policy-{fold.name}.pt")
    print(f"trained on {', '.join(fold.train)}; policy in {path}")
    print(f"run it on any task: autodlgym search --task {fold.test[0]} --searcher rl:{path}")
    result = evaluate(
        {fold.name: f"rl:{path}"},
        "nbgraph-loo",
        folds=[fold.name],
        seeds=args.seeds,
        baselines=["random", "evolution"],
        name="learned",
        out=out,
        first_seed=1000,
    )
    print(format_report(result))


if __name__ == "__main__":
    main()
