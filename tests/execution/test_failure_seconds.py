"""A trial that fails in the executor records the seconds it ran, not 0."""

from __future__ import annotations

import time

import autodlgym.tasks
from autodlgym.execution.local import run_job
from autodlgym.searchspace.space import SearchSpace
from autodlgym.trial import ERROR, Fidelity, TrialJob


class _BrokenTask:
    """A task whose evaluation runs a while, then raises."""

    def evaluate(self, *args, **kwargs):
        time.sleep(0.2)
        raise RuntimeError("the evaluation broke")


def test_a_job_whose_evaluation_raises_records_the_seconds_it_ran(monkeypatch):
    monkeypatch.setattr(autodlgym.tasks, "get_task", lambda *a, **kw: _BrokenTask())
    spec = SearchSpace.default().sample(0)
    result = run_job(TrialJob(0, spec.to_json(), "digits", Fidelity(), 0))
    assert result.status == ERROR and "the evaluation broke" in result.message
    assert result.train_seconds >= 0.2 and result.eval_seconds == 0.0
