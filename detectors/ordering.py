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

from detectors.state import OrderState
from schemas.readings import InvalidRecord

Admission = Literal["new", "late", "duplicate", "too_late"]


class ReadingOrder:
    """Timestamps seen within ``max_lateness_s`` of the newest (milliseconds, event time).

    The window is an argument of `admit`, so a scorer restored from its changelog follows
    today's setting. `admitted` counts the readings taken in (new or late).

    Examples
    --------
    >>> order = ReadingOrder()
    >>> [order.admit(t, 60.0) for t in (100.0, 130.0, 130.0, 110.0, 110.0, 30.0, 160.0)]
    ['new', 'new', 'duplicate', 'late', 'duplicate', 'too_late', 'new']
    >>> order.admitted, order.state()
    (4, OrderState(newest=160.0, arrived=[100000, 130000, 110000, 160000], admitted=4))
    """

    _s: _Seen | None = None  # built on first use

    def _state(self) -> _Seen:
        s = self._s
        if s is None:
            s = self._s = _Seen()
        return s

    @property
    def newest(self) -> float | None:
        """The newest timestamp admitted (seconds), None before any."""
        return self._state().newest

    @property
    def admitted(self) -> int:
        """Readings admitted so far (``new`` or ``late``)."""
        return self._state().admitted

    def admit(self, t: float, max_lateness_s: float) -> Admission:
        """Sort the reading at ``t`` (seconds since the epoch) and remember it if it counts."""
        ms = round(t * 1000)
        s = self._state()
        newest = s.newest
        if ms in s.seen:
            return "duplicate"
        if newest is not None and t < newest - max_lateness_s:
            return "too_late"
        verdict: Admission = "new" if newest is None or t > newest else "late"
        s.seen.add(ms)
        s.arrived.append(ms)
        s.admitted += 1
        if verdict == "new":
            s.newest = t
            # Forget what fell out of the window (in arrival order: late ones may linger a
            # little longer, which only costs memory).
            horizon = round((t - max_lateness_s) * 1000)
            arrived = s.arrived
            while arrived and arrived[0] < horizon:
                s.seen.discard(arrived.popleft())
        return verdict

    def state(self) -> OrderState:
        """The timestamps remembered, as data."""
        s = self._state()
        return OrderState(newest=s.newest, arrived=list(s.arrived), admitted=s.admitted)

    def load(self, state: OrderState) -> None:
        """Take the state `state` gave."""
        self._s = _Seen(newest=state.newest, arrived=deque(state.arrived),
                        admitted=state.admitted)

    def __repr__(self) -> str:
        return f"ReadingOrder(newest={self.newest!r}, remembered={len(self._state().seen)})"


class _Seen:
    """`ReadingOrder`'s memory: timestamps (ms) in arrival order and as a set."""

    __slots__ = ("admitted", "arrived", "newest", "seen")

    def __init__(self, newest: float | None = None, arrived: deque[int] | None = None,
                 admitted: int = 0) -> None:
        self.newest = newest
        self.arrived: deque[int] = deque() if arrived is None else arrived
        self.seen = set(self.arrived)  # every timestamp arrives once: the same set
        self.admitted = admitted


class LateReading(InvalidRecord):
    """A reading older than its machine's newest by more than ``max_lateness_s``."""
