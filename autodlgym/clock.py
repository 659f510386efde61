"""The time every deadline, time limit and elapsed-time display reads: one replaceable clock.

The search loop (its time budget and the deadline it hands to trials), the trainer (a trial's
time limit and the search's deadline), the executors' trial seconds and the progress bar read
the time through :func:`now` and :func:`wall`. :func:`use_clock` replaces the clock of this
process for a while, so tests drive those rules with a :class:`FakeClock` exactly, whatever the
machine's speed. A clock is per process: trials on Ray workers read their worker's own clock.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


class Clock:
    """The system's time: ``now`` for durations (monotonic), ``wall`` for instants shared
    between processes (``time.time()``, as a trial's deadline)."""

    def now(self) -> float:
        return time.perf_counter()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeClock(Clock):
    """Time that moves only when told: by :meth:`advance`, by :meth:`sleep`, and by ``tick``
    seconds after each reading (so a loop that reads the clock once per batch sees time pass
    per batch, the same way on any machine).

    Args:
        tick: seconds added after each ``now()`` / ``wall()`` reading (0: time stands still).
        start: the first ``now()``.
        epoch: ``wall()`` when ``now()`` is 0.
    """

    def __init__(self, tick: float = 0.0, start: float = 0.0, epoch: float = 1.7e9) -> None:
        if tick < 0:
            raise ValueError(f"tick must be >= 0, got {tick}")
        self.tick = float(tick)
        self.t = float(start)
        self.epoch = float(epoch)
        self.readings = 0

    def now(self) -> float:
        t = self.t
        self.t += self.tick
        self.readings += 1
        return t

    def wall(self) -> float:
        return self.epoch + self.now()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"time does not go back: advance({seconds})")
        self.t += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))


_SYSTEM = Clock()
_current: Clock = _SYSTEM


def get_clock() -> Clock:
    """The clock this process reads now."""
    return _current


def now() -> float:
    """Seconds on a monotonic clock: subtract two readings for a duration."""
    return _current.now()


def wall() -> float:
    """Seconds since the epoch, for instants that cross processes (a trial's deadline)."""
    return _current.wall()


def sleep(seconds: float) -> None:
    _current.sleep(seconds)


@contextlib.contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Read ``clock`` in this process until the block ends (then the previous clock again)."""
    global _current
    before, _current = _current, clock
    try:
        yield clock
    finally:
        _current = before
