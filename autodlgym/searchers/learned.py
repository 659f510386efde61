"""A learned searcher: a recurrent policy over the search's history, trained by
:mod:`autodlgym.rl.learn` on some tasks and run here on any task (``--searcher rl:PATH``).

The policy (:func:`make_policy`) reads the history one evaluation at a time with a GRU cell:
its input is the mean embedding of the last candidate's options and the task-free summary of
:class:`~autodlgym.searchspace.history.SearchHistory` (evaluations left, the last score's rank
among this search's scores, whether it raised the best, whether it failed, its z-score among
them). It proposes the next candidate one decision at a time, in the space's order: each
option is scored against a query made of the hidden state, the decision and the options chosen
so far; a policy built with ``keep`` also adds a learned bonus (a function of the hidden
state and the decision) to the option the best candidate so far (:func:`incumbent`) took, so
it can learn to edit the incumbent, as local search and evolution do, and how much to.
Options are embedded by ``decision=value``, so a policy trained on one space runs on
any other: an option it never saw shares one "unknown" embedding (and then proposes close to
uniformly there). A candidate already evaluated in this search is drawn again (up to
:data:`REDRAWS` times), so the policy does not spend evaluations on repeats.

torch is imported when a policy is built or loaded, never by ``import autodlgym.searchers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autodlgym.errors import AutoDLError
from autodlgym.searchers.base import Searcher
from autodlgym.searchspace.history import SearchHistory
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import TrialResult

#: the prefix of a trained policy's searcher name: ``rl:PATH``
PREFIX = "rl:"
#: draws of a candidate the search already evaluated before one is kept anyway
REDRAWS = 10
#: entries of :func:`history_features`
N_FEATURES = 5


def history_features(history: SearchHistory) -> np.ndarray:
    """The task-free summary of a search the policy reads (float32, :data:`N_FEATURES`):
    evaluations left (fraction), the last score's rank among the earlier ones, whether it
    raised the best, whether it failed, and its z-score among this search's scores / 3."""
    out = np.zeros(N_FEATURES, dtype=np.float32)
    out[0] = history.left / history.budget
    if not history.evaluations:
        return out
    summary = history.summary()
    out[1:4] = summary[3:6]
    last = history.evaluations[-1][1]
    scores = history.scores()
    if last is not None and len(scores) > 1:
        sd = float(np.std(scores))
        if sd > 0:
            out[4] = float(np.clip((last - float(np.mean(scores))) / sd, -3, 3)) / 3
    return out


def option_keys(space: SearchSpace) -> list[list[str]]:
    """``decision=value`` of every option of every decision, in the space's order."""
    return [[f"{c.name}={o!r}" for o in c.options] for c in space.choices]


def incumbent(history: SearchHistory) -> ArchSpec | None:
    """The best-scoring candidate of a search so far (the earliest of ties; None before a
    success)."""
    best, spec = None, None
    for s, score in history.evaluations:
        if score is not None and (best is None or score > best):
            best, spec = score, s
    return spec


