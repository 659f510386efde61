"""A REINFORCE agent that builds a spec one decision per step (the REINFORCE baseline of
NAS-Bench-201, after Williams 1992 and Zoph & Le 2017).

Two policies (option ``policy``):

- ``factorised`` (default): one independent softmax per decision, in numpy
  (:class:`FactorisedPolicy`), as in NAS-Bench-201's REINFORCE baseline. An ask+tell costs
  tens of microseconds, and with few parameters it learns within the ~100 evaluations of a
  small budget (Adam, lr 0.15). It samples the same decisions, in the same order, with the same
  masks as :class:`~autodlgym.searchspace.sequential.DecisionSequence`, without stepping
  through one.
- ``gru``: the autoregressive controller below (lr 0.003), which can learn interactions
  between decisions but costs tens of milliseconds per ask+tell in torch.

The GRU policy is a small autoregressive controller: at each step a GRU cell reads the embedding of
the previous action plus the embedding of the current decision's position in the space, and a
linear head gives logits over ``space.max_options`` slots; slots the decision's mask rules out
get probability zero. Decisions with a single valid option are played without consulting the
policy (they carry no choice, and skipping them keeps the controller's sequence short in
narrowed spaces). Episodes step through a
:class:`~autodlgym.searchspace.sequential.DecisionSequence` (the decisions, order and masks of
:class:`~autodlgym.envs.sequential_env.SequentialAutoDLEnv`); the finished spec is what the
runner evaluates and tells back.

Learning, one Adam step per ``tell`` (tells of a parallel batch arrive one by one, in any
order)::

    reward    = val_score  (ok or pruned trials; failures get ``failure_reward``, default 0)
                or, with ``reward="rank"``, its rank among the values told before (failures last)
    advantage = reward - baseline            # baseline before this tell; the first tell sets it
    loss      = -advantage * sum_t log pi(a_t) - entropy * sum_t H(pi_t)
    baseline  = decay * baseline + (1 - decay) * reward

The log-probabilities are recomputed under the current policy from the remembered positions,
masks and actions of the episode (arch_id -> FIFO of episodes, so the same spec asked twice is
matched in order). Tells for specs this agent did not propose are ignored: the gradient estimate
is only valid for its own samples. With ``avoid_duplicates`` (the default) an episode whose
spec this agent already proposed is played again (no update), up to ``NOVELTY_TRIES`` times.

torch is imported lazily; sampling uses a ``torch.Generator`` seeded from ``self.rng`` and the
policy's initial weights come from a forked, seeded torch RNG, so torch's global state is never
touched and the same seed gives the same asks.
"""

from __future__ import annotations

import io
import math
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autodlgym.errors import AutoDLError
from autodlgym.searchers.base import Searcher, register_searcher
from autodlgym.searchspace.sequential import DecisionSequence
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import OK, PRUNED, TrialResult
from autodlgym.utils import as_bool

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: episodes played again when ``avoid_duplicates`` meets a spec already proposed
NOVELTY_TRIES = 10
#: remembered episodes beyond this many are dropped oldest first (trials that are never told)
_MAX_PENDING = 100_000


