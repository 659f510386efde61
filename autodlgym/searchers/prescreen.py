"""Zero-cost pre-screening: rank many candidates at initialisation, train only the best.

``zero-cost`` wraps any searcher (``base``, random by default). For each ``ask(n)`` it asks the
base searcher for ``pool`` candidates, has each one built untrained and measured on one fixed
batch of the task's training data with an initialisation diagnostic (NASWOT by default: the
log-determinant of the kernel of the binary pre-activation codes of every nonlinearity,
Mellor et al. 2021), and returns the ``n`` best. The others are never trained and never reach
the base searcher as results: it is asked to :meth:`~autodlgym.searchers.base.Searcher.discard`
them (release what it keeps for pending asks), so an evolution population holds only trained
members and REINFORCE makes one update per trained candidate. A candidate that cannot be built
or scored ranks last.

It is a searcher of its own rather than a flag of every searcher so that it composes with any
of them, plugins included: ``--searcher zero-cost --searcher-opt base=tpe``. Options it does
not know go to the base searcher.

The measuring is the run's: the searcher sees only the space and the run's
:class:`~autodlgym.searchers.base.SearchContext`, whose ``score_at_init`` builds and measures
the candidates (:func:`autodlgym.training.diagnostics.init_scorer` on the run's task, or on the
task named by the ``task`` option, which the runner reads). Scoring is deterministic: every
candidate is built under ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng``, on a
batch drawn once from ``seed``; the caller's random state is left as it was.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from autodlgym.errors import AutoDLError
from autodlgym.searchers.base import SearchContext, Searcher, make_searcher, register_searcher
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
        pool: candidates scored per ask (``ask(n)`` scores ``max(pool, n)``).
        score: a diagnostic's name from :data:`~autodlgym.training.diagnostics.SCALARS`
            (the same name as the results frame's ``diag_<name>`` column); higher ranks first,
            a leading ``-`` ranks lower first. Default ``naswot``.
        batch: training examples the score is computed on.
        context: the run's context; its ``score_at_init`` measures the candidates (the runner
            gives it; ``--searcher-opt task=NAME`` makes the runner measure on that task's
            data instead of the run's task).
        **base_options: options of the base searcher.

    Raises:
        AutoDLError: a bad option, or no context that scores at initialisation.
    """

    description = "zero-cost pre-screen: score a pool at init (NASWOT), train the top-k"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        run_dir: str | Path | None = None,
        *,
        base: str = "random",
        pool: int | str = 64,
        score: str = "naswot",
        batch: int | str = 128,
        context: SearchContext | None = None,
        **base_options: Any,
    ) -> None:
        super().__init__(space, seed=seed, run_dir=run_dir)
        if base == "zero-cost":
            raise AutoDLError("zero-cost cannot wrap itself; give base=random, tpe, ...")
        self.pool = as_int("pool", pool, minimum=1)
        self.batch = as_int("batch", batch, minimum=2)
        if "task" in base_options:
            raise AutoDLError(
                "zero-cost takes its task from the run: give task= as --searcher-opt (or in "
                "RunConfig.searcher_options) and the runner measures candidates on that task"
            )
        if context is None or context.score_at_init is None:
            raise AutoDLError(
                "zero-cost needs a run context that scores candidates at initialisation; run "
                "it with autodlgym search or run_search (or pass context=SearchContext(...))"
            )
        self.context = context
        score = str(score).strip()
        self.minimise = score.startswith("-")
        self.score_name = score.lstrip("-")
        known = sorted(context.score_at_init.names)
        if self.score_name not in known:
            raise AutoDLError(
                f"score={score!r} is not a diagnostic; choose one of {', '.join(known)} "
                "(a leading - ranks the lowest first)"
            )
        self.base = make_searcher(
            base, space, seed=seed, run_dir=run_dir, context=context, **base_options
        )
        self._scores: dict[str, float] = {}  # arch_id -> score (deterministic, so kept)

    def ask(self, n: int = 1) -> list[ArchSpec]:
        candidates = self.base.ask(max(self.pool, n))
        scores = np.array(self.scores(candidates))
        order = np.argsort(-scores, kind="stable")  # ties keep the base searcher's order
        for i in order[n:]:
            self.base.discard(candidates[i])
        return [candidates[i] for i in order[:n]]

    def tell(self, spec: ArchSpec, result: TrialResult) -> None:
        self.base.tell(spec, result)

    def score(self, spec: ArchSpec) -> float:
        """The ranking score of ``spec`` (higher is better; -inf when it cannot be built or
        the diagnostic is missing or not finite)."""
        return self.scores([spec])[0]

    def scores(self, specs: list[ArchSpec]) -> list[float]:
        """:meth:`score` of each spec; the specs not scored before are measured in one call
        of the context's ``score_at_init``."""
        new = {spec.arch_id: spec for spec in specs if spec.arch_id not in self._scores}
        if new:
            values = self.context.score_at_init(
                list(new.values()), self.score_name, seed=self.seed, batch=self.batch
            )
            if len(values) != len(new):
                raise AutoDLError(
                    f"score_at_init gave {len(values)} scores for {len(new)} candidates"
                )
            for key, value in zip(new, values):
                value = float(value)
                if not math.isfinite(value):
                    self._scores[key] = -math.inf  # cannot be measured: ranks last
                else:
                    self._scores[key] = -value if self.minimise else value
        return [self._scores[spec.arch_id] for spec in specs]

    def state_dict(self) -> dict[str, Any]:
        return {"base": self.base.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base.load_state_dict(state["base"])

    def close(self) -> None:
        self.base.close()
