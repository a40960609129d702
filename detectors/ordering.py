"""Which readings of one machine are new: a reading is identified by its timestamp.

A client that retries a batch, a producer that re-sends after a timeout, a replay of a
period: the same reading (machine_id, timestamp) can arrive twice, and it must never add
its energy twice, count twice in the metrics or raise a second anomaly. `ReadingOrder`
remembers the timestamps of the last ``max_lateness_s`` of event time and sorts each
reading into one of:

``new``
    later than every reading so far;
``late``
    older than the latest, within ``max_lateness_s`` of it, and not seen: scored and
    counted once, like any other (see `detectors.scoring` for where its energy goes);
``duplicate``
    a timestamp already seen within the window: skipped;
``too_late``
    older than the latest by more than ``max_lateness_s``: it cannot be told from a
    re-sent reading any more, so the caller refuses it (the worker dead-letters it with
    the reason; nothing is counted twice, and the record stays on the readings topic).
"""

from __future__ import annotations

from collections import deque
from typing import Literal

from schemas.readings import InvalidRecord

Admission = Literal["new", "late", "duplicate", "too_late"]


class ReadingOrder:
    """Timestamps seen within ``max_lateness_s`` of the newest (milliseconds, event time).

    The window is an argument of `admit`, so a scorer restored from its changelog follows
    today's setting.

    Examples
    --------
    >>> order = ReadingOrder()
    >>> [order.admit(t, 60.0) for t in (100.0, 130.0, 130.0, 110.0, 110.0, 30.0, 160.0)]
    ['new', 'new', 'duplicate', 'late', 'duplicate', 'too_late', 'new']
    """

    def _state(self) -> tuple[deque[int], set[int]]:
        s = self.__dict__.get("_s")
        if s is None:
            s = self.__dict__["_s"] = (deque(), set())
        return s  # type: ignore[no-any-return]

    @property
    def newest(self) -> float | None:
        """The newest timestamp admitted (seconds), None before any."""
        return self.__dict__.get("_newest")

    def admit(self, t: float, max_lateness_s: float) -> Admission:
        """Sort the reading at ``t`` (seconds since the epoch) and remember it if it counts."""
        ms = round(t * 1000)
        arrived, seen = self._state()
        newest = self.newest
        if ms in seen:
            return "duplicate"
        if newest is not None and t < newest - max_lateness_s:
            return "too_late"
        verdict: Admission = "new" if newest is None or t > newest else "late"
        seen.add(ms)
        arrived.append(ms)
        if verdict == "new":
            self.__dict__["_newest"] = t
            # Forget what fell out of the window (in arrival order: late ones may linger a
            # little longer, which only costs memory).
            horizon = round((t - max_lateness_s) * 1000)
            while arrived and arrived[0] < horizon:
                seen.discard(arrived.popleft())
        return verdict

    def __repr__(self) -> str:
        return f"ReadingOrder(newest={self.newest!r}, remembered={len(self._state()[1])})"


class LateReading(InvalidRecord):
    """A reading older than its machine's newest by more than ``max_lateness_s``."""
