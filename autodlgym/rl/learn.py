"""Train the reference learned searcher: a GRU policy over the search history
(:mod:`autodlgym.searchers.learned`), REINFORCE on search episodes of a fold's training tasks.

Each iteration draws one training task, runs ``batch`` search episodes of ``budget``
evaluations on it in :class:`~autodlgym.envs.search_env.SearchEpisodeEnv` copies (reward
``"regret"``: minus the normalised regret after each step, so the return is minus the area
under the regret curve, comparable across tables), and takes one Adam step on
``-(log-prob x advantage) - entropy_coef x entropy``: the advantage of a step is its
return-to-go minus the batch's mean at that step, divided by their spread. The policy sees
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
from autodlgym.searchers.learned import REDRAWS, history_features, make_policy, option_keys


def train_searcher(
    tasks: Sequence[str],
    *,
    budget: int = 100,
    batch: int = 16,
    iterations: int = 200,
    seconds: float | None = None,
    lr: float = 3e-3,
    entropy_coef: float = 0.01,
    reward: str = "regret",
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> Any:
    """A trained policy (a torch module; save it with
    :func:`~autodlgym.searchers.learned.save_policy`, run it with ``--searcher rl:PATH``).

    Args:
        tasks: training task names (tabular for ``reward="regret"`` or ``"rank"``).
        budget: evaluations per training episode (the search length it is trained for).
        batch: episodes per update, all on one task drawn for the iteration.
        iterations: updates to make (at most).
        seconds: stop after this much wall time even if iterations remain.
        lr, entropy_coef: Adam's step size and the entropy bonus.
        reward: the episodes' reward option (see SearchEpisodeEnv).
        seed: seeds the task draws, the episodes and torch's sampling and initialisation.
        log: where a progress line goes every tenth of the iterations (default stderr).
    """
    import torch

    if not tasks:
        raise AutoDLError("give at least one training task")
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
    policy = make_policy(vocab, decisions)
    policy.train()
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    ids = {t: policy.ids(envs[t][0].space) for t in tasks}
    started = time.monotonic()
    recent: list[float] = []
    for it in range(iterations):
        task = tasks[int(rng.integers(len(tasks)))]
        copies = envs[task]
        space = copies[0].space
        for env in copies:
            env.reset(seed=int(rng.integers(2**31 - 1)))
        h = policy.observe(policy.initial(batch), None, _features(copies))
        logps, ents, rewards = [], [], []
        seen: list[set[tuple[int, ...]]] = [set() for _ in range(batch)]
        for _ in range(budget):
            _, chosen, logp, ent, actions = policy.propose(h, space, ids[task], gen)
            keys = [tuple(a) for a in actions.tolist()]
            for _ in range(REDRAWS):  # repeats are drawn again, as the searcher does
                again = [r for r in range(batch) if keys[r] in seen[r]]
                if not again:
                    break
                _, c2, lp2, en2, a2 = policy.propose(h, space, ids[task], gen)
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
        rew = torch.tensor(np.array(rewards), dtype=torch.float32)  # (budget, batch)
        to_go = torch.flip(torch.cumsum(torch.flip(rew, [0]), 0), [0])
        adv = to_go - to_go.mean(1, keepdim=True)
        adv = adv / (adv.std() + 1e-8)
        logp_all, ent_all = torch.stack(logps), torch.stack(ents)
        loss = -(logp_all * adv).sum(0).mean() - entropy_coef * ent_all.mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        recent.append(float(np.mean([env.search.best or np.nan for env in copies])))
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


def _features(envs: Sequence[SearchEpisodeEnv]) -> np.ndarray:
    return np.stack([history_features(env.search) for env in envs])
