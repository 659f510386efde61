"""The REINFORCE agent: masked rollouts one decision per step, learning, determinism,
resume."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autodlgym.errors import AutoDLError
from autodlgym.searchers.base import make_searcher
from autodlgym.searchers.reinforce import POLICIES, ReinforceSearcher
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import TrialResult

DEFAULT = SearchSpace.default()
#: one stage only, so "stage1.block" is the second decision of every episode
ONE_STAGE = SearchSpace.from_config({"base": "default", "max_stages": 1})
#: several decisions with a single option: forced steps the policy does not play
NARROW = SearchSpace.from_config(
    {
        "base": "default",
        "max_stages": 2,
        "remove": ["momentum"],
        "globals": {"optimizer": {"options": ["adam"]}, "dropout": {"options": [0.0]}},
        "stage": {"depth": {"options": [2]}, "block": {"options": ["conv", "mlp"]}},
    }
)


def ok(score: float) -> TrialResult:
    return TrialResult("ok", val_score=score)


def conv_reward(spec: ArchSpec) -> float:
    return 1.0 if spec["stage1.block"] == "conv" else 0.0


@settings(max_examples=8)
@given(seed=st.integers(0, 2**32 - 1), narrow=st.booleans(), policy=st.sampled_from(POLICIES))
def test_rollouts_respect_the_masks_and_record_the_spec(seed: int, narrow: bool, policy: str):
    space = NARROW if narrow else DEFAULT
    agent = ReinforceSearcher(space, seed=seed, policy=policy)
    specs = agent.ask(4)
    for spec in specs:
        space.validate(spec)
        positions, packed, actions = agent.pending[spec.arch_id][0]
        masks = np.unpackbits(packed, axis=1, count=space.max_options).astype(bool)
        # forced decisions (one valid option) are played without the policy
        decisions = [d for d in space.decisions(spec) if d.mask.sum() > 1]
        assert decisions
        assert list(positions) == [d.position for d in decisions]
        assert list(actions) == [d.choice.index(spec[d.choice.name]) for d in decisions]
        assert all(m[a] for m, a in zip(masks, actions))
        assert all((m == d.mask).all() for m, d in zip(masks, decisions))


@pytest.mark.parametrize("policy", POLICIES)
def test_learns_to_prefer_a_rewarded_block(policy):
    agent = ReinforceSearcher(ONE_STAGE, seed=0, policy=policy)
    before = agent.probabilities({"n_stages": 1})["conv"]
    hits = []
    for _ in range(25):
        specs = agent.ask(8)
        for spec in specs:
            hits.append(conv_reward(spec))
            agent.tell(spec, ok(conv_reward(spec)))
    after = agent.probabilities({"n_stages": 1})["conv"]
    assert agent.n_updates == 200
    assert before < 0.2 and after > 0.6, (before, after)
    assert np.mean(hits[-50:]) > np.mean(hits[:50]) + 0.3


def test_same_seed_same_asks_and_torch_global_rng_untouched():
    state = torch.random.get_rng_state()
    runs = []
    for _ in range(2):
        agent = ReinforceSearcher(DEFAULT, seed=11)
        asked = []
        for _ in range(3):
            specs = agent.ask(3)
            asked += specs
            for spec in specs:
                agent.tell(spec, ok(spec["n_stages"] / 4))
        runs.append(asked)
    assert runs[0] == runs[1]
    assert ReinforceSearcher(DEFAULT, seed=12).ask(3) != runs[0][:3]
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("policy", POLICIES)
def test_state_round_trip_continues_identically(policy):
    agent = ReinforceSearcher(ONE_STAGE, seed=3, policy=policy)
    for _ in range(4):
        for spec in agent.ask(3):
            agent.tell(spec, ok(conv_reward(spec)))
    pending = agent.ask(3)  # asked before the save, told after the resume
    saved = pickle.loads(pickle.dumps(agent.state_dict()))
    assert {"policy", "optimizer", "baseline", "pending"} <= set(saved)
    resumed = ReinforceSearcher(ONE_STAGE, seed=77, policy=policy)
    resumed.load_state_dict(saved)
    for a in (agent, resumed):
        for spec in reversed(pending):
            a.tell(spec, ok(conv_reward(spec)))
    for _ in range(3):
        x, y = agent.ask(2), resumed.ask(2)
        assert x == y
        for s in x:
            agent.tell(s, ok(conv_reward(s)))
            resumed.tell(s, ok(conv_reward(s)))
    assert agent.baseline == resumed.baseline
    assert agent.probabilities({"n_stages": 1}) == resumed.probabilities({"n_stages": 1})


@pytest.mark.parametrize("policy", POLICIES)
def test_saved_state_does_not_follow_later_updates(policy):
    agent = ReinforceSearcher(ONE_STAGE, seed=4, policy=policy)
    (spec,) = agent.ask(1)
    saved = agent.state_dict()
    weights = {k: torch.as_tensor(v).clone() for k, v in saved["policy"].items()}
    agent.tell(spec, ok(1.0))
    (spec,) = agent.ask(1)
    agent.tell(spec, ok(0.0))
    assert all(torch.equal(weights[k], torch.as_tensor(v)) for k, v in saved["policy"].items())


def test_factorised_gradient_matches_autograd():
    """The numpy policy's hand-written gradient equals torch autograd's on the same loss."""
    from autodlgym.searchers.reinforce import FactorisedPolicy

    policy = FactorisedPolicy(3, 4)
    policy.logits = np.random.default_rng(0).normal(size=(3, 4))
    positions, widths, actions = np.array([0, 2]), np.array([4, 3]), np.array([1, 2])
    z = torch.tensor(policy.logits, requires_grad=True)
    loss = 0
    for pos, k, a in zip(positions, widths, actions):
        logp = torch.log_softmax(z[pos, :k], -1)
        loss = loss - 0.7 * logp[a] - 0.01 * -(logp.exp() * logp).sum()
    loss.backward()
    before = policy.logits.copy()
    # Adam's first step moves every coordinate by lr * sign(grad): compare the signs
    policy.update(positions, widths, actions, advantage=0.7, entropy=0.01, lr=1e-3)
    moved = before - policy.logits
    grad = z.grad.numpy()
    nonzero = np.abs(grad) > 1e-12
    assert np.array_equal(np.sign(moved[nonzero]), np.sign(grad[nonzero]))
    assert np.allclose(moved[~nonzero], 0.0)


def test_baseline_failures_and_foreign_specs():
    agent = ReinforceSearcher(DEFAULT, seed=5, decay=0.5, failure_reward=-1.0)
    a, b, c = agent.ask(3)
    assert sum(len(q) for q in agent.pending.values()) == 3
    agent.tell(a, ok(0.6))
    assert agent.baseline == 0.6  # the first reward sets the baseline
    agent.tell(b, TrialResult.failure("nan", "loss became nan"))
    assert agent.baseline == pytest.approx(0.5 * 0.6 + 0.5 * -1.0)
    agent.tell(c, TrialResult("pruned", val_score=0.2))
    assert agent.baseline == pytest.approx(0.5 * -0.2 + 0.5 * 0.2)
    assert agent.n_updates == 3 and not agent.pending
    # a spec the agent did not propose (or told twice) teaches nothing
    agent.tell(DEFAULT.sample(0), ok(1.0))
    agent.tell(a, ok(1.0))
    assert agent.n_updates == 3


@pytest.mark.parametrize(
    "options",
    [
        {"lr": 0},
        {"decay": 1.0},
        {"entropy": -1},
        {"hidden": 0},
        {"momentum": 0.9},
        {"policy": "lstm"},
        {"reward": "regret"},
        {"avoid_duplicates": "sometimes"},
    ],
)
def test_bad_options_are_user_errors(options):
    with pytest.raises(AutoDLError):
        make_searcher("reinforce", DEFAULT, **options)


def test_asking_loads_no_task_data(monkeypatch):
    from autodlgym.tasks import Task

    def refuse(self):
        raise AssertionError(f"task {self.name} was loaded")

    monkeypatch.setattr(Task, "load", refuse)
    agent = make_searcher("reinforce", DEFAULT, seed=0)
    (spec,) = agent.ask(1)
    agent.tell(spec, ok(0.5))
    assert agent.n_updates == 1


def test_defaults_are_the_measured_setting():
    agent = make_searcher("reinforce", DEFAULT, seed=0)
    assert (agent.lr, agent.avoid_duplicates, agent.reward_kind) == (0.15, True, "score")
    old = make_searcher("reinforce", DEFAULT, seed=0, lr=0.05, avoid_duplicates=False)
    assert (old.lr, old.avoid_duplicates) == (0.05, False)


def _concentrated(avoid_duplicates: bool) -> ReinforceSearcher:
    """A factorised agent on ONE_STAGE whose policy puts most of its mass on one spec."""
    agent = ReinforceSearcher(ONE_STAGE, seed=1, avoid_duplicates=avoid_duplicates)
    agent.policy.logits[:, 0] = 5.0  # 0.98-0.99 on the first option of every decision
    return agent


def test_avoid_duplicates_plays_a_repeat_again():
    repeated = _concentrated(False)
    plain = [repeated.ask(1)[0].arch_id for _ in range(12)]
    assert len(set(plain)) < len(plain)  # the concentrated policy repeats itself
    novel = _concentrated(True)
    ids = [novel.ask(1)[0].arch_id for _ in range(12)]
    assert len(set(ids)) == len(ids)
    # a repeat is not learnt from and leaves no episode behind
    assert novel.n_updates == 0 and sum(len(q) for q in novel.pending.values()) == 12


def test_a_discarded_spec_may_be_proposed_again():
    agent = _concentrated(True)
    (spec,) = agent.ask(1)
    agent.discard(spec)
    assert spec.arch_id not in agent.proposed and not agent.pending
    saved = agent.state_dict()
    agent.ask(3)
    resumed = ReinforceSearcher(ONE_STAGE, seed=9)
    resumed.load_state_dict(saved)
    assert resumed.proposed == set() and resumed.avoid_duplicates


def test_rank_reward_ranks_each_score_among_those_told_before():
    agent = ReinforceSearcher(DEFAULT, seed=5, decay=0.5, reward="rank", failure_reward=5.0)
    a, b, c, d = agent.ask(4)
    agent.tell(a, ok(0.5))
    assert agent.baseline == 0.5  # the first score: rank 0.5
    agent.tell(b, ok(0.7))  # beats 1 of 1: rank 1
    assert agent.baseline == pytest.approx(0.75)
    agent.tell(c, ok(0.6))  # beats 1 of 2: rank 0.5
    assert agent.baseline == pytest.approx(0.625)
    # a failure ranks below every score, whatever failure_reward says
    agent.tell(d, TrialResult.failure("nan", "loss became nan"))
    assert agent.baseline == pytest.approx(0.3125)
    assert agent.n_updates == 4


def test_rank_reward_does_not_depend_on_the_score_scale():
    runs = []
    for scale, shift in ((1.0, 0.0), (100.0, -3.0)):
        agent = ReinforceSearcher(ONE_STAGE, seed=2, reward="rank")
        asked = []
        for _ in range(5):
            for spec in agent.ask(3):
                asked.append(spec)
                agent.tell(spec, ok(scale * (conv_reward(spec) + 0.1 * spec["n_stages"]) + shift))
        runs.append((asked, agent.policy.logits.copy()))
    assert runs[0][0] == runs[1][0]
    assert np.allclose(runs[0][1], runs[1][1])


def test_old_states_keep_the_old_behaviour():
    agent = ReinforceSearcher(ONE_STAGE, seed=3)
    saved = agent.state_dict()
    for key in ("avoid_duplicates", "reward_kind", "proposed", "rewards"):
        saved.pop(key)
    resumed = ReinforceSearcher(ONE_STAGE, seed=3, reward="rank")
    resumed.load_state_dict(saved)
    assert resumed.avoid_duplicates is False and resumed.reward_kind == "score"
