"""Runs of flagged readings: one fault, however many readings it flags."""

from __future__ import annotations

from datetime import datetime, timedelta

from detectors.state import RunState


class RunTracker:
    """The current run of flagged readings: when it started, the energy off so far.

    Flagged readings no more than ``gap`` apart are one run. A run that has lasted
    ``follow_after`` is a lasting change: `follow_once` says so once per run, so that the
    caller takes the level as the new normal.

    Parameters
    ----------
    gap
        Longest time between two flagged readings of one run.
    follow_after
        Length of a run after which its level is followed.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 1, 5, 8, tzinfo=UTC)
    >>> runs = RunTracker(gap=timedelta(minutes=5), follow_after=timedelta(minutes=2))
    >>> [runs.add(t + timedelta(minutes=m), 0.5) for m in (0, 1, 2)]
    [False, False, True]
    >>> runs.kwh, runs.length(t + timedelta(minutes=2)), runs.follow_once(), runs.follow_once()
    (1.5, datetime.timedelta(seconds=120), True, False)
    >>> runs.add(t + timedelta(minutes=30), 0.25), runs.kwh  # after the gap: a new run
    (False, 0.25)
    """

    def __init__(self, gap: timedelta = timedelta(minutes=5),
                 follow_after: timedelta = timedelta(hours=4)) -> None:
        self.gap = gap
        self.follow_after = follow_after

    _s: RunState | None = None  # built on first use

    def _state(self) -> RunState:
        s = self._s
        if s is None:
            s = self._s = RunState()
        return s

    @property
    def kwh(self) -> float:
        """Energy above (+) or below (-) expected over the run so far."""
        return self._state().kwh

    def length(self, ts: datetime) -> timedelta:
        """Time from the run's start to ``ts`` (zero before any run)."""
        start = self._state().start
        return timedelta(0) if start is None else ts - start

    def add(self, ts: datetime, kwh: float) -> bool:
        """Count a flagged reading at ``ts`` (``kwh`` off expected); True once the run has
        lasted ``follow_after``."""
        s = self._state()
        start = s.start
        if start is None or s.last is None or abs(ts - s.last) > self.gap:
            start = s.start = ts
            s.kwh = 0.0
        s.last = ts if s.last is None else max(s.last, ts)
        s.kwh += kwh
        return ts - start >= self.follow_after

    def follow_once(self) -> bool:
        """True the first time it is asked for the current run (its level is followed)."""
        s = self._state()
        if s.followed == s.start:
            return False
        s.followed = s.start
        return True

    def state(self) -> RunState:
        """The run as data (the live struct: encode it, do not keep it)."""
        return self._state()

    def load(self, state: RunState) -> None:
        """Take the state `state` gave."""
        self._s = state

    def __repr__(self) -> str:
        return f"RunTracker(gap={self.gap!r}, follow_after={self.follow_after!r})"
