"""Zero-cost pre-screening: rank many candidates at initialisation, train only the best.

``zero-cost`` wraps any searcher (``base``, random by default). For each ``ask(n)`` it asks the
base searcher for ``pool`` candidates, builds each one untrained on one fixed batch of the
task's training data, scores it with an initialisation diagnostic (NASWOT by default: the
log-determinant of the kernel of the binary pre-activation codes of every nonlinearity,
Mellor et al. 2021), and returns the ``n`` best. The others are never trained and never reach
the base searcher as results: it is asked to :meth:`~autodlgym.searchers.base.Searcher.discard`
them (release what it keeps for pending asks), so an evolution population holds only trained
members and REINFORCE makes one update per trained candidate. A candidate that cannot be built
or scored ranks last.

It is a searcher of its own rather than a flag of every searcher so that it composes with any
of them, plugins included: ``--searcher zero-cost --searcher-opt base=tpe``. Options it does
not know go to the base searcher.

Scoring is deterministic: every candidate is built under ``torch.manual_seed(seed)`` inside
``torch.random.fork_rng``, on a batch drawn once from ``seed``; the caller's random state is
left as it was.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from autodlgym.errors import AutoDLError
from autodlgym.searchers.base import Searcher, make_searcher, register_searcher
from autodlgym.searchspace.space import SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import TrialResult
from autodlgym.utils import as_int


@register_searcher("zero-cost")
class ZeroCostPrescreen(Searcher):
    """Ask a base searcher for a pool, train only the best by a zero-cost score.

    Args:
        space: the search space.
        seed: seeds the base searcher, the scoring batch and the models' initialisation.
        run_dir: passed to the base searcher.
        base: the searcher that proposes the pool (any name :func:`get_searcher` accepts).
        task: the task whose training data scores candidates (a name or a task key; the
            run's task is the sensible choice).
        pool: candidates scored per ask (``ask(n)`` scores ``max(pool, n)``).
        score: a diagnostic's name from :data:`~autodlgym.training.diagnostics.SCALARS`
            (the same name as the results frame's ``diag_<name>`` column); higher ranks first,
            a leading ``-`` ranks lower first. Default ``naswot``.
        batch: training examples the score is computed on.
        **base_options: options of the base searcher.
    """

    description = "zero-cost pre-screen: score a pool at init (NASWOT), train the top-k"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        run_dir: str | Path | None = None,
        *,
        base: str = "random",
        task: str = "mnist1d",
        pool: int | str = 64,
        score: str = "naswot",
        batch: int | str = 128,
        **base_options: Any,
    ) -> None:
        super().__init__(space, seed=seed, run_dir=run_dir)
        if base == "zero-cost":
            raise AutoDLError("zero-cost cannot wrap itself; give base=random, tpe, ...")
        self.pool = as_int("pool", pool, minimum=1)
        self.batch = as_int("batch", batch, minimum=2)
        score = str(score).strip()
        self.minimise = score.startswith("-")
        self.score_name = score.lstrip("-")
        from autodlgym.training.diagnostics import SCALARS

        known = sorted(SCALARS)
        if self.score_name not in known:
            raise AutoDLError(
                f"score={score!r} is not a diagnostic; choose one of {', '.join(known)} "
                "(a leading - ranks the lowest first)"
            )
        from autodlgym.tasks import Task

        self.task = Task.from_key(str(task))
        self.base = make_searcher(base, space, seed=seed, run_dir=run_dir, **base_options)
        self._scores: dict[str, float] = {}  # arch_id -> score (deterministic, so kept)
        self._inputs: tuple[Any, Any] | None = None

    def ask(self, n: int = 1) -> list[ArchSpec]:
        candidates = self.base.ask(max(self.pool, n))
        scores = np.array([self.score(spec) for spec in candidates])
        order = np.argsort(-scores, kind="stable")  # ties keep the base searcher's order
        for i in order[n:]:
            self.base.discard(candidates[i])
        return [candidates[i] for i in order[:n]]

    def tell(self, spec: ArchSpec, result: TrialResult) -> None:
        self.base.tell(spec, result)

    def score(self, spec: ArchSpec) -> float:
        """The ranking score of ``spec`` (higher is better; -inf when it cannot be built or
        the diagnostic is missing or not finite)."""
        key = spec.arch_id
        if key not in self._scores:
            self._scores[key] = self._compute(spec)
        return self._scores[key]

    def _compute(self, spec: ArchSpec) -> float:
        import torch

        from autodlgym.searchspace.build import build_model
        from autodlgym.training.diagnostics import diagnose

        x, y = self._batch()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                model = build_model(spec, self.task.io)
                scalars = diagnose(model, x, y, self.task.loss, seed=self.seed).scalars()
        except Exception:  # noqa: BLE001 - a candidate that cannot be scored ranks last
            return -math.inf
        value = scalars.get(self.score_name)
        if value is None or not math.isfinite(float(value)):
            return -math.inf
        return -float(value) if self.minimise else float(value)

    def _batch(self) -> tuple[Any, Any]:
        """The scoring batch: ``batch`` training examples drawn once from the seed."""
        if self._inputs is None:
            import torch

            data = self.task.load()
            n = len(data.y_train)
            idx = np.sort(np.random.default_rng(self.seed).permutation(n)[: min(self.batch, n)])
            self._inputs = (torch.tensor(data.x_train[idx]), torch.tensor(data.y_train[idx]))
        return self._inputs

    def state_dict(self) -> dict[str, Any]:
        return {"base": self.base.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base.load_state_dict(state["base"])

    def close(self) -> None:
        self.base.close()
