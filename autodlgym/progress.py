"""The progress display of a search: a bar that a person can read while the search runs.

When the search has a time budget the bar counts time (elapsed of the budget, and what
remains); otherwise it counts trials. Beside it: trials finished, the best validation score so
far, and each trial in flight with its spec summary, epoch ``k/N`` and seconds so far. The
display is tqdm's (``tqdm.auto``: a widget in a notebook, text in a terminal), refreshed when a
trial ends and while trials train (about twice a second in-process, once a second on Ray).

:func:`wants_progress` says whether to show it when the caller did not choose: in a terminal
or a notebook, not when stderr goes to a file or a pipe.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from autodlgym.trial import TrialResult

#: longest spec summary shown for a trial in flight
SUMMARY_CHARS = 32
#: at most this many trials in flight are listed
SHOWN_IN_FLIGHT = 3


def wants_progress(stream: TextIO | None = None) -> bool:
    """True in a Jupyter / IPython kernel or when ``stream`` (default stderr) is a terminal."""
    if "ipykernel" in sys.modules:
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@dataclass
class _Running:
    summary: str
    epochs: int  # the trial's full fidelity
    started: float
    done: float = 0.0  # epochs trained so far (a fraction within an epoch)


class SearchProgress:
    """The bar (see the module docstring); does nothing when ``enabled`` is false.

    Args:
        enabled: show it at all.
        trials: the trial budget (None: none).
        time_budget: the time budget in seconds (None: none); when given the bar counts time.
        finished: trials finished before this session (a resumed run).
        elapsed: seconds of search before this session.
        best: the best validation score so far.
        file: where to draw (default stderr).
    """

    def __init__(
        self,
        enabled: bool,
        trials: int | None,
        time_budget: float | None,
        finished: int = 0,
        elapsed: float = 0.0,
        best: float | None = None,
        file: TextIO | None = None,
    ) -> None:
        self.trials = trials
        self.time_budget = time_budget
        self.finished = finished
        self.best = best
        self.running: dict[int, _Running] = {}
        self._elapsed_before = elapsed
        self._start = time.monotonic()
        self.bar: Any = None
        if not enabled:
            return
        from tqdm.auto import tqdm

        common = dict(file=file or sys.stderr, dynamic_ncols=True, leave=True)
        if time_budget is not None:
            self.bar = tqdm(
                total=round(time_budget),
                initial=min(round(elapsed), round(time_budget)),
                unit="s",
                bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s, {remaining} left{postfix}",
                **common,
            )
        else:
            self.bar = tqdm(total=trials, initial=finished, unit="trial", **common)
        self.refresh()

    @property
    def elapsed(self) -> float:
        return self._elapsed_before + time.monotonic() - self._start

    def started(self, trial_id: int, summary: str, epochs: int) -> None:
        """A trial went to a worker."""
        self.running[trial_id] = _Running(summary, epochs, time.monotonic())
        self.refresh()

    def trained(self, trial_id: int, epochs_done: float, steps: int = 0) -> None:
        """A trial in flight reported its progress."""
        run = self.running.get(trial_id)
        if run is not None:
            run.done = epochs_done
        self.refresh()

    def ended(self, trial_id: int, result: TrialResult) -> None:
        """A trial's result was recorded."""
        self.running.pop(trial_id, None)
        self.finished += 1
        score = result.val_score
        if result.ok and score is not None and (self.best is None or score > self.best):
            self.best = score
        if self.bar is not None and self.time_budget is None:
            self.bar.update(1)
        self.refresh()

    def status(self) -> str:
        """The text beside the bar: trials finished, best score, trials in flight."""
        parts = [f"{self.finished} trials"]
        if self.best is not None:
            parts.append(f"best val {self.best:.4f}")
        now = time.monotonic()
        for trial_id, run in list(self.running.items())[:SHOWN_IN_FLIGHT]:
            summary = run.summary
            if len(summary) > SUMMARY_CHARS:
                summary = summary[: SUMMARY_CHARS - 1] + "~"
            parts.append(
                f"#{trial_id} {summary} epoch {run.done:.4g}/{run.epochs} {now - run.started:.0f}s"
            )
        if len(self.running) > SHOWN_IN_FLIGHT:
            parts.append(f"+{len(self.running) - SHOWN_IN_FLIGHT} more")
        return " | ".join(parts)

    def refresh(self) -> None:
        if self.bar is None:
            return
        if self.time_budget is not None:
            self.bar.n = min(self.elapsed, float(self.time_budget))
        self.bar.set_postfix_str(self.status(), refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.refresh()
            self.bar.close()
