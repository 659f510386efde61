"""Multi-fidelity pruning that works with any searcher.

:class:`PruningService` keeps its own Optuna study (``run_dir/pruning.db``, or in memory), apart
from whatever the searcher does, so random search, evolution or a plugin get early stopping
too (random search + Hyperband is the classic baseline). Every trial of the run that trains
with ``prune=True`` becomes one trial of this study: the worker calls :meth:`report` after each
epoch and stops when it returns True; the executor calls :meth:`finish` when the trial ends.
It implements the :class:`~autodlgym.execution.local.PruningReporter` protocol.

Pruners (Optuna's, maximising the validation score):

- ``median``: stop a trial whose best score so far is below the median of finished trials at
  the same epoch (``MedianPruner``), after ``startup_trials`` finished trials and
  ``warmup_epochs`` epochs.
- ``sha``: asynchronous successive halving (``SuccessiveHalvingPruner``): at epochs
  ``min_epochs * reduction_factor**k`` only the top ``1/reduction_factor`` go on.
- ``hyperband``: several successive-halving brackets with different aggressiveness
  (``HyperbandPruner`` from ``min_epochs`` to ``max_epochs``); trials are spread over the
  brackets by a hash of their number.
- ``none``: never stops a trial (reports are still recorded).

The service pickles (a Ray actor or a worker may hold it): its state is the study plus a map
from the run's trial ids to study trial numbers, so a copy carries the map and either opens the
same database again or, for an in-memory study, carries the study. Calls are serialised by a
lock.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodlgym.errors import AutoDLError
from autodlgym.optuna_utils import live_trial, open_study
from autodlgym.trial import OK, PRUNED, TrialResult
from autodlgym.utils import as_int

if TYPE_CHECKING:  # pragma: no cover
    import optuna

PRUNERS = ("none", "median", "sha", "hyperband")
STUDY_NAME = "autodlgym-pruning"
STUDY_FILE = "pruning.db"


class PruningService:
    """Decides after each epoch whether a trial goes on (see the module docstring).

    Args:
        pruner: ``hyperband``, ``sha``, ``median`` or ``none``.
        run_dir: where ``pruning.db`` lives; None keeps the study in memory.
        max_epochs: epochs of a full trial (Hyperband's maximum resource).
        seed: seeds the study's sampler (the pruners themselves are deterministic).
        min_epochs: epochs before the first successive-halving rung (sha, hyperband).
        reduction_factor: 1/fraction of trials promoted at each rung (sha, hyperband).
        startup_trials: median: finished trials before any trial is pruned.
        warmup_epochs: median: epochs every trial runs before it may be pruned.

    Raises:
        AutoDLError: unknown pruner or bad settings.
    """

    def __init__(
        self,
        pruner: str = "hyperband",
        run_dir: str | Path | None = None,
        max_epochs: int = 1,
        seed: int = 0,
        *,
        min_epochs: int = 1,
        reduction_factor: int = 3,
        startup_trials: int = 5,
        warmup_epochs: int = 0,
    ) -> None:
        if pruner not in PRUNERS:
            raise AutoDLError(f"unknown pruner {pruner!r}; choose one of {', '.join(PRUNERS)}")
        self.pruner = pruner
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.max_epochs = as_int("max_epochs", max_epochs, minimum=1)
        self.seed = int(seed)
        self.min_epochs = as_int("min_epochs", min_epochs, minimum=1)
        self.reduction_factor = as_int("reduction_factor", reduction_factor, minimum=2)
        self.startup_trials = as_int("startup_trials", startup_trials)
        self.warmup_epochs = as_int("warmup_epochs", warmup_epochs)
        if self.min_epochs > self.max_epochs:
            raise AutoDLError(
                f"min_epochs={self.min_epochs} exceeds max_epochs={self.max_epochs}; lower it"
            )
        self._numbers: dict[int, int] = {}  # run trial id -> study trial number
        self._open()
        # trials RUNNING in a study loaded from disk belong to a session that stopped; their
        # jobs start again from epoch 1 under a new study trial
        from optuna.trial import TrialState

        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.study.tell(frozen.number, state=TrialState.FAIL)

    def _open(self) -> None:
        import optuna

        self._lock = threading.Lock()
        self._live: dict[int, optuna.Trial] = {}
        self.study = open_study(
            self.run_dir,
            STUDY_FILE,
            STUDY_NAME,
            ["maximize"],
            sampler=optuna.samplers.RandomSampler(seed=self.seed),
            pruner=self._make_pruner(),
        )

    def _make_pruner(self) -> optuna.pruners.BasePruner:
        import optuna

        p = optuna.pruners
        if self.pruner == "median":
            # Optuna skips steps < n_warmup_steps; epochs count from 1
            return p.MedianPruner(
                n_startup_trials=self.startup_trials, n_warmup_steps=self.warmup_epochs + 1
            )
        if self.pruner == "sha":
            return p.SuccessiveHalvingPruner(
                min_resource=self.min_epochs, reduction_factor=self.reduction_factor
            )
        if self.pruner == "hyperband":
            return p.HyperbandPruner(
                min_resource=self.min_epochs,
                max_resource=self.max_epochs,
                reduction_factor=self.reduction_factor,
            )
        return p.NopPruner()

    # the PruningReporter protocol ---------------------------------------------------------
    def report(self, trial_id: int, epoch: int, value: float) -> bool:
        """Record the validation score of trial ``trial_id`` after ``epoch`` (1-based).

        Returns:
            True when the trial should stop now; never after epoch ``max_epochs``. A
            non-finite score always stops it.
        """
        with self._lock:
            number = self._numbers.get(trial_id)
            if number is None:
                trial = self.study.ask()
                self._numbers[trial_id] = number = trial.number
                self._live[number] = trial
            trial = self._live.get(number)
            if trial is None:  # opened before a pickle round trip
                trial = self._live[number] = live_trial(self.study, number)
            value = float(value)
            if not math.isfinite(value):
                return True
            trial.report(value, int(epoch))
            # after the last epoch stopping saves nothing and would only relabel an ok trial
            return int(epoch) < self.max_epochs and bool(trial.should_prune())

    def finish(self, trial_id: int, result: TrialResult) -> None:
        """Close the study trial of ``trial_id``: COMPLETE with ``val_score`` for ``ok``,
        PRUNED for ``pruned``, FAIL otherwise. A trial that never reported is ignored. A
        later report under the same id (a retried job) opens a new study trial."""
        from optuna.trial import TrialState

        with self._lock:
            number = self._numbers.pop(trial_id, None)
            if number is None:
                return
            self._live.pop(number, None)
            score = result.val_score
            if result.status == OK and score is not None and math.isfinite(score):
                self.study.tell(number, float(score), skip_if_finished=True)
            elif result.status == PRUNED:
                self.study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
            else:
                self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)

    def close(self) -> None:
        """Forget live trial handles (the study stays in its database)."""
        self._live.clear()

    # pickling -----------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        # an in-memory study travels with the copy; a database is opened again
        drop = ("_lock", "_live") if self.run_dir is None else ("_lock", "_live", "study")
        return {k: v for k, v in self.__dict__.items() if k not in drop}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "study" in state:
            self._lock = threading.Lock()
            self._live = {}
        else:
            self._open()
