"""Train the reference learned searcher: a GRU policy over the search history
(:mod:`autodlgym.searchers.learned`), REINFORCE on search episodes of a fold's training tasks.

Each iteration draws ``tasks_per_update`` training tasks (4 by default), runs ``batch``
search episodes of ``budget`` evaluations on each in
:class:`~autodlgym.envs.search_env.SearchEpisodeEnv` copies (reward ``"regret"``: minus the
normalised regret after each step, so the return is minus the area under the regret curve,
comparable across tables), and takes one Adam step on the mean over the tasks of
``-(log-prob x advantage) - entropy_coef x entropy``: the advantage of a step is its
return-to-go minus the task's episodes' mean at that step, divided by their spread. The
policy has the incumbent bonus (``keep``) by default: on the ``proteins`` fold, 25 updates of
4 tasks x 4 episodes, it took the held-out regret from .0162 (without) to .0035 (random
search .0064; docs/rl.md). The policy sees
what it will see as a searcher: the candidates and their validation scores, never the table.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from autodlgym.envs.search_env import SearchEpisodeEnv
from autodlgym.errors import AutoDLError
from autodlgym.searchers.learned import (
    REDRAWS,
    history_features,
    incumbent,
    make_policy,
    option_keys,
)


def train_searcher(
    tasks: Sequence[str],
    *,
    budget: int = 100,
    batch: int = 4,
    iterations: int = 200,
    seconds: float | None = None,
    lr: float = 1e-2,
    entropy_coef: float = 0.01,
    reward: str = "regret",
    seed: int = 0,
    keep: bool = True,
    keep_init: float = 2.0,
    tasks_per_update: int | None = None,
    log: Callable[[str], None] | None = None,
) -> Any:
    """A trained policy (a torch module; save it with
    :func:`~autodlgym.searchers.learned.save_policy`, run it with ``--searcher rl:PATH``).

    Args:
        tasks: training task names (tabular for ``reward="regret"`` or ``"rank"``).
        budget: evaluations per training episode (the search length it is trained for).
        batch: episodes per task drawn for an update.
        iterations: updates to make (at most).
        seconds: stop after this much wall time even if iterations remain.
        lr, entropy_coef: Adam's step size and the entropy bonus.
        reward: the episodes' reward option (see SearchEpisodeEnv).
        seed: seeds the task draws, the episodes and torch's sampling and initialisation.
        tasks_per_update: tasks drawn (without replacement) for each update, ``batch``
            episodes each; the gradient is the mean of theirs, so one update does not chase
            one table (default: 4, or every task when fewer; 1 with ``batch=16`` is the
            former behaviour).
        keep: give the policy the incumbent bonus (:func:`~autodlgym.searchers.learned.make_policy`):
            it can learn to edit the best candidate so far.
        log: where a progress line goes every tenth of the iterations (default stderr).
    """
    import torch

    if not tasks:
        raise AutoDLError("give at least one training task")
    if tasks_per_update is None:
        tasks_per_update = min(4, len(tasks))
    if not 1 <= tasks_per_update <= len(tasks):
        raise AutoDLError(
            f"tasks_per_update must lie in 1..{len(tasks)} (the training tasks), "
            f"got {tasks_per_update}"
        )
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    torch.set_num_threads(1)  # tiny tensors: more threads only contend
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    envs = {
        t: [SearchEpisodeEnv(t, budget=budget, reward=reward) for _ in range(batch)] for t in tasks
    }
    vocab = list(
        dict.fromkeys(k for t in tasks for keys in option_keys(envs[t][0].space) for k in keys)
    )
    decisions = list(dict.fromkeys(n for t in tasks for n in envs[t][0].space.names))
    policy = make_policy(vocab, decisions, keep=keep, keep_init=keep_init)
    policy.train()
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    ids = {t: policy.ids(envs[t][0].space) for t in tasks}
    started = time.monotonic()
    recent: list[float] = []
    it = -1  # iterations=0: the untrained policy
    for it in range(iterations):
        if tasks_per_update == 1:
            drawn = [tasks[int(rng.integers(len(tasks)))]]
        else:
            drawn = [tasks[int(k)] for k in rng.choice(len(tasks), tasks_per_update, replace=False)]
        opt.zero_grad()
        for task in drawn:
            copies = envs[task]
            logp_all, ent_all, rew = _episodes(policy, copies, ids[task], budget, gen, rng)
            to_go = torch.flip(torch.cumsum(torch.flip(rew, [0]), 0), [0])
            adv = to_go - to_go.mean(1, keepdim=True)
            adv = adv / (adv.std() + 1e-8)
            loss = -(logp_all * adv).sum(0).mean() - entropy_coef * ent_all.mean()
            (loss / len(drawn)).backward()  # the mean over the tasks drawn
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        recent.append(float(np.mean([env.search.best or np.nan for env in envs[drawn[-1]]])))
        if (it + 1) % max(1, iterations // 10) == 0:
            log(
                f"train: iteration {it + 1}/{iterations}, {time.monotonic() - started:.0f} s, "
                f"mean best val of the last batches {np.nanmean(recent[-10:]):.4f}"
            )
        if seconds is not None and time.monotonic() - started > seconds:
            log(f"train: stopped after {it + 1} iterations ({seconds:.0f} s)")
            break
    policy.eval()
    policy.meta = {"tasks": list(tasks), "budget": budget, "iterations": it + 1, "seed": seed}
    for copies in envs.values():
        for env in copies:
            env.close()
    return policy


def _episodes(
    policy: Any,
    copies: Sequence[SearchEpisodeEnv],
    ids: Any,
    budget: int,
    gen: Any,
    rng: np.random.Generator,
) -> tuple[Any, Any, Any]:
    """One search per env copy of one task, the policy proposing: log-probs and entropies
    of its proposals and the rewards, each (budget, copies)."""
    import torch

    batch = len(copies)
    space = copies[0].space
    for env in copies:
        env.reset(seed=int(rng.integers(2**31 - 1)))
    h = policy.observe(policy.initial(batch), None, _features(copies))
    logps, ents, rewards = [], [], []
    seen: list[set[tuple[int, ...]]] = [set() for _ in range(batch)]
    for _ in range(budget):
        best = [incumbent(env.search) for env in copies]
        _, chosen, logp, ent, actions = policy.propose(h, space, ids, gen, False, best)
        keys = [tuple(a) for a in actions.tolist()]
        for _ in range(REDRAWS):  # repeats are drawn again, as the searcher does
            again = [r for r in range(batch) if keys[r] in seen[r]]
            if not again:
                break
            _, c2, lp2, en2, a2 = policy.propose(h, space, ids, gen, False, best)
            redo = torch.zeros(batch, dtype=torch.bool)
            redo[again] = True
            logp, ent = torch.where(redo, lp2, logp), torch.where(redo, en2, ent)
            for r in again:
                chosen[r], actions[r], keys[r] = c2[r], a2[r], tuple(a2[r].tolist())
        step_rewards = []
        for r, env in enumerate(copies):
            seen[r].add(keys[r])
            _, reward_r, *_ = env.step(actions[r])
            step_rewards.append(reward_r)
        logps.append(logp)
        ents.append(ent)
        rewards.append(step_rewards)
        h = policy.observe(h, chosen, _features(copies))
    rew = torch.tensor(np.array(rewards), dtype=torch.float32)
    return torch.stack(logps), torch.stack(ents), rew


def _features(envs: Sequence[SearchEpisodeEnv]) -> np.ndarray:
    return np.stack([history_features(env.search) for env in envs])
