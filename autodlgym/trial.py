"""Typed records that travel between searchers, executors, the trainer and the store."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from autodlgym.errors import AutoDLError

OK = "ok"
PRUNED = "pruned"
NAN = "nan"
OOM = "oom"
TIMEOUT = "timeout"
ERROR = "error"
WORKER_LOST = "worker_lost"
#: a candidate over the budget, never trained (told to searchers and reported by envs; a run
#: never stores it)
OVER_BUDGET = "over_budget"
FAILURES = (NAN, OOM, TIMEOUT, ERROR, WORKER_LOST, OVER_BUDGET)

#: Why a trial was trained: proposed by a searcher, a re-evaluation of a finished search's
#: best specs (``autodlgym retrain``, ``--final-seeds``), or a scikit-learn yardstick fitted on
#: the same split (``baseline``: its spec is ``{"baseline": NAME}``). A run keeps them in one
#: store; searchers and budgets see only the search phase.
SEARCH = "search"
RETRAIN = "retrain"
BASELINE = "baseline"
#: scored by a one-shot evaluator (inherited weights, not trained on its own): a phase of its
#: own, so its scores never rank beside trained ones
ONESHOT = "oneshot"
PHASES = (SEARCH, RETRAIN, BASELINE, ONESHOT)
#: the search's time budget ran out while the trial trained, or the trial reached its own
#: time limit after training (``TrialResult.cut``): it keeps the scores it reached
STOPPED = "stopped"
STATUSES = (OK, PRUNED, NAN, OOM, TIMEOUT, ERROR, WORKER_LOST, OVER_BUDGET, STOPPED)


@dataclass(frozen=True)
class Fidelity:
    """How much training a candidate gets.

    Fidelities below one epoch come from ``max_steps`` (a number of training steps),
    ``max_examples`` (the first steps of the same training, covering a number of examples) or
    ``max_train_samples`` (a fraction of the training set).

    Args:
        epochs: passes over the (possibly subsampled) training set.
        max_train_samples: train on at most this many examples (None: all).
        time_limit: seconds the whole trial may take (building, FLOP counting, diagnostics,
            training and evaluation) before it ends with status ``timeout`` (None: no limit).
        max_steps: stop training after this many optimiser steps, inside an epoch if need be
            (None: ``epochs`` decides).
        phase: ``"search"``, ``"retrain"``, ``"baseline"`` or ``"oneshot"``; the trainer
            ignores it, the store and the runner keep the phases apart (a retrained evaluation
            never counts as a search trial; a one-shot score never ranks beside a trained one).
        max_examples: stop training after the first ``max_examples // B`` steps (at least
            one), ``B`` the examples of a whole batch (the spec's ``batch_size``, at most the
            training set): at most ``max_examples`` examples of the first epoch, in the order
            a longer trial of the same spec and seed visits them, so that trial can continue
            from it (:func:`can_continue`; None: ``epochs`` and ``max_steps`` decide).
    """

    epochs: int = 1
    max_train_samples: int | None = None
    time_limit: float | None = None
    max_steps: int | None = None
    phase: str = SEARCH
    max_examples: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or isinstance(self.epochs, bool) or self.epochs < 1:
            raise AutoDLError(f"epochs must be a positive integer, got {self.epochs!r}")
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise AutoDLError(f"max_train_samples must be positive, got {self.max_train_samples!r}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise AutoDLError(
                f"time_limit must be a positive number of seconds, got {self.time_limit!r}"
            )
        if self.max_steps is not None and (
            not isinstance(self.max_steps, int) or isinstance(self.max_steps, bool)
            or self.max_steps < 1
        ):  # fmt: skip
            raise AutoDLError(f"max_steps must be a positive integer, got {self.max_steps!r}")
        if self.max_examples is not None and (
            not isinstance(self.max_examples, int) or isinstance(self.max_examples, bool)
            or self.max_examples < 1
        ):  # fmt: skip
            raise AutoDLError(f"max_examples must be a positive integer, got {self.max_examples!r}")

        if self.phase not in PHASES:
            raise AutoDLError(f"fidelity phase {self.phase!r} is unknown; use {', '.join(PHASES)}")

    def key(self) -> str:
        """Canonical text used to recognise an evaluation already made. The search phase and
        an unset ``max_steps`` or ``max_examples`` are left out, so keys read as they did
        before those existed."""
        d = asdict(self)
        if d["phase"] == SEARCH:
            del d["phase"]
        for name in ("max_steps", "max_examples"):
            if d[name] is None:
                del d[name]
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_key(cls, key: str) -> Fidelity:
        return cls(**json.loads(key))


@dataclass
class TrialResult:
    """What one evaluation of one candidate produced.

    ``val_score`` is what searchers see; ``test_score`` is for reporting only. Scores are
    higher-is-better (accuracy, or R^2 for regression tasks); failures have None scores.
    ``latency`` is the inference latency in seconds where the task measures one (tabular
    benchmarks such as NAS-Bench-Graph record it), else None.

    Seconds: ``train_seconds`` is the time spent in training steps and ``eval_seconds`` the
    time spent scoring. A failed trial (nan, oom, timeout, error, worker_lost) records its
    whole wall time, from its start to its failure, as ``train_seconds`` + ``eval_seconds``
    (building, FLOP counting and diagnostics included), so a trial ended by a limit of N s
    records more than N s and a run's compute adds up.

    Time limits: ``limit_seconds`` is the limit the trial ran under; ``cut`` is True when it
    reached it after training some steps: it then ends ``stopped`` with the epochs, steps and
    scores it completed (see :func:`~autodlgym.training.trainer.train_and_score`), and
    ``throughput`` is the training FLOPs per second its process measured (adaptive limits).

    Memory: ``peak_rss_mb`` is the training process's peak resident set (MiB) during this trial
    (Linux ``VmHWM``, reset when the trial starts; it includes what the process held before,
    such as torch and the task's data; None where it cannot be reset per trial).
    ``peak_gpu_mb`` is ``torch.cuda.max_memory_allocated`` during the trial (MiB of tensors this
    process allocated on its GPU; None on CPU).
    """

    status: str
    val_score: float | None = None
    test_score: float | None = None
    train_loss: float | None = None
    params: int | None = None
    trainable_params: int | None = None
    flops: int | None = None
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    peak_rss_mb: float | None = None
    peak_gpu_mb: float | None = None
    epochs_run: int = 0
    steps_run: int = 0
    curve: list[dict[str, float]] = field(default_factory=list)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    device: str = "cpu"
    worker: str = ""
    latency: float | None = None
    #: seconds the trial was allowed (its fidelity's limit, or the adaptive one); None: none
    limit_seconds: float | None = None
    #: the training FLOPs per second its process measured by its end (adaptive limits only)
    throughput: float | None = None
    #: True when the trial reached its time limit after training and kept its scores
    #: (status ``stopped``); None otherwise
    cut: bool | None = None
    #: the trial it continued from (a promotion under ASHA that loaded the lower rung's saved
    #: training state instead of training from scratch); None: trained from its start
    continued_from: int | None = None
    #: epochs it inherited from that trial (it trained only the rest), a fraction where that
    #: trial stopped inside an epoch (a first rung of ``max_examples``); None: none
    continued_epochs: float | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown trial status {self.status!r}")

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrialResult:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @classmethod
    def failure(cls, status: str, message: str, **kw: Any) -> TrialResult:
        return cls(
            status=status,
            message=message.strip().splitlines()[-1][:500] if message.strip() else status,
            **kw,
        )


@dataclass(frozen=True)
class TrialJob:
    """One unit of work handed to an executor: train ``spec_json`` on ``task`` at ``fidelity``."""

    trial_id: int
    spec_json: str
    task: str
    fidelity: Fidelity
    seed: int
    task_kwargs: tuple[tuple[str, Any], ...] = ()
    prune: bool = False
    #: ``time.time()`` at which the search's budget ends: a trial still training then stops at
    #: its next batch with status ``stopped`` (None: no deadline)
    deadline: float | None = None
    #: validation checks (pruning reports) per epoch; more than 1 gives the pruner rungs below
    #: one epoch
    checks_per_epoch: int = 1
    #: the trial's time limit follows its worker's measured speed, at most
    #: ``fidelity.time_limit`` (:mod:`autodlgym.training.limits`)
    adaptive_limit: bool = False
    #: a file to save the trial's training state to when it trains all its epochs (a rung
    #: trial that may be promoted; :func:`~autodlgym.training.trainer.save_state`)
    checkpoint: str | None = None
    #: a saved training state to continue from (a promoted trial), and the trial that saved
    #: it; a missing or unsuitable file trains from scratch
    resume_from: str | None = None
    continued_from: int | None = None


# The ladder of fidelities a rung scheduler climbs (tasks say which ladder they have) ------
#: epochs of the first rung and the reduction factor of the default ladder
MIN_EPOCHS = 1 / 3
REDUCTION_FACTOR = 3


def fidelity_level(fidelity: Fidelity) -> tuple[int, int | None, int | None, int | None]:
    """How much a fidelity trains (all of it but the time limit)."""
    return fidelity.epochs, fidelity.max_train_samples, fidelity.max_steps, fidelity.max_examples


def can_continue(saved: Fidelity, fidelity: Fidelity) -> bool:
    """Whether a trial at ``fidelity`` can continue from the training state of a trial at
    ``saved`` and still equal a trial trained from scratch at ``fidelity``: the saved trial's
    training is a prefix of this one's. That asks for the same training set
    (``max_train_samples``), whole epochs here (no ``max_steps`` or ``max_examples``), and
    fewer epochs there, or as many where the saved trial stopped early at its ``max_steps`` or
    ``max_examples`` (inside an epoch: the trial continues from the batch it stopped at, in the
    same order). The trainer's settings do not change with the epoch (a constant learning
    rate, no schedule), so the optimiser's state carries over exactly. A rung of one epoch on
    a subset (``max_train_samples``) trains on other data than the whole set, so a promotion
    from it to whole epochs is trained from scratch."""
    capped = saved.max_steps is not None or saved.max_examples is not None
    return (
        fidelity.max_steps is None
        and fidelity.max_examples is None
        and saved.max_train_samples == fidelity.max_train_samples
        and (saved.epochs < fidelity.epochs or (capped and saved.epochs == fidelity.epochs))
    )


def rung_fidelities(
    full: Fidelity,
    n_train: int,
    min_epochs: float = MIN_EPOCHS,
    reduction_factor: int = REDUCTION_FACTOR,
    first_time_limit: float | None = None,
    prefix: bool = True,
) -> list[Fidelity]:
    """The ladder of fidelities from ``min_epochs`` up to ``full`` (the last rung).

    Args:
        full: the full fidelity (its time limit applies per epoch to the lower rungs).
        n_train: training examples ``full`` trains on (after its ``max_train_samples``).
        min_epochs: epochs of the first rung; below 1 it is the first batches of an epoch
            over ``full``'s training set, covering that fraction of it (``max_examples``), so
            a promotion continues from it.
        reduction_factor: each rung trains this many times longer than the one below.
        first_time_limit: at most this many seconds for a first-rung trial, and
            ``reduction_factor`` times more per rung up (the last rung keeps ``full``'s), so
            a candidate far too slow for the search's budget stops early.
        prefix: False gives the earlier ladder, whose rung below one epoch is one epoch on a
            fixed subset of that many examples (``max_train_samples``), which promotions
            cannot continue from (a run that began with it resumes with it).

    Raises:
        AutoDLError: bad settings.
    """
    if not min_epochs > 0:
        raise AutoDLError(f"min_epochs must be positive, got {min_epochs!r}")
    if not isinstance(reduction_factor, int) or reduction_factor < 2:
        raise AutoDLError(f"reduction_factor must be an integer >= 2, got {reduction_factor!r}")
    per_epoch = full.time_limit / full.epochs if full.time_limit is not None else None
    out: list[Fidelity] = []
    epochs = float(min_epochs)
    cap = first_time_limit
    while epochs < full.epochs - 1e-9:
        e = max(1, round(epochs))
        limit = per_epoch * e if per_epoch else None
        if cap is not None:
            limit = cap if limit is None else min(limit, cap)
        if epochs < 1 and prefix:
            k = max(1, round(epochs * n_train))
            fid = Fidelity(1, full.max_train_samples, limit, max_examples=k)
        elif epochs < 1:
            fid = Fidelity(1, max(1, round(epochs * n_train)), limit)
        else:
            fid = Fidelity(e, full.max_train_samples, limit)
        if not out or fidelity_level(fid) != fidelity_level(out[-1]):
            out.append(fid)
        epochs *= reduction_factor
        cap = cap * reduction_factor if cap is not None else None
    out.append(full)
    return out
