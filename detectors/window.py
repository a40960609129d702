"""The metric interval of one machine, in event time: sums of the readings it holds."""

from __future__ import annotations

from detectors.state import Interval, Tally, WindowState
from schemas.readings import Reading


class MetricWindow:
    """Sums of the readings of the open interval (``interval_s`` of event time).

    A reading of a later interval closes the open one: `add` returns its sums and tally.
    A late reading (an older interval) counts toward the open one: metrics are a live view,
    the readings topic stays the record. Readings not taken in are counted in `tally` by the
    caller (duplicates, refused); so are anomalies.

    Parameters
    ----------
    interval_s
        Length of an interval in seconds.
    reading_interval_s
        The machine's reading interval: a reading with a throughput and no count produced
        ``throughput × reading_interval_s / 3600`` units.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> t0 = datetime(2026, 1, 5, 8, tzinfo=UTC)
    >>> def r(s, p):
    ...     return Reading(machine_id="m", timestamp=t0 + timedelta(seconds=s), power_kw=p,
    ...                    energy_kwh=p * 30 / 3600, throughput_units_per_hour=120.0)
    >>> w = MetricWindow(interval_s=60, reading_interval_s=30)
    >>> [w.add(r(s, 10.0 + s / 30), (t0.timestamp() + s), refused=0) for s in (0, 30)]
    [None, None]
    >>> w.tally.duplicates += 1
    >>> interval, tally = w.add(r(60, 20.0), t0.timestamp() + 60, refused=0)
    >>> interval.readings, interval.power_max, interval.production, tally.duplicates
    (2, 11.0, 2.0, 1)
    >>> w.state().open.readings, w.tally.duplicates  # the new interval holds the reading
    (1, 0)
    """

    def __init__(self, interval_s: int = 60, reading_interval_s: float = 30.0) -> None:
        self.interval_s = interval_s
        self.reading_interval_s = reading_interval_s

    _s: WindowState | None = None  # built on first use

    def _state(self) -> WindowState:
        s = self._s
        if s is None:
            s = self._s = WindowState()
        return s

    @property
    def tally(self) -> Tally:
        """The open interval's counts of readings apart from its sums."""
        return self._state().tally

    def add(self, r: Reading, t: float, refused: int) -> tuple[Interval, Tally] | None:
        """Count ``r`` (at ``t``, its time in seconds) into its interval, or the open one.

        ``refused`` is the models' refusals so far: an interval reports those of its own
        time. Returns the closed interval and its tally when ``r`` opens a later one.
        """
        s = self._state()
        bucket = int(t) // self.interval_s
        closed = None
        if s.open is None:
            s.open = Interval(bucket=bucket)
        elif bucket > s.open.bucket:
            tally = s.tally
            tally.refused += refused - tally.refused_before
            closed = s.open, tally
            s.open, s.tally = Interval(bucket=bucket), Tally(refused_before=refused)
        i = s.open
        i.readings += 1
        i.energy_kwh += r.energy_kwh
        i.power_sum += r.power_kw
        i.power_max = max(i.power_max, r.power_kw)
        if r.production_count is not None:
            i.production += r.production_count
        elif r.throughput_units_per_hour is not None:
            i.production += r.throughput_units_per_hour * self.reading_interval_s / 3600
        if r.outdoor_temp_c is not None:
            i.temp_sum += r.outdoor_temp_c
            i.temp_n += 1
        return closed

    def state(self) -> WindowState:
        """The open interval as data (the live struct: encode it, do not keep it)."""
        return self._state()

    def load(self, state: WindowState) -> None:
        """Take the state `state` gave."""
        self._s = state

    def __repr__(self) -> str:
        return (f"MetricWindow(interval_s={self.interval_s!r}, "
                f"reading_interval_s={self.reading_interval_s!r})")
