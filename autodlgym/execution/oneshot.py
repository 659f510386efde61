"""One-shot scoring as an executor: the run's evaluator, trained once, scores each job.

``--fidelity oneshot`` (``RunConfig.oneshot``) swaps the trainer for a one-shot evaluator of
:mod:`autodlgym.oneshot` over the run's space. Its shared weights are trained once per run
and stored in ``RUN/oneshot/<kind>.pt``; a resumed run loads them (a file made for another
space, task, epochs or seed is not used, and they are trained again). Scoring takes
milliseconds, so it runs in the driver, one job at a time, with or without Ray workers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from autodlgym.execution.local import InProcessExecutor
from autodlgym.trial import ERROR, NAN, OK, TrialJob, TrialResult

#: where a run keeps its one-shot evaluator's weights
ONESHOT_DIR = "oneshot"


def check_space(space: Any, task: Any) -> None:
    """Raise a one-line error when a one-shot evaluator cannot cover ``space`` on ``task``
    (a lookup task, a graph task, or too many networks to enumerate), before anything is
    written."""
    from autodlgym.errors import AutoDLError
    from autodlgym.oneshot import layout
    from autodlgym.oneshot.base import MAX_NETWORKS, MAX_PARTITIONS

    if task.io is None:
        raise AutoDLError(
            f"--fidelity oneshot needs a task with data to train shared weights on; "
            f"{task.name!r} is a lookup table"
        )
    if task.io.is_graph:  # the evaluators train shared weights on array batches
        raise AutoDLError(
            f"--fidelity oneshot trains shared weights on array inputs and {task.name!r} is a "
            "graph task; search it with --fidelity trained (the default)"
        )
    layout.networks_of(space, MAX_NETWORKS)
    layout.partitions_of(space, MAX_PARTITIONS)


class OneShotExecutor(InProcessExecutor):
    """Scores jobs with a trained one-shot evaluator, in this process (``wait`` scores the
    oldest job). A spec the evaluator cannot score ends ``error`` with the reason; outputs
    that are not finite end ``nan``.

    Args:
        evaluator: a fitted :class:`~autodlgym.oneshot.base.OneShotEvaluator`.
    """

    def __init__(self, evaluator: Any) -> None:
        super().__init__()
        self.evaluator = evaluator

    def run(self, job: TrialJob) -> TrialResult:
        import math

        from autodlgym.searchspace.spec import ArchSpec

        start = time.perf_counter()
        scored = self.evaluator.score(ArchSpec.from_json(job.spec_json))
        seconds = time.perf_counter() - start
        if scored.status != "ok":
            result = TrialResult.failure(ERROR, scored.message, eval_seconds=seconds)
        elif not math.isfinite(scored.val_score):
            result = TrialResult.failure(
                NAN, "outputs on inherited weights are not finite", eval_seconds=seconds
            )
        else:
            result = TrialResult(status=OK, val_score=scored.val_score, eval_seconds=seconds)
        result.device = str(self.evaluator.device)
        result.worker = f"oneshot-{self.evaluator.kind}"
        return result


def make_oneshot_executor(config: Any, task: Any, space: Any, run_dir: Path) -> OneShotExecutor:
    """The run's evaluator, loaded from ``RUN/oneshot/`` or trained once and stored there."""
    from autodlgym.oneshot import EVALUATORS

    device = config.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    evaluator = EVALUATORS[config.oneshot](
        space, task, epochs=config.epochs, seed=config.seed, device=device
    )
    path = Path(run_dir) / ONESHOT_DIR / f"{config.oneshot}.pt"
    if not evaluator.load(path):
        evaluator.fit()
        evaluator.save(path)
    return OneShotExecutor(evaluator)
