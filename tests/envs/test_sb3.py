"""sb3-contrib's MaskablePPO drives SequentialAutoDLEnv through its action masks."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sb3_contrib")
pytest.importorskip("torch")

from sb3_contrib import MaskablePPO  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402

from autodlgym.envs.sequential_env import SequentialAutoDLEnv  # noqa: E402
from autodlgym.searchspace.space import SearchSpace  # noqa: E402
from autodlgym.searchspace.spec import ArchSpec  # noqa: E402
from autodlgym.trial import Fidelity  # noqa: E402

# Every block, init law and training setting of the default space, at most two narrow stages:
# the masks still differ from decision to decision, and each trial takes well under a second.
SMALL_SPACE = SearchSpace.from_config(
    {
        "base": "default",
        "max_stages": 2,
        "globals": {"n_stages": {"options": [1, 2]}},
        "stage": {"depth": {"options": [1, 2]}, "width": {"options": [8, 16, 32]}},
    }
)


class RecordSteps(BaseCallback):
    """Keeps every (mask, action, info) the rollout collection saw."""

    def __init__(self) -> None:
        super().__init__()
        self.masks: list[np.ndarray] = []
        self.actions: list[int] = []
        self.infos: list[dict] = []

    def _on_step(self) -> bool:
        self.masks.append(np.array(self.locals["action_masks"][0]))
        self.actions.append(int(self.locals["actions"][0]))
        self.infos.append(self.locals["infos"][0])
        return True


def test_maskable_ppo_only_takes_legal_actions_and_builds_specs_in_the_space():
    env = SequentialAutoDLEnv(
        "digits", space=SMALL_SPACE, fidelity=Fidelity(epochs=1, max_train_samples=64)
    )
    model = MaskablePPO(
        "MlpPolicy", env, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu"
    )
    record = RecordSteps()
    model.learn(total_timesteps=64, callback=record)

    assert len(record.actions) == 64
    for mask, action, info in zip(record.masks, record.actions, record.infos):
        assert mask[action], "the policy chose a masked action"
        assert info["invalid_action"] is False
    finished = [info for info in record.infos if "spec" in info]
    assert finished, "no episode finished within 64 steps"
    for info in finished:
        assert isinstance(info["spec"], ArchSpec) and env.space.contains(info["spec"])
        assert info["status"] in ("ok", "error", "nan", "timeout", "over_budget")
        assert "result" not in info and "test_score" not in info  # validation only
    # the space's masks differ between decisions, so this run did exercise masking
    assert len({int(m.sum()) for m in record.masks}) > 1


@pytest.mark.parametrize(
    "env_id", ["autodlgym/NASBenchGraphCora-Search-v0", "autodlgym/NASBenchGraphCora-v0"]
)
def test_sb3_checker_passes_on_the_search_and_whole_envs(env_id):
    import gymnasium
    from stable_baselines3.common.env_checker import check_env

    import autodlgym  # noqa: F401 - registers the ids

    env = gymnasium.make(env_id, budget=4).unwrapped
    check_env(env, warn=True)
    env.close()
