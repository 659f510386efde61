"""Train a MaskablePPO agent on a tabular task and compare it with random search.

The agent (sb3-contrib's MaskablePPO) builds an architecture one decision per step in the
sequential environment (``autodlgym/NASBenchGraphCora-Seq-v0``: choose the link pattern, then
the operation of each node); the last decision of an episode is evaluated, a lookup in
NAS-Bench-Graph's table, and rewarded with its validation accuracy. Every evaluation the agent
makes during training counts. Random search gets the same number of evaluations, for several
seeds, through the ordinary runner (the same lookups, recorded in a results store).

Printed: the agent's best-found architecture by validation (with its test accuracy), the
mean validation score of the architectures the trained policy samples, and random search's
best-found at the same budget, all against the table's optimum.

Usage (needs the ``rl`` and ``nasbench`` extras; a minute or two on one CPU core)::

    python examples/ppo_tabular.py [--task nasbench-graph:cora] [--steps 20000] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile

import gymnasium
import numpy as np

import autodlgym  # noqa: F401 - registers the env ids
from autodlgym.envs.registration import env_id
from autodlgym.runner import RunConfig, run_search
from autodlgym.tasks import get_task


class Evaluations(gymnasium.Wrapper):
    """Keeps (val, test, spec) of every architecture the wrapped env evaluated."""

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        self.seen: list[tuple[float, float, str]] = []

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if "status" in info:  # the step that finished an architecture
            val = info["val_score"] if info["status"] == "ok" else float("nan")
            test = info["test_score"] if info["status"] == "ok" else float("nan")
            self.seen.append((val, test, info["spec"].to_json()))
        return obs, reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        return self.env.unwrapped.action_masks()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="nasbench-graph:cora")
    p.add_argument("--steps", type=int, default=20_000, help="environment steps of training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--random-seeds", type=int, default=5)
    args = p.parse_args()

    from sb3_contrib import MaskablePPO

    outcomes = get_task(args.task).lookup().outcomes()
    # report_test: the example prints the test score of the best architecture it found
    env = Evaluations(gymnasium.make(env_id(args.task, sequential=True), report_test=True))
    model = MaskablePPO("MlpPolicy", env, seed=args.seed, n_steps=1024, batch_size=256, verbose=0)
    model.learn(total_timesteps=args.steps)
    evals = len(env.seen)
    vals = np.array([v for v, _, _ in env.seen])
    best = int(np.nanargmax(vals))
    val, test, spec = env.seen[best]

    # the trained policy's own samples (stochastic), scored by the table
    policy_vals = []
    obs, _ = env.reset(seed=args.seed + 1)
    while len(policy_vals) < 200:
        action, _ = model.predict(obs, action_masks=env.action_masks(), deterministic=False)
        obs, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            policy_vals.append(reward)
            obs, _ = env.reset()

    random_best = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in range(args.random_seeds):
            summary = run_search(
                RunConfig(
                    out=f"{tmp}/r{s}", task=args.task, searcher="random", trials=evals, seed=s
                )
            )
            random_best.append(summary.best_val_score)

    print(f"task {args.task}: table optimum val {outcomes.best_val:.4f}")
    print(f"MaskablePPO, {args.steps} env steps = {evals} evaluations:")
    print(f"  best found val {val:.4f} (regret {outcomes.best_val - val:.4f}), its test {test:.4f}")
    print(f"  arch {spec}")
    print(
        f"  trained policy's samples: mean val {np.mean(policy_vals):.4f} over "
        f"{len(policy_vals)} architectures (random draw: "
        f"{float((outcomes.val * outcomes.mass).sum() / outcomes.mass.sum()):.4f})"
    )
    print(
        f"random search, {evals} evaluations, {args.random_seeds} seeds: best val "
        f"{np.mean(random_best):.4f} +- {np.std(random_best, ddof=1):.4f} "
        f"(regret {outcomes.best_val - np.mean(random_best):.4f})"
    )


if __name__ == "__main__":
    main()
