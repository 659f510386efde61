"""Train Stable-Baselines3's PPO on search episodes of a fold's training tables and judge it on
the held-out table with the protocol's figures.

The env is ``autodlgym.rl.suites.train_env``: each episode is one search of 100 evaluations on
a training table drawn for it; the observation is the search's history, the reward the rise
of the best score's quantile in the table (``reward="rank"``). The trained model is then run
on the held-out table by :func:`autodlgym.rl.evaluate` beside random search. Swap in
sb3-contrib's ``RecurrentPPO("MlpLstmPolicy", ...)`` for a recurrent agent: ``evaluate``
carries its state through a search.

    pip install "autodlgym[rl]"
    python examples/rl_sb3_search_env.py [--fold cora] [--steps 20000] [--seeds 10]
"""

from __future__ import annotations

import argparse

from autodlgym.analysis.bench import format_report
from autodlgym.rl import evaluate, suites


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fold", default="cora")
    p.add_argument("--steps", type=int, default=20_000, help="environment steps of training")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    from stable_baselines3 import PPO

    fold = suites.get("nbgraph-loo").fold(args.fold)
    env = suites.train_env(fold, num_envs=1, budget=100, reward="rank").envs[0]
    model = PPO("MlpPolicy", env, n_steps=500, batch_size=100, seed=args.seed, device="cpu")
    model.learn(total_timesteps=args.steps)
    result = evaluate(
        {fold.name: model},
        "nbgraph-loo",
        folds=[fold.name],
        seeds=args.seeds,
        name="ppo",
        first_seed=1000,
    )
    print(format_report(result))


if __name__ == "__main__":
    main()