def make_policy(
    vocab: Sequence[str],
    decisions: Sequence[str],
    hidden: int = 64,
    emb: int = 32,
    keep: bool = False,
    keep_init: float = 2.0,
):
    """A fresh policy (a torch module) for option keys ``vocab`` and decision names
    ``decisions`` (index 0 of each is "unknown"). With ``keep`` each decision's logits also
    add a learned bonus (a function of the hidden state and the decision) to the option the
    best candidate so far took: the policy can learn to edit the incumbent, as local search
    and evolution do, and how much to, from the history it has read."""
    import torch
    from torch import nn

    class HistoryPolicy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vocab = {k: i + 1 for i, k in enumerate(vocab)}
            self.decisions = {k: i + 1 for i, k in enumerate(decisions)}
            self.config = {"hidden": hidden, "emb": emb, "keep": keep, "keep_init": keep_init}
            self.option = nn.Embedding(len(vocab) + 1, emb)
            self.bias = nn.Embedding(len(vocab) + 1, 1)
            self.decision = nn.Embedding(len(decisions) + 1, emb)
            self.inp = nn.Linear(emb + N_FEATURES, hidden)
            self.gru = nn.GRUCell(hidden, hidden)
            self.query = nn.Linear(hidden, emb)
            self.context = nn.Linear(emb, emb, bias=False)
            if keep:
                # the bonus starts at keep_init for every decision: an untrained policy edits
                # the incumbent a decision or two at a time, as local search does
                self.keep_h = nn.Linear(hidden, 1)
                self.keep_d = nn.Embedding(len(decisions) + 1, 1)
                nn.init.zeros_(self.keep_h.weight)
                nn.init.constant_(self.keep_h.bias, keep_init)
                nn.init.zeros_(self.keep_d.weight)
            nn.init.zeros_(self.bias.weight)
            nn.init.normal_(self.option.weight, std=0.1)
            nn.init.normal_(self.decision.weight, std=0.1)

        def ids(self, space: SearchSpace) -> tuple[list[list[int]], list[int]]:
            opts = [[self.vocab.get(k, 0) for k in keys] for keys in option_keys(space)]
            decs = [self.decisions.get(c.name, 0) for c in space.choices]
            return opts, decs

        def initial(self, batch: int) -> torch.Tensor:
            return torch.zeros(batch, hidden)

        def observe(
            self, h: torch.Tensor, last: list[list[int]] | None, features: np.ndarray
        ) -> torch.Tensor:
            """The hidden state after one evaluation per row (``last``: option ids of each
            row's last candidate, None at the start)."""
            b = h.shape[0]
            if last is None:
                spec_emb = torch.zeros(b, emb)
            else:
                spec_emb = torch.stack([self.option(torch.tensor(row)).mean(0) for row in last])
            x = torch.cat([spec_emb, torch.as_tensor(features, dtype=torch.float32)], 1)
            return self.gru(torch.relu(self.inp(x)), h)

        def propose(
            self,
            h: torch.Tensor,
            space: SearchSpace,
            ids: tuple[list[list[int]], list[int]],
            gen: torch.Generator,
            greedy: bool = False,
            incumbents: Sequence[ArchSpec | None] | None = None,
        ) -> tuple[list[dict[str, Any]], list[list[int]], torch.Tensor, torch.Tensor, np.ndarray]:
            """One candidate per row of ``h``: (values, option ids, log-prob, entropy, the
            option indices as an action of the space, 0 for inactive decisions).
            ``incumbents``: each row's best candidate so far (or None), for a ``keep``
            policy."""
            opts, decs = ids
            b = h.shape[0]
            q0 = self.query(h)
            use_keep = keep and incumbents is not None and any(i is not None for i in incumbents)
            if use_keep:
                keep_h = self.keep_h(h).squeeze(-1)  # (b,)
            ctx = torch.zeros(b, emb)
            logp = torch.zeros(b)
            ent = torch.zeros(b)
            values: list[dict[str, Any]] = [{} for _ in range(b)]
            chosen: list[list[int]] = [[] for _ in range(b)]
            actions = np.zeros((b, len(space)), dtype=np.int64)
            for j, c in enumerate(space.choices):
                active = [space.is_active(c, v) for v in values]
                if not any(active):
                    continue
                opt_ids = torch.tensor(opts[j])
                e = self.option(opt_ids)  # (k, emb)
                q = q0 + self.decision.weight[decs[j]] + self.context(ctx)
                logits = q @ e.T + self.bias(opt_ids).squeeze(-1)
                if use_keep:
                    onehot = torch.zeros(b, len(c.options))
                    for r, inc in enumerate(incumbents):
                        if inc is not None and c.name in inc:
                            onehot[r, c.index(inc[c.name])] = 1.0
                    logits = logits + onehot * (keep_h + self.keep_d.weight[decs[j], 0])[:, None]
                dist = torch.distributions.Categorical(logits=logits)
                if greedy:
                    pick = logits.argmax(-1)
                else:
                    pick = torch.multinomial(dist.probs, 1, generator=gen).squeeze(-1)
                act = torch.tensor(active, dtype=torch.float32)
                logp = logp + dist.log_prob(pick) * act
                ent = ent + dist.entropy() * act
                ctx = ctx + e[pick] * act[:, None]
                picks = pick.tolist()
                for r in range(b):
                    if active[r]:
                        i = picks[r]
                        values[r][c.name] = c.options[i]
                        chosen[r].append(opts[j][i])
                        actions[r, j] = i
            return values, chosen, logp, ent, actions

    return HistoryPolicy()


def save_policy(policy: Any, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write a policy (its weights, vocabulary and sizes) to ``path`` (torch's format)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "format": 1,
            "vocab": list(policy.vocab),
            "decisions": list(policy.decisions),
            "config": dict(policy.config),
            "state": policy.state_dict(),
            "meta": dict(meta or {}),
        },
        path,
    )
    return path


def load_policy(path: str | Path) -> Any:
    """The policy saved at ``path`` (AutoDLError naming the problem if it cannot be read)."""
    path = Path(path)
    if not path.is_file():
        raise AutoDLError(
            f"no trained policy at {path}; train one with autodlgym.rl.train_searcher "
            "(see docs/rl.md) and give --searcher rl:PATH"
        )
    import torch

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        policy = make_policy(blob["vocab"], blob["decisions"], **blob["config"])
        policy.load_state_dict(blob["state"])
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise AutoDLError(f"{path} is not a trained policy ({type(exc).__name__}: {exc})") from None
    policy.eval()
    policy.meta = blob.get("meta", {})
    return policy


