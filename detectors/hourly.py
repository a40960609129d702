"""Hourly energy per machine: readings in, one `EnergyHourly` per machine-hour out.

Pure and deterministic: hours are UTC buckets of the readings' own timestamps (event time),
never the wall clock. `HourlyAggregator` follows one machine and its state is data
(`HourlyAggregator.state`), so a changelog can hold it; `hourly_records` runs many machines
over a finite stream (replay, tests, benchmarks).

What a record holds
-------------------
``energy_kwh`` and ``production_count`` are sums over the hour's readings; ``mean_power_kw``,
``throughput_units_per_hour``, ``outdoor_temp_c``, ``machine_temp_c`` and ``pressure_bar`` are
means of the values present (None when no reading of the hour carried the driver);
``max_power_kw`` is the largest power; ``coverage`` is readings received / readings expected at
the machine's interval (``3600 / interval_s``), capped at 1.

Late readings
-------------
A record is emitted when the first reading of a later hour arrives, so the aggregator holds
one open hour. A reading older than the open hour (its hour was already emitted) is counted
into the open hour: emitted records are never revised, and the energy is not lost. The
readings topic stays the exact record for a replay.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime

from detectors.base import MAX_VALUE
from detectors.state import HourState
from schemas.energy import EnergyHourly
from schemas.machines import machine_by_id
from schemas.readings import Reading

__all__ = ["HourlyAggregator", "hour_of", "hourly_records", "too_large"]

_MEAN_DRIVERS = ("throughput_units_per_hour", "outdoor_temp_c", "machine_temp_c",
                 "pressure_bar")


def hour_of(ts: datetime) -> datetime:
    """The UTC hour bucket (its start) of an aware timestamp.

    Examples
    --------
    >>> from datetime import timedelta, timezone
    >>> hour_of(datetime(2026, 1, 5, 9, 59, 59, tzinfo=timezone(timedelta(hours=3))))
    datetime.datetime(2026, 1, 5, 6, 0, tzinfo=datetime.timezone.utc)
    """
    if ts.tzinfo is None or ts.utcoffset() is None:
        msg = f"timestamp must be timezone-aware, got {ts!r}"
        raise ValueError(msg)
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class HourlyAggregator:
    """Hourly energy and driver averages of one machine, in event time.

    Parameters
    ----------
    machine_id
        The machine whose readings are added; another machine's reading is a ValueError.
    interval_s
        The machine's reading interval in seconds: ``3600 / interval_s`` readings make a
        complete hour (``coverage`` 1).

    Examples
    --------
    >>> from datetime import timedelta
    >>> mid = "c0000000-0000-0000-0000-000000000003"
    >>> agg = HourlyAggregator(mid, interval_s=1200.0)  # 3 readings an hour
    >>> t0 = datetime(2026, 1, 5, 8, tzinfo=UTC)
    >>> def r(minutes, kw, count):
    ...     return Reading(machine_id=mid, timestamp=t0 + timedelta(minutes=minutes),
    ...                    power_kw=kw, energy_kwh=kw / 3, production_count=count,
    ...                    outdoor_temp_c=10.0 + minutes / 20)
    >>> [agg.add(r(m, 30.0, 100.0)) for m in (0, 20, 40)]
    [None, None, None]
    >>> rec = agg.add(r(60, 6.0, 0.0))  # the first reading of 09:00 closes 08:00
    >>> rec.hour_start.isoformat(), rec.energy_kwh, rec.production_count, rec.outdoor_temp_c
    ('2026-01-05T08:00:00+00:00', 30.0, 300.0, 11.0)
    >>> rec.readings, rec.coverage
    (3, 1.0)
    >>> agg.flush().coverage  # 09:00 has one reading of three
    0.333...
    >>> agg.flush() is None
    True
    """

    def __init__(self, machine_id: str, interval_s: float) -> None:
        if not interval_s > 0:
            msg = f"interval_s must be positive, got {interval_s}"
            raise ValueError(msg)
        self.machine_id = machine_id
        self.interval_s = interval_s

    _s: HourState | None = None  # built on first use

    def _state(self) -> HourState:
        s = self._s
        if s is None:
            s = self._s = HourState()
        return s

    @property
    def refused(self) -> int:
        """Readings not counted because a sum would have overflowed (values near 1e308)."""
        return self._state().refused

    def _record(self, s: HourState, hour: datetime) -> EnergyHourly:
        means = {k: s.sums[k] / s.counts[k] for k in s.sums}
        expected = 3600.0 / self.interval_s
        return EnergyHourly(
            machine_id=self.machine_id,
            hour_start=hour,
            energy_kwh=s.energy,
            readings=s.n,
            coverage=min(1.0, s.n / expected),
            mean_power_kw=s.power_sum / s.n,
            max_power_kw=s.power_max,
            production_count=s.production,
            throughput_units_per_hour=means.get("throughput_units_per_hour"),
            outdoor_temp_c=means.get("outdoor_temp_c"),
            machine_temp_c=means.get("machine_temp_c"),
            pressure_bar=means.get("pressure_bar"),
        )

    def add(self, reading: Reading) -> EnergyHourly | None:
        """Count one reading; return the previous hour's record when this one opens a later hour.

        A reading older than the open hour is counted into the open hour (see the module
        docstring). A reading that would overflow a sum is not counted (`refused`).
        """
        if reading.machine_id != self.machine_id:
            msg = (f"reading of machine {reading.machine_id!r} added to the aggregator of "
                   f"{self.machine_id!r}")
            raise ValueError(msg)
        s = self._state()
        if too_large(reading):  # would overflow a sum; an inf kWh hour fails every retrain
            s.refused += 1
            return None
        hour = hour_of(reading.timestamp)
        out: EnergyHourly | None = None
        if s.hour is None:
            s.hour = hour
        elif hour > s.hour:
            out = self._record(s, s.hour)
            s = self._s = HourState(hour=hour, refused=s.refused)
        s.n += 1
        s.energy += reading.energy_kwh
        s.power_sum += reading.power_kw
        s.power_max = max(s.power_max, reading.power_kw)
        if reading.production_count is not None:
            s.production = (s.production or 0.0) + reading.production_count
        for name in _MEAN_DRIVERS:
            v = getattr(reading, name)
            if v is not None:
                s.sums[name] = s.sums.get(name, 0.0) + v
                s.counts[name] = s.counts.get(name, 0) + 1
        return out

    def flush(self) -> EnergyHourly | None:
        """Return the open hour's record (None if there is none) and start empty."""
        s = self._state()
        if s.hour is None:
            return None
        out = self._record(s, s.hour)
        self._s = HourState(refused=s.refused)
        return out

    def state(self) -> HourState:
        """The open hour's sums as data (the live struct: encode it, do not keep it)."""
        return self._state()

    def load(self, state: HourState) -> None:
        """Take the state `state` gave."""
        self._s = state

    def __repr__(self) -> str:
        return f"HourlyAggregator(machine_id={self.machine_id!r}, interval_s={self.interval_s!r})"


