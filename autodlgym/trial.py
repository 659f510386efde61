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
STATUSES = (OK, PRUNED, NAN, OOM, TIMEOUT, ERROR, WORKER_LOST)
FAILURES = (NAN, OOM, TIMEOUT, ERROR, WORKER_LOST)


@dataclass(frozen=True)
class Fidelity:
    """How much training a candidate gets.

    Args:
        epochs: passes over the (possibly subsampled) training set.
        max_train_samples: train on at most this many examples (None: all).
        time_limit: seconds of training before the trial ends with status ``timeout``
            (None: no limit).
    """

    epochs: int = 1
    max_train_samples: int | None = None
    time_limit: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or isinstance(self.epochs, bool) or self.epochs < 1:
            raise AutoDLError(f"epochs must be a positive integer, got {self.epochs!r}")
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise AutoDLError(f"max_train_samples must be positive, got {self.max_train_samples!r}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise AutoDLError(
                f"time_limit must be a positive number of seconds, got {self.time_limit!r}"
            )

    def key(self) -> str:
        """Canonical text used to recognise an evaluation already made."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

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
    curve: list[dict[str, float]] = field(default_factory=list)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    device: str = "cpu"
    worker: str = ""
    latency: float | None = None

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