class LearnedSearcher(Searcher):
    """Runs a trained policy (:func:`load_policy`) as a searcher: ``--searcher rl:PATH``.

    Args:
        space, seed, run_dir: as for every searcher.
        policy: the path of a policy saved by :func:`save_policy` (``rl:PATH`` gives it).
        budget: the evaluations of the search (the policy reads the fraction left; default
            100, the run's ``--trials`` when it runs under the runner).
        greedy: take each decision's most likely option instead of sampling.
    """

    description = "a trained recurrent policy over the search's history (rl:PATH)"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        run_dir: str | Path | None = None,
        policy: str | Path | None = None,
        budget: int = 100,
        greedy: bool = False,
    ) -> None:
        super().__init__(space, seed=seed, run_dir=run_dir)
        if policy is None:
            raise AutoDLError("the learned searcher needs a policy: --searcher rl:PATH")
        self.policy_path = str(policy)
        self.budget = max(1, int(budget))
        self.greedy = bool(greedy)
        self.history = SearchHistory(space, self.budget)
        self._policy: Any = None
        self._h: Any = None
        self._fed: SearchHistory | None = None  # what the GRU has read

    def _net(self) -> Any:
        if self._policy is None:
            import torch

            self._policy = load_policy(self.policy_path)
            self._ids = self._policy.ids(self.space)
            self._gen = torch.Generator().manual_seed(self.seed)
            self._h = self._policy.initial(1)
        return self._policy

    def ask(self, n: int = 1) -> list[ArchSpec]:
        import torch

        policy = self._net()
        out = []
        with torch.no_grad():
            self._catch_up(policy)
            seen = {spec for spec, _ in self.history.evaluations}
            best = incumbent(self.history)
            for _ in range(n):
                spec = None
                for _ in range(REDRAWS):
                    values, *_ = policy.propose(
                        self._h, self.space, self._ids, self._gen, self.greedy, [best]
                    )
                    spec = self.space.validate(ArchSpec(values[0]))
                    if spec not in seen:
                        break
                seen.add(spec)
                out.append(spec)
        return out

    def tell(self, spec: ArchSpec, result: TrialResult) -> None:
        if self.history.left == 0:  # a longer run than the policy was told: keep counting
            self.history.budget += 1
        self.history.add(spec, result.val_score if result.ok else None)

    def _catch_up(self, policy: Any) -> None:
        """Feed the start, then every evaluation told since the last ask, to the GRU."""
        if self._fed is None:
            self._fed = SearchHistory(self.space, self.history.budget)
            self._h = policy.observe(self._h, None, history_features(self._fed)[None])
        while len(self._fed.evaluations) < len(self.history.evaluations):
            spec, score = self.history.evaluations[len(self._fed.evaluations)]
            self._fed.budget = self.history.budget
            self._fed.add(spec, score)
            features = history_features(self._fed)[None]
            self._h = policy.observe(self._h, [self._option_ids(spec)], features)

    def _option_ids(self, spec: ArchSpec) -> list[int]:
        opts, _ = self._ids
        return [
            opts[j][c.index(spec[c.name])]
            for j, c in enumerate(self.space.choices)
            if c.name in spec
        ]

    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": self.rng,
            "budget": self.budget,
            "evaluations": list(self.history.evaluations),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng = state["rng"]
        self.budget = state["budget"]
        self.history = SearchHistory(self.space, self.budget)
        for spec, score in state["evaluations"]:
            self.history.add(spec, score)
        self._policy = None  # rebuilt (and the history replayed) on the next ask
        self._fed = None


def searcher_for(name: str) -> type[Searcher]:
    """The searcher class of ``rl:PATH``: :class:`LearnedSearcher` bound to the policy file."""
    path = name[len(PREFIX) :]
    if not path:
        raise AutoDLError("give the policy's file: --searcher rl:PATH")
    if not Path(path).is_file():
        raise AutoDLError(
            f"no trained policy at {path}; train one with autodlgym.rl.train_searcher "
            "(see docs/rl.md)"
        )

    class BoundLearnedSearcher(LearnedSearcher):
        def __init__(self, space: SearchSpace, seed: int = 0, run_dir: Any = None, **kw: Any):
            kw.setdefault("policy", path)
            super().__init__(space, seed=seed, run_dir=run_dir, **kw)

    BoundLearnedSearcher.__name__ = BoundLearnedSearcher.__qualname__ = "LearnedSearcher"
    return BoundLearnedSearcher