def too_large(r: Reading) -> bool:
    """Whether any value of ``r`` is past `MAX_VALUE` (or NaN): written out, since it runs
    for every reading.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> r = Reading(machine_id="m", timestamp=datetime(2026, 1, 1, tzinfo=UTC), power_kw=1.0,
    ...             energy_kwh=1e200)
    >>> too_large(r), too_large(Reading(**{**{f: getattr(r, f) for f in r.__struct_fields__},
    ...                                    "energy_kwh": 0.1}))
    (True, False)
    """
    m = MAX_VALUE
    return not (
        -m < r.power_kw < m and -m < r.energy_kwh < m
        and (r.production_count is None or -m < r.production_count < m)
        and (r.throughput_units_per_hour is None or -m < r.throughput_units_per_hour < m)
        and (r.outdoor_temp_c is None or -m < r.outdoor_temp_c < m)
        and (r.machine_temp_c is None or -m < r.machine_temp_c < m)
        and (r.pressure_bar is None or -m < r.pressure_bar < m))


def hourly_records(
    readings: Iterable[Reading], intervals: Mapping[str, float] | None = None
) -> Iterator[EnergyHourly]:
    """Hourly records of every machine in `readings`, flushing the open hours at the end.

    Records come as hours close (a machine's hour closes with its first reading of a later
    hour); the final open hours follow, ordered by hour then machine id.

    Parameters
    ----------
    readings
        Readings of any machines, ideally in time order (see late readings above).
    intervals
        Reading interval in seconds per machine id (e.g. ``Simulation.intervals``); a machine
        not in it uses its catalogue ``data_interval_seconds``.

    Examples
    --------
    >>> from datetime import timedelta
    >>> from simulation import generate
    >>> sim = generate(start=datetime(2026, 1, 5, 8, tzinfo=UTC),
    ...                duration=timedelta(hours=2), anomalies=False)
    >>> recs = list(hourly_records(sim.readings, sim.intervals))
    >>> len(recs), {r.coverage for r in recs}
    (18, {1.0})
    """
    aggs: dict[str, HourlyAggregator] = {}
    for r in readings:
        agg = aggs.get(r.machine_id)
        if agg is None:
            agg = aggs[r.machine_id] = HourlyAggregator(r.machine_id, _interval(r.machine_id,
                                                                                intervals))
        rec = agg.add(r)
        if rec is not None:
            yield rec
    rest = [rec for agg in aggs.values() if (rec := agg.flush()) is not None]
    yield from sorted(rest, key=lambda rec: (rec.hour_start, rec.machine_id))


def _interval(machine_id: str, intervals: Mapping[str, float] | None) -> float:
    if intervals is not None and machine_id in intervals:
        return float(intervals[machine_id])
    m = machine_by_id(machine_id)
    if m is None:
        msg = f"no reading interval for unknown machine {machine_id!r}; pass it in intervals"
        raise ValueError(msg)
    return float(m.data_interval_seconds)