def _build_policy(n_positions: int, n_options: int, hidden: int):
    """The controller: a GRU over (previous action, decision position) embeddings."""
    import torch
    from torch import nn

    class Controller(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # slot 0 of the action embedding is the start token
            self.action_emb = nn.Embedding(n_options + 1, hidden)
            self.position_emb = nn.Embedding(n_positions, hidden)
            self.gru = nn.GRU(hidden, hidden, batch_first=True)
            self.head = nn.Linear(hidden, n_options)

        def step(
            self, h: torch.Tensor | None, prev_action: int, position: int, mask: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            """One decision while acting: new hidden state and masked logits (-inf where the
            mask rules a slot out)."""
            x = (self.action_emb.weight[prev_action + 1] + self.position_emb.weight[position])[None]
            if h is None:
                h = x.new_zeros(x.shape)
            # the GRU's own weights, one step, without nn.GRU's per-call checks (acting is
            # the hot loop of a tabular benchmark)
            g = self.gru
            h = torch.gru_cell(x, h, g.weight_ih_l0, g.weight_hh_l0, g.bias_ih_l0, g.bias_hh_l0)
            logits = torch.nn.functional.linear(h[0], self.head.weight, self.head.bias)
            return h, logits.masked_fill(~mask, float("-inf"))

        def forward(
            self, actions: torch.Tensor, positions: torch.Tensor, masks: torch.Tensor
        ) -> torch.Tensor:
            """Masked logits of a whole episode at once (teacher forcing), shape (T, options)."""
            prev = torch.cat([actions.new_full((1,), -1), actions[:-1]])
            x = self.action_emb(prev + 1) + self.position_emb(positions)
            out, _ = self.gru(x.unsqueeze(0))
            return self.head(out[0]).masked_fill(~masks, float("-inf"))

    return Controller()


POLICIES = ("factorised", "gru")
#: ``reward`` options: the raw validation score, or its rank among the scores told so far
REWARDS = ("score", "rank")
#: Adam learning rate per policy: the factorised policy's logits move by about lr per update,
#: so it needs a larger step than the controller's many weights to learn within ~100 tells
DEFAULT_LR = {"factorised": 0.15, "gru": 0.003}


class FactorisedPolicy:
    """One independent softmax per decision (logits indexed by the decision's position), in
    numpy, with its own Adam moments. Conditional decisions are sampled only when active, so
    the distribution over specs is the product over the decisions an episode makes.

    An ask+tell costs tens of microseconds: no torch; the decisions, masks and order are those
    of a :class:`~autodlgym.searchspace.sequential.DecisionSequence`
    (:meth:`SearchSpace.next_decision`).
    """

    def __init__(self, n_positions: int, n_options: int) -> None:
        self.logits = np.zeros((n_positions, n_options))
        self.m = np.zeros_like(self.logits)
        self.v = np.zeros_like(self.logits)
        self.t = 0

    def probs(self, position: int, k: int) -> np.ndarray:
        z = self.logits[position, :k]
        e = np.exp(z - z.max())
        return e / e.sum()

    def rollout(
        self, space: SearchSpace, rng: np.random.Generator
    ) -> tuple[ArchSpec, tuple[np.ndarray, ...]]:
        values: dict[str, Any] = {}
        positions, actions = [], []
        for position, c in enumerate(space.choices):
            if not space.is_active(c, values):
                continue
            k = len(c.options)
            if k == 1:  # a forced decision: nothing to learn, the policy skips it
                values[c.name] = c.options[0]
                continue
            cdf = np.cumsum(self.probs(position, k))
            a = min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), k - 1)
            values[c.name] = c.options[a]
            positions.append(position)
            actions.append(a)
        masks = np.zeros((len(positions), space.max_options), dtype=bool)
        for row, position in enumerate(positions):
            masks[row, : len(space.choices[position].options)] = True
        episode = (
            np.asarray(positions, dtype=np.int64),
            np.packbits(masks, axis=1),
            np.asarray(actions, dtype=np.int64),
        )
        return ArchSpec(values), episode

    def update(
        self,
        positions: np.ndarray,
        widths: np.ndarray,
        actions: np.ndarray,
        advantage: float,
        entropy: float,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        """One Adam step on ``-advantage * sum log pi(a) - entropy * sum H(pi)`` over an
        episode's decisions (``widths``: each decision's number of options)."""
        grad = np.zeros_like(self.logits)
        for position, k, a in zip(positions, widths, actions):
            k = int(k)
            p = self.probs(int(position), k)
            g = advantage * p  # d(-adv * log p_a)/dz = adv * (p - onehot(a))
            g[a] -= advantage
            logp = np.log(np.maximum(p, 1e-300))
            h = -(p * logp).sum()
            g += entropy * p * (logp + h)  # d(-entropy * H)/dz
            grad[position, :k] += g
        self.t += 1
        b1, b2 = betas
        self.m = b1 * self.m + (1 - b1) * grad
        self.v = b2 * self.v + (1 - b2) * grad * grad
        m_hat = self.m / (1 - b1**self.t)
        v_hat = self.v / (1 - b2**self.t)
        self.logits -= lr * m_hat / (np.sqrt(v_hat) + eps)

    def state_dict(self) -> dict[str, Any]:
        return {"logits": self.logits.copy(), "m": self.m.copy(), "v": self.v.copy(), "t": self.t}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.logits = np.array(state["logits"])
        self.m, self.v, self.t = np.array(state["m"]), np.array(state["v"]), int(state["t"])


@register_searcher("reinforce")
class ReinforceSearcher(Searcher):
    """REINFORCE with an exponential-moving-average baseline and an entropy bonus.

    Args:
        space: the search space (the agent makes its decisions one per step).
        seed: seeds ``self.rng``, the policy's initial weights and every episode's sampling.
        run_dir: unused.
        lr: Adam learning rate; default 0.15 for ``factorised`` and 0.003 for ``gru`` (0.01
            loses to random search on the table). Measured on the 10 tables (9 NAS-Bench-Graph,
            MNIST-1D), 100 evaluations, development seeds 0-59, with ``avoid_duplicates``:
            0.15 beat random search on 10/10 tables in both halves of the seeds, p < .05 on
            10 and 8; 0.1 and 0.2 on 9/10 and 8/10 of the first half; 0.05 without
            ``avoid_duplicates`` (the former default) on 6 and 5 (CHANGELOG, docs/rl.md).
        policy: ``factorised`` (default) or ``gru`` (see the module docstring).
        hidden: width of the GRU controller's embeddings and state.
        decay: baseline decay of the moving average of rewards, in [0, 1).
        entropy: weight of the entropy bonus (summed over an episode's decisions).
        failure_reward: reward of a failed trial (nan, oom, timeout, error, lost).
        avoid_duplicates: play an episode again (up to ``NOVELTY_TRIES`` times, no update)
            when its spec was already proposed, so that the budget is not spent on repeats
            (default; False keeps the former behaviour).
        reward: ``score`` (default: the validation score; ``failure_reward`` for a failure)
            or ``rank`` (the score's rank among the scores told so far, in [0, 1], a failure
            ranking below every score: scale-free across tasks, robust to outliers; it beat
            random search on as many tables as ``score`` but collapsed on some MNIST-1D
            seeds).
    """

    description = (
        "REINFORCE over one decision per step: GRU controller, EMA baseline, entropy bonus"
    )

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        run_dir: str | Path | None = None,
        lr: float | None = None,
        hidden: int = 32,
        decay: float = 0.9,
        entropy: float = 1e-3,
        failure_reward: float = 0.0,
        policy: str = "factorised",
        avoid_duplicates: bool = True,
        reward: str = "score",
    ) -> None:
        super().__init__(space, seed=seed, run_dir=run_dir)
        if policy not in POLICIES:
            raise AutoDLError(
                f"reinforce policy={policy!r} is unknown; use one of {', '.join(POLICIES)}"
            )
        self.policy_kind = policy
        if lr is None:
            lr = DEFAULT_LR[policy]
        self.lr = float(lr)
        self.hidden = int(hidden)
        self.decay = float(decay)
        self.entropy = float(entropy)
        self.failure_reward = float(failure_reward)
        self.avoid_duplicates = as_bool("avoid_duplicates", avoid_duplicates)
        if reward not in REWARDS:
            raise AutoDLError(
                f"reinforce reward={reward!r} is unknown; use one of {', '.join(REWARDS)}"
            )
        self.reward_kind = reward
        #: rewards told so far (the ``rank`` reward ranks a new one among them)
        self.rewards: list[float] = []
        #: arch_ids proposed so far (``avoid_duplicates`` plays an episode again on a repeat)
        self.proposed: set[str] = set()
        if not self.lr > 0:
            raise AutoDLError(f"reinforce lr must be positive, got {lr!r}")
        if self.hidden < 1:
            raise AutoDLError(f"reinforce hidden must be a positive integer, got {hidden!r}")
        if not 0.0 <= self.decay < 1.0:
            raise AutoDLError(f"reinforce decay must lie in [0, 1), got {decay!r}")
        if self.entropy < 0:
            raise AutoDLError(f"reinforce entropy must be non-negative, got {entropy!r}")
        self.baseline: float | None = None
        self.n_updates = 0
        #: arch_id -> FIFO of episodes (positions, masks, actions) awaiting their tell
        self.pending: dict[str, deque[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        self._pending_order: deque[str] = deque()
        self._make_policy()

    # Model --------------------------------------------------------------------------------
    def _make_policy(self) -> None:
        if self.policy_kind == "factorised":
            self.policy = FactorisedPolicy(len(self.space.choices), self.space.max_options)
            self.optimizer = None
            return
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.policy = _build_policy(
                len(self.space.choices), self.space.max_options, self.hidden
            )
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.lr)

    # Ask ----------------------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[ArchSpec]:
        """``n`` episodes of the policy. An episode whose spec is over the space's budget is
        learnt from at once (a policy-gradient step with ``failure_reward``) and played
        again; after ``MUTATE_TRIES`` in a row a sample of the space is returned instead (not
        the policy's, so its tell is ignored). With ``avoid_duplicates`` an episode whose spec
        was already proposed is played again (up to ``NOVELTY_TRIES`` times, no update): on a
        lookup table a repeat costs an evaluation and tells nothing new."""
        from autodlgym.searchspace.constraints import MUTATE_TRIES

        roll = self._episode_maker()
        out = []
        for _ in range(n):
            over, repeats = 0, 0
            while over < MUTATE_TRIES:
                spec, episode, over_budget = roll()
                if over_budget:
                    over += 1
                    self.space.rejected += 1
                    if self.baseline is not None:
                        self._update(episode, self._failure_value() - self.baseline)
                    continue
                if (
                    self.avoid_duplicates
                    and spec.arch_id in self.proposed
                    and repeats < NOVELTY_TRIES
                ):
                    repeats += 1  # a repeat teaches nothing new: play again, no update
                    continue
                self._remember(spec.arch_id, episode)
                break
            else:
                spec = self.space.sample(self.rng)
            self.proposed.add(spec.arch_id)
            out.append(spec)
        return out

    def _episode_maker(self):
        """A function playing one episode: ``() -> (spec, episode, over_budget)``."""
        if self.policy_kind == "factorised":

            def factorised() -> tuple[ArchSpec, tuple[np.ndarray, ...], bool]:
                spec, episode = self.policy.rollout(self.space, self.rng)
                return spec, episode, self.space.over_budget(spec) is not None

            return factorised
        import torch

        gen = torch.Generator().manual_seed(int(self.rng.integers(2**63 - 1)))

        def controller() -> tuple[ArchSpec, tuple[np.ndarray, ...], bool]:
            self.policy.eval()
            with torch.no_grad():
                return self._rollout(gen)

        return controller

    def _rollout(self, gen: torch.Generator) -> tuple[ArchSpec, tuple[np.ndarray, ...], bool]:
        import torch

        # one draw per episode, which once seeded the episode's environment: kept so that a
        # seed gives the asks it always gave
        self.rng.integers(2**31 - 1)
        sequence = DecisionSequence(self.space)
        positions, masks, actions = [], [], []
        h, prev = None, -1
        while (decision := sequence.current) is not None:
            mask = decision.mask
            valid = np.flatnonzero(mask)
            if len(valid) == 1:  # a forced decision: nothing to learn, the policy skips it
                sequence.choose(int(valid[0]))
                continue
            h, logits = self.policy.step(h, prev, decision.position, torch.from_numpy(mask))
            action = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=gen))
            positions.append(decision.position)
            masks.append(mask)
            actions.append(action)
            sequence.choose(action)
            prev = action
        spec = sequence.spec()
        episode = (
            np.asarray(positions, dtype=np.int64),
            # compact: a few bytes per decision
            np.packbits(np.array(masks, dtype=bool).reshape(-1, self.space.max_options), axis=1),
            np.asarray(actions, dtype=np.int64),
        )
        return spec, episode, self.space.over_budget(spec) is not None

    def _remember(self, arch_id: str, episode: tuple[np.ndarray, ...]) -> None:
        self.pending.setdefault(arch_id, deque()).append(episode)
        self._pending_order.append(arch_id)
        while len(self._pending_order) > _MAX_PENDING:
            old = self._pending_order.popleft()
            q = self.pending.get(old)
            if q:
                q.popleft()
                if not q:
                    del self.pending[old]

    # Tell ---------------------------------------------------------------------------------
    @staticmethod
    def _scored(result: TrialResult) -> bool:
        """Whether a trial has a finite validation score (ok or pruned)."""
        return (
            result.status in (OK, PRUNED)
            and result.val_score is not None
            and math.isfinite(float(result.val_score))
        )

    def reward(self, result: TrialResult) -> float:
        """``val_score`` of ok and pruned trials; ``failure_reward`` otherwise."""
        return float(result.val_score) if self._scored(result) else self.failure_reward

    def _failure_value(self) -> float:
        """The reward an over-budget episode is learnt from: ``failure_reward``, or the
        lowest rank (0) with the ``rank`` reward (it is not told, so not ranked)."""
        return 0.0 if self.reward_kind == "rank" else self.failure_reward

    def _rank(self, value: float) -> float:
        """The ``rank`` reward of a told value: the fraction of the values told before it
        that it beats (ties count half), in [0, 1]; 0.5 for the first. A failure's value
        is -inf: it beats nothing."""
        told = np.asarray(self.rewards)
        self.rewards.append(value)
        if len(told) == 0:
            return 0.5
        return float(((told < value).sum() + 0.5 * (told == value).sum()) / len(told))

    def tell(self, spec: ArchSpec, result: TrialResult) -> None:
        """One policy-gradient step for an episode this agent proposed; others are ignored."""
        arch_id = ArchSpec(spec).arch_id
        queue = self.pending.get(arch_id)
        if not queue:
            return
        episode = queue.popleft()
        if not queue:
            del self.pending[arch_id]
        try:
            self._pending_order.remove(arch_id)
        except ValueError:  # pragma: no cover - already trimmed
            pass
        r = self.reward(result)
        if self.reward_kind == "rank":
            r = self._rank(r if self._scored(result) else -math.inf)
        advantage = 0.0 if self.baseline is None else r - self.baseline
        self.baseline = (
            r if self.baseline is None else self.decay * self.baseline + (1 - self.decay) * r
        )
        self._update(episode, advantage)

    def discard(self, spec: ArchSpec) -> None:
        """Drop the episode of a proposed spec that will not be evaluated (no update); it may
        be proposed again."""
        arch_id = ArchSpec(spec).arch_id
        self.proposed.discard(arch_id)
        queue = self.pending.get(arch_id)
        if not queue:
            return
        queue.popleft()
        if not queue:
            del self.pending[arch_id]
        try:
            self._pending_order.remove(arch_id)
        except ValueError:  # pragma: no cover - already trimmed
            pass

    def _update(self, episode: tuple[np.ndarray, ...], advantage: float) -> None:
        positions, packed, actions = episode
        if len(actions) == 0:  # every decision was forced: the policy played no part
            return
        if self.policy_kind == "factorised":
            widths = np.unpackbits(packed, axis=1, count=self.space.max_options).sum(axis=1)
            self.policy.update(positions, widths, actions, advantage, self.entropy, self.lr)
            self.n_updates += 1
            return
        import torch

        masks = torch.from_numpy(
            np.unpackbits(packed, axis=1, count=self.space.max_options).astype(bool)
        )
        actions_t = torch.from_numpy(actions)
        self.policy.train()
        logp = torch.log_softmax(self.policy(actions_t, torch.from_numpy(positions), masks), -1)
        log_prob = logp.gather(1, actions_t.unsqueeze(1)).sum()
        # masked slots have p = 0: count them as 0 * log 0 = 0, not 0 * -inf = nan
        entropy = -(logp.exp() * logp.masked_fill(~masks, 0.0)).sum()
        loss = -advantage * log_prob - self.entropy * entropy
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.n_updates += 1

    # Introspection ------------------------------------------------------------------------
    def probabilities(self, partial: dict[str, Any] | None = None) -> dict[Any, float]:
        """The policy's distribution over the options of the next decision after ``partial``
        (decisions made so far, in order), e.g. ``{"mlp": 0.1, "conv": 0.3, ...}``."""
        import torch

        partial = dict(partial or {})
        if self.policy_kind == "factorised":
            d = self.space.next_decision(partial)
            if d is None:
                raise AutoDLError("the spec is complete; there is no next decision")
            p = self.policy.probs(d.position, len(d.choice.options))
            return {o: float(p[i]) for i, o in enumerate(d.choice.options)}
        made: dict[str, Any] = {}
        h, prev = None, -1
        with torch.no_grad():
            while True:
                d = self.space.next_decision(made)
                if d is None:
                    raise AutoDLError("the spec is complete; there is no next decision")
                if d.choice.name not in partial:
                    if d.mask.sum() == 1:
                        return {d.choice.options[0]: 1.0}
                    _, logits = self.policy.step(h, prev, d.position, torch.from_numpy(d.mask))
                    p = torch.softmax(logits, -1).numpy()
                    return {o: float(p[i]) for i, o in enumerate(d.choice.options)}
                if d.mask.sum() > 1:  # forced decisions are skipped, as when acting
                    h, _ = self.policy.step(h, prev, d.position, torch.from_numpy(d.mask))
                    prev = d.choice.index(partial[d.choice.name])
                made[d.choice.name] = partial[d.choice.name]

    # State --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        skip = ("space", "run_dir", "policy", "optimizer")
        state = {k: v for k, v in self.__dict__.items() if k not in skip}
        if self.policy_kind == "factorised":
            state["policy"] = self.policy.state_dict()
            state["optimizer"] = None  # Adam's moments live with the policy's logits
        else:
            state["policy"] = _clone_state(self.policy.state_dict())
            state["optimizer"] = _clone_state(self.optimizer.state_dict())
        state["proposed"] = set(self.proposed)
        state["rewards"] = list(self.rewards)
        state["pending"] = {k: list(v) for k, v in self.pending.items()}
        state["_pending_order"] = list(self._pending_order)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        policy = state.pop("policy")
        optimizer = state.pop("optimizer")
        pending = state.pop("pending")
        order = state.pop("_pending_order")
        self.__dict__.update(state)
        self.policy_kind = state.get("policy_kind", "gru")  # states saved before the option
        # states saved before these options resume as they ran
        self.avoid_duplicates = bool(state.get("avoid_duplicates", False))
        self.reward_kind = state.get("reward_kind", "score")
        self.proposed = set(state.get("proposed", ()))
        self.rewards = list(state.get("rewards", ()))
        self._make_policy()  # rebuilt for the (possibly changed) options, then overwritten
        self.policy.load_state_dict(policy)
        if self.optimizer is not None:
            self.optimizer.load_state_dict(optimizer)
        self.pending = {k: deque(v) for k, v in pending.items()}
        self._pending_order = deque(order)


def _clone_state(state: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a torch state dict, detached from the live tensors (later steps must not
    change a saved state)."""
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)
