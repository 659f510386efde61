"""The progress display of a search, readable in a terminal, a notebook and a log file.

Two styles:

- ``"bar"`` (in a terminal or a notebook): tqdm's bar (``tqdm.auto``: a widget in a notebook,
  text in a terminal), redrawn when a trial starts or ends and while trials train (about twice a
  second in-process, once a second on Ray). With a time budget it counts time
  (``0:41/15:00 |███   | 14:19 left``), otherwise trials (``120/300 |███   | 00:41<01:02``).
  Beside it: the best validation score so far, the failures, and the trials in flight as
  ``#12 conv x2 (64) e1/3 4s`` (``e``: the epochs trained of the trial's fidelity; a trial that
  reports no training, such as a table lookup, shows none). The text is cut to the terminal's
  width and the bar keeps its width (10 characters at 80 columns), so the line never wraps.
- ``"lines"`` (stderr goes to a file or a pipe): a plain line every tenth of the trial budget
  and at least once a minute, e.g. ``trial 120/300 · best 0.8053 (#69) · 2 failed · 0:41
  elapsed``; no carriage-return redraws, so a log stays small.

:func:`wants_progress` says whether stderr is a terminal or a notebook; :func:`progress_style`
chooses the style of the searches started inside it (``"auto"`` by default: a bar when
:func:`wants_progress`, plain lines otherwise).
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TextIO

from autodlgym.clock import now as _now
from autodlgym.errors import AutoDLError
from autodlgym.trial import FAILURES, TrialResult

#: longest spec summary shown for a trial in flight (less when the terminal is narrow)
SUMMARY_CHARS = 32
#: at most this many trials in flight are listed
SHOWN_IN_FLIGHT = 3
#: the bar is never drawn narrower than this many characters
MIN_BAR = 10
#: the ``"lines"`` style prints at least this often (seconds) while a search runs
LINE_EVERY_S = 60.0
#: ... and every this fraction of the trial budget
LINE_FRACTION = 0.1
#: terminal width assumed when the stream cannot tell (a notebook, a StringIO)
DEFAULT_WIDTH = 100

STYLES = ("auto", "bar", "lines")
_STYLE: ContextVar[str] = ContextVar("autodlgym_progress_style", default="auto")


def wants_progress(stream: TextIO | None = None) -> bool:
    """True in a Jupyter / IPython kernel or when ``stream`` (default stderr) is a terminal."""
    if "ipykernel" in sys.modules:
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise AutoDLError(f"progress style {style!r} is unknown; use one of {', '.join(STYLES)}")


@contextmanager
def progress_style(style: str) -> Iterator[None]:
    """Searches started inside this block show their progress as ``style``: ``"bar"``,
    ``"lines"`` or ``"auto"`` (a bar in a terminal or a notebook, plain lines otherwise)."""
    _check_style(style)
    token = _STYLE.set(style)
    try:
        yield
    finally:
        _STYLE.reset(token)


# Text helpers -------------------------------------------------------------------------------
def plural(n: int, word: str) -> str:
    """``1 trial``, ``2 trials``, ``0 trials``."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def clock(seconds: float) -> str:
    """``0:41``, ``12:05``, ``1:02:03``."""
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def short_seconds(seconds: float) -> str:
    """A trial's time so far: ``4s``, ``1m05s``, ``2h03m``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def epochs_text(done: float, total: float) -> str:
    """Epochs trained of a fidelity: ``1/3`` on whole epochs, ``0.2/2`` within one (tenths,
    rounded down: never more than trained)."""
    tenths = math.floor(max(0.0, done) * 10 + 1e-9) / 10
    return f"{tenths:g}/{total:g}"


def shorten(text: str, width: int, ellipsis: str = "…") -> str:
    """``text`` in at most ``width`` characters: cut at a space when that keeps most of it."""
    if len(text) <= width:
        return text
    if width <= len(ellipsis):
        return text[:width]
    cut = text[: width - len(ellipsis)]
    space = cut.rfind(" ")
    if space >= len(cut) // 2:
        cut = cut[:space]
    return cut.rstrip(" >,;") + ellipsis


def _encodable(stream: Any, text: str) -> bool:
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (LookupError, UnicodeEncodeError):
        return False
    return True


def _width(stream: Any) -> int:
    """The terminal's width in columns (``$COLUMNS`` or :data:`DEFAULT_WIDTH` when the
    stream is not a terminal)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns


@dataclass
class _Running:
    summary: str
    epochs: float  # the trial's full fidelity
    started: float
    done: float | None = None  # epochs trained so far (a fraction within an epoch); None: none told


