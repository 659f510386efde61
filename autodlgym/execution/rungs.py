"""Promotion-based asynchronous successive halving (ASHA; Li et al. 2020, "A System for
Massively Parallel Hyperparameter Tuning") over trial fidelities.

Rung ``k`` trains a candidate for ``min_epochs * reduction_factor**k`` epochs, up to the full
fidelity (the last rung). A rung below one epoch trains the first whole batches of the first
epoch that fit in that fraction of the training set (``Fidelity.max_examples``; the order comes
from the run's seed, so every candidate sees a prefix of the same sequence of examples): the
first rung costs a fraction of an epoch and its training is the beginning of a longer trial's.
Whenever a worker is free the runner asks :meth:`RungScheduler.promotion` first: a candidate
in the top ``1/reduction_factor`` of its rung that has not gone up yet is promoted to
the next rung, the highest rung first; otherwise a new candidate from the searcher starts at
rung 0. Many candidates are tried cheaply and the best are trained long; no candidate waits for
a rung to fill, so one worker and many work the same way.

A promoted candidate is a new trial of the same spec at the next rung's fidelity. It continues
from the lower rung's trial where that trial saved its training state (the runner asks
:meth:`RungScheduler.source` which trial that is; see :func:`~autodlgym.trial.can_continue`
for when continuing equals training from scratch), else it is trained from its initialisation
again (the same seed gives the same start, so its curve begins as the lower rung's did). The
scheduler keeps no state of its own: it is rebuilt from the store's finished and pending
trials, so a resumed run promotes as if it had never stopped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from autodlgym.errors import AutoDLError
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import (  # noqa: F401 - the ladder's home is trial.py; re-exported here
    MIN_EPOCHS,
    OK,
    REDUCTION_FACTOR,
    STOPPED,
    Fidelity,
    TrialResult,
    fidelity_level,
    rung_fidelities,
)


class RungScheduler:
    """Decides which candidate trains next at which fidelity (see the module docstring).

    Args:
        rungs: the fidelities of the rungs, cheapest first (:func:`rung_fidelities`).
        reduction_factor: the top ``1/reduction_factor`` of a rung may go up.
    """

    def __init__(self, rungs: list[Fidelity], reduction_factor: int = REDUCTION_FACTOR) -> None:
        if not rungs:
            raise AutoDLError("a rung scheduler needs at least one rung")
        self.rungs = list(rungs)
        self.reduction_factor = int(reduction_factor)
        # rungs are known by how much they train, not their time limits, which follow the
        # time budget (a resume may extend it)
        self._index = {_level(f): k for k, f in enumerate(self.rungs)}
        # per rung: arch_id -> (score, spec) of finished trials; arch_ids started there
        self._scores: list[dict[str, tuple[float, ArchSpec]]] = [{} for _ in self.rungs]
        # per rung: arch_id -> the trial whose score ranks there
        self._trials: list[dict[str, int]] = [{} for _ in self.rungs]
        self._started: list[set[str]] = [set() for _ in self.rungs]

    @property
    def first(self) -> Fidelity:
        """The fidelity a new candidate starts at."""
        return self.rungs[0]

    def rung_of(self, fidelity: Fidelity) -> int | None:
        """The rung index of ``fidelity`` (None: not a rung of this ladder)."""
        return self._index.get(_level(fidelity))

    def started(self, spec: ArchSpec, fidelity: Fidelity) -> None:
        """A trial of ``spec`` at ``fidelity`` went to a worker (or was left in flight)."""
        k = self.rung_of(fidelity)
        if k is not None:
            self._started[k].add(spec.arch_id)

    def finished(
        self, spec: ArchSpec, fidelity: Fidelity, result: TrialResult, trial_id: int | None = None
    ) -> None:
        """A trial ended. Trials with a usable score rank in their rung (``ok``, and
        ``stopped`` ones: cut at their time limit or stopped by the deadline, with the score
        they reached); any other end leaves the candidate where it was (it is never
        promoted from that rung)."""
        k = self.rung_of(fidelity)
        if k is None:
            return
        self._started[k].add(spec.arch_id)
        score = result.val_score
        if result.status in (OK, STOPPED) and score is not None and math.isfinite(score):
            if spec.arch_id not in self._scores[k]:
                self._scores[k][spec.arch_id] = (float(score), spec)
                if trial_id is not None:
                    self._trials[k][spec.arch_id] = int(trial_id)

    def restore(
        self,
        finished: Iterable[
            tuple[ArchSpec, Fidelity, TrialResult] | tuple[ArchSpec, Fidelity, TrialResult, int]
        ],
        pending: Iterable[tuple[ArchSpec, Fidelity]],
    ) -> None:
        """Rebuild the rungs from a run's finished (with their trial ids where known) and
        in-flight trials."""
        for spec, fidelity, result, *trial_id in finished:
            self.finished(spec, fidelity, result, *trial_id)
        for spec, fidelity in pending:
            self.started(spec, fidelity)

    def promotion(self) -> tuple[ArchSpec, Fidelity] | None:
        """The candidate to promote now and the fidelity it goes to, or None (start a new
        candidate). The highest rung is looked at first; within a rung the best score wins."""
        for k in range(len(self.rungs) - 2, -1, -1):
            scores = self._scores[k]
            n_top = len(scores) // self.reduction_factor
            if n_top == 0:
                continue
            ranked = sorted(scores.items(), key=lambda kv: (-kv[1][0], kv[0]))[:n_top]
            for arch_id, (_, spec) in ranked:
                if arch_id not in self._started[k + 1]:
                    self._started[k + 1].add(arch_id)
                    return spec, self.rungs[k + 1]
        return None

    def source(self, spec: ArchSpec, fidelity: Fidelity) -> tuple[int, Fidelity] | None:
        """The trial of ``spec`` ranked at the rung below ``fidelity``'s and that rung's
        fidelity: where a promotion to ``fidelity`` may continue from (None: the first rung,
        or no such trial known)."""
        k = self.rung_of(fidelity)
        if k is None or k == 0:
            return None
        trial_id = self._trials[k - 1].get(spec.arch_id)
        return None if trial_id is None else (trial_id, self.rungs[k - 1])

    def promotable(self, fidelity: Fidelity) -> bool:
        """Whether a trial at ``fidelity`` may still be promoted (a rung below the last)."""
        k = self.rung_of(fidelity)
        return k is not None and k < len(self.rungs) - 1

    def hopeless(self, more: int) -> list[int]:
        """Trials that can never be promoted although at most ``more`` results still join
        each rung: not promoted yet and ranked too low for the top ``1/reduction_factor`` of
        the rung even if every result to come ranked below them."""
        out = []
        for k in range(len(self.rungs) - 1):
            scores = self._scores[k]
            n_top = (len(scores) + max(0, int(more))) // self.reduction_factor
            ranked = sorted(scores.items(), key=lambda kv: (-kv[1][0], kv[0]))
            for arch_id, _ in ranked[n_top:]:
                if arch_id not in self._started[k + 1] and arch_id in self._trials[k]:
                    out.append(self._trials[k][arch_id])
        return out

    def counts(self) -> list[tuple[int, int]]:
        """Per rung: (trials started, trials ranked)."""
        return [(len(s), len(r)) for s, r in zip(self._started, self._scores)]


_level = fidelity_level
