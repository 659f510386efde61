"""Train sb3-contrib's MaskablePPO to design networks one decision at a time.

The agent acts in ``SequentialAutoDLEnv``: each step picks the option of one decision of the
search space, with the env's action masks hiding options that do not exist for that decision.
The finished architecture is trained briefly on the task and its validation accuracy is the
episode's reward. At the end the best architecture found is printed.

    pip install "autodlgym[rl]"
    python examples/sb3_maskable_ppo.py --steps 400 --task digits

On two CPU cores 300 steps (about a dozen architectures) take a few minutes; most of it is
scoring the larger candidates. ``--device cuda`` trains them on a GPU.
"""

from __future__ import annotations

import argparse

from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback

from autodlgym import Fidelity
from autodlgym.envs.sequential_env import SequentialAutoDLEnv
from autodlgym.execution.local import LocalExecutor


class BestSpec(BaseCallback):
    """Remembers the best evaluated architecture of the run."""

    def __init__(self) -> None:
        super().__init__()
        self.best_reward = float("-inf")
        self.best_info: dict | None = None
        self.episodes = 0

    def _on_step(self) -> bool:
        for info, reward in zip(self.locals["infos"], self.locals["rewards"]):
            if "status" in info:  # the step that finished an architecture
                self.episodes += 1
                if reward > self.best_reward:
                    self.best_reward, self.best_info = float(reward), info
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="digits", help="a built-in task name")
    parser.add_argument("--steps", type=int, default=400, help="decisions to take in total")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs per candidate")
    parser.add_argument("--samples", type=int, default=512, help="training examples per candidate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="where candidates train: cpu, cuda, ...")
    args = parser.parse_args()

    env = SequentialAutoDLEnv(
        args.task,
        fidelity=Fidelity(epochs=args.epochs, max_train_samples=args.samples),
        executor=LocalExecutor(args.device),
    )
    model = MaskablePPO(
        "MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=4, seed=args.seed, device="cpu"
    )
    best = BestSpec()
    model.learn(total_timesteps=args.steps, callback=best)
    env.close()

    print(f"{best.episodes} architectures evaluated")
    if best.best_info is None:
        print("no architecture was evaluated; raise --steps")
        return
    info = best.best_info
    print(
        f"best reward {best.best_reward:.4f}: status {info['status']}, "
        f"val_score {info.get('val_score')}, {info.get('params')} parameters"
    )
    for name, value in sorted(info["spec"].items()):
        print(f"  {name:<24} {value}")


if __name__ == "__main__":
    main()