class SearchProgress:
    """The display (see the module docstring); does nothing when ``enabled`` is false.

    Args:
        enabled: show it at all.
        trials: the trial budget (None: none).
        time_budget: the time budget in seconds (None: none); when given the bar counts time.
        finished: trials finished before this session (a resumed run).
        elapsed: seconds of search before this session.
        best: the best validation score so far.
        file: where to draw (default stderr).
        style: ``"bar"``, ``"lines"`` or ``"auto"``; default: the :func:`progress_style` in
            force (``"auto"`` unless chosen).
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
        style: str | None = None,
    ) -> None:
        self.trials = trials
        self.time_budget = time_budget
        self.finished = finished
        self.failed = 0
        self.best = best
        self.best_trial: int | None = None
        self.running: dict[int, _Running] = {}
        self._elapsed_before = elapsed
        self._start = _now()
        self.file = file or sys.stderr
        self.bar: Any = None
        self.style: str | None = None  # "bar" or "lines" once enabled
        self.sep = " · " if _encodable(self.file, "·…") else " - "
        self.ellipsis = "…" if self.sep == " · " else "~"
        self._line_at = (finished, _now())  # what the last line showed, and when
        if not enabled:
            return
        style = style or _STYLE.get()
        _check_style(style)
        if style == "auto":
            style = "bar" if wants_progress(self.file) else "lines"
        self.style = style
        if style == "bar":
            self.bar = _make_bar(self)
            self.refresh()

    # Events ---------------------------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        return self._elapsed_before + _now() - self._start

    def started(self, trial_id: int, summary: str, epochs: float) -> None:
        """A trial went to a worker."""
        self.running[trial_id] = _Running(summary, epochs, _now())
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
        if result.status in FAILURES:
            self.failed += 1
        score = result.val_score
        if result.ok and score is not None and (self.best is None or score > self.best):
            self.best = score
            self.best_trial = trial_id
        if self.bar is not None and self.time_budget is None:
            self.bar.update(1)
        step = self._line_step()
        if self.style == "lines" and step and self.finished % step == 0:
            self._line()
        else:
            self.refresh()

    # Text -----------------------------------------------------------------------------------
    def _best(self, with_trial: bool = False) -> str:
        if self.best is None:
            return "no ok trial yet"
        trial = f" (#{self.best_trial})" if with_trial and self.best_trial is not None else ""
        return f"best {self.best:.4f}{trial}"

    def _in_flight(self, trial_id: int, run: _Running, now: float, room: int) -> str:
        """``#12 conv x2 (64) e1/3 4s`` in at most ``room`` characters (the summary gives
        way, down to 4 characters)."""
        tail = "" if run.done is None else f" e{epochs_text(run.done, run.epochs)}"
        tail += f" {short_seconds(now - run.started)}"
        head = f"#{trial_id} "
        fits = min(SUMMARY_CHARS, room - len(head) - len(tail))
        return head + shorten(run.summary, max(fits, 4), self.ellipsis) + tail

    def status(self, width: int | None = None) -> str:
        """The text beside the bar: the trial count (when the bar counts time), the best
        score, the failures, the trials in flight; at most ``width`` characters (None: no
        limit). Trials in flight that do not fit are counted (``+2 more``)."""
        sep = self.sep
        parts = []
        if self.time_budget is not None and self.trials is not None:  # the bar counts time
            parts.append(f"{self.finished}/{self.trials} trials")
        elif self.time_budget is not None or self.trials is None:
            parts.append(plural(self.finished, "trial"))
        parts.append(self._best())
        if self.failed:
            parts.append(f"{self.failed} failed")
        text = sep.join(parts)
        limit = 10**6 if width is None else width
        now = _now()
        running = list(self.running.items())
        for i, (trial_id, run) in enumerate(running[:SHOWN_IN_FLIGHT]):
            left = len(running) - i - 1
            more = f"{sep}+{left} more" if left else ""
            room = limit - len(text) - len(sep) - len(more)
            piece = self._in_flight(trial_id, run, now, room)
            if len(piece) > room or room < 12:
                more = f"{sep}+{left + 1} more"
                return text + more if len(text) + len(more) <= limit else text[:limit]
            text += sep + piece
        if len(running) > SHOWN_IN_FLIGHT:
            text += f"{sep}+{len(running) - SHOWN_IN_FLIGHT} more"
        return text[:limit]

    def line(self) -> str:
        """The ``"lines"`` style's line: ``trial 120/300 · best 0.8053 (#69) · 2 failed ·
        0:41 elapsed``, then up to three trials in flight."""
        sep = self.sep
        if self.trials is not None:
            parts = [f"trial {self.finished}/{self.trials}"]
        else:
            parts = [plural(self.finished, "trial")]
        parts.append(self._best(with_trial=True))
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.time_budget is not None:
            parts.append(f"{clock(self.elapsed)} of {clock(self.time_budget)} elapsed")
        else:
            parts.append(f"{clock(self.elapsed)} elapsed")
        now = _now()
        for trial_id, run in list(self.running.items())[:SHOWN_IN_FLIGHT]:
            parts.append(self._in_flight(trial_id, run, now, SUMMARY_CHARS + 20))
        if len(self.running) > SHOWN_IN_FLIGHT:
            parts.append(f"+{len(self.running) - SHOWN_IN_FLIGHT} more")
        return sep.join(parts)

    def _line_step(self) -> int:
        """Trials between two lines: a tenth of the trial budget (0: by time only)."""
        if self.trials is None:
            return 0
        return max(1, math.ceil(self.trials * LINE_FRACTION))

    def _line_seconds(self) -> float:
        """Seconds between two lines at most: a minute, or a tenth of a time budget (when
        there is no trial budget), but not under 10 s."""
        if self.trials is None and self.time_budget is not None:
            return max(10.0, min(LINE_EVERY_S, self.time_budget * LINE_FRACTION))
        return LINE_EVERY_S

    def _line(self) -> None:
        print(self.line(), file=self.file, flush=True)
        self._line_at = (self.finished, _now())

    # Drawing --------------------------------------------------------------------------------
    def bar_room(self, columns: int, bar: int) -> int:
        """Characters left for the status beside a bar ``bar`` wide in a terminal ``columns``
        wide (hours of elapsed and remaining time reserved: the line never wraps)."""
        if self.time_budget is not None:
            total = clock(self.time_budget)
            fixed = len(f"{total}/{total} || {total} left") + bar
        elif self.trials is not None:
            fixed = len(f"{self.trials}/{self.trials} || 0:00:00<0:00:00") + bar
        else:
            fixed = len("0:00:00")  # no bar
        return max(0, columns - fixed - 1)

    def refresh(self) -> None:
        if self.style == "lines":
            if _now() - self._line_at[1] >= self._line_seconds():
                self._line()
            return
        if self.bar is None:
            return
        if self.time_budget is not None:
            self.bar.n = min(self.elapsed, float(self.time_budget))
        self.bar.refresh()

    def close(self) -> None:
        if self.style == "lines":
            if self.finished != self._line_at[0]:
                self._line()
            return
        if self.bar is not None:
            self.refresh()
            self.bar.close()


_BAR_CLASS: Any = None

#: tqdm's bar_format for each kind of budget; ``<bar>`` becomes ``{bar:WIDTH}`` in a terminal
_FORMATS = {
    "time": "{clock} |<bar>| {left} left{status}",
    "trials": "{n_fmt}/{total_fmt} |<bar>| {elapsed}<{remaining}{status}",
    "open": "{elapsed}{status}",
}


def bar_width(columns: int) -> int:
    """The bar's width in a terminal of ``columns``: 10 at 80 columns, up to 30 when wide."""
    return max(MIN_BAR, min(30, (columns - 60) // 2))


def _make_bar(progress: SearchProgress) -> Any:
    """tqdm's bar (a widget in a notebook) with the status text of ``progress`` beside it."""
    global _BAR_CLASS
    if _BAR_CLASS is None:
        from tqdm.auto import tqdm

        class _Bar(tqdm):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, owner: SearchProgress, kind: str, **kw: Any) -> None:
                self.owner = owner
                self.kind = kind
                super().__init__(*args, **kw)

            @property
            def _time(self) -> Any:
                """tqdm's elapsed time and rate (hence its ETA) read this process's clock."""
                return _now

            @_time.setter
            def _time(self, value: Any) -> None:
                pass  # tqdm sets time.time here

            @property
            def format_dict(self) -> dict[str, Any]:
                """tqdm's fields plus ``status``, ``clock`` and ``left``, fitted to the width
                of the terminal at each draw."""
                d = super().format_dict
                owner = self.owner
                columns = _width(owner.file)
                width = bar_width(columns)
                # a notebook draws a widget in place of "{bar}": no width there
                bar = "{bar}" if hasattr(self, "container") else f"{{bar:{width}}}"
                d["bar_format"] = _FORMATS[self.kind].replace("<bar>", bar)
                status = owner.status(max(0, owner.bar_room(columns, width) - len(owner.sep)))
                d["status"] = owner.sep + status if status else ""
                budget = owner.time_budget
                if budget is not None:
                    used = min(owner.elapsed, budget)
                    d["clock"] = f"{clock(used)}/{clock(budget)}"
                    d["left"] = clock(budget - used)
                return d

        _BAR_CLASS = _Bar
    common = dict(file=progress.file, dynamic_ncols=True, leave=True, owner=progress)
    if progress.time_budget is not None:
        budget = progress.time_budget
        return _BAR_CLASS(
            total=round(budget),
            initial=min(round(progress._elapsed_before), round(budget)),
            unit="s",
            kind="time",
            **common,
        )
    kind = "trials" if progress.trials is not None else "open"
    return _BAR_CLASS(
        total=progress.trials, initial=progress.finished, unit="trial", kind=kind, **common
    )
