"""What a reading adds to a machine's figures: the metric interval, the hour, the baseline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detectors.enpi import LiveBaseline
from detectors.hourly import HourlyAggregator
from detectors.state import Interval, MetricsState, Tally
from detectors.window import MetricWindow
from schemas.energy import EnergyHourly
from schemas.events import Event, MetricUpdated, stable_event_id
from schemas.machines import Machine
from schemas.readings import Reading

#: The headline metric of every event (old contract).
METRIC = "power_kw"


class Metrics:
    """One machine's metric interval (`MetricWindow`), hourly energy (`HourlyAggregator`)
    and active baseline (`LiveBaseline`), fed every reading taken in.

    Parameters
    ----------
    machine
        The machine.
    interval_s
        Event-time length of a `MetricUpdated` interval.

    Examples
    --------
    >>> from schemas.machines import MACHINES
    >>> motor = MACHINES[2]  # Motor-Line-A, a reading every 30 s
    >>> metrics = Metrics(motor, interval_s=60)
    >>> t0 = datetime(2026, 1, 5, 8, tzinfo=UTC)
    >>> def r(i):
    ...     return Reading(machine_id=motor.id, timestamp=t0 + timedelta(seconds=30 * i),
    ...                    power_kw=20.0, energy_kwh=20.0 * 30 / 3600)
    >>> out = [o for i in range(121) for o in metrics.add(r(i), r(i).timestamp.timestamp(), 0)]
    >>> [type(o).__name__ for o in out][-2:], len(out)
    (['MetricUpdated', 'EnergyHourly'], 61)
    >>> out[0].readings, out[0].energy_kwh, out[-1].energy_kwh
    (2, 0.333333, 20.0)
    """

    def __init__(self, machine: Machine, interval_s: int = 60) -> None:
        self.machine = machine
        self.interval_s = interval_s
        self.window = MetricWindow(interval_s, machine.data_interval_seconds)
        self.hourly = HourlyAggregator(machine.id, machine.data_interval_seconds)
        self.baseline = LiveBaseline(machine)

    @property
    def tally(self) -> Tally:
        """The open interval's counts of readings apart from its sums (the caller counts
        anomalies, duplicates, late and refused readings here)."""
        return self.window.tally

    def add(self, r: Reading, t: float, model_refused: int) -> list[Event | EnergyHourly]:
        """Count ``r`` (at ``t`` s) into the interval and the hour; the `MetricUpdated` of
        an interval it closes, the `EnergyHourly` of an hour it closes and a drift alert.

        ``model_refused``: readings the expected-power model refused so far.
        """
        out: list[Event | EnergyHourly] = []
        closed = self.window.add(r, t, model_refused + self.hourly.refused)
        if closed is not None:
            out.append(self._metric_event(*closed))
        hour = self.hourly.add(r)
        if hour is not None:
            out.append(hour)
            alert = self.baseline.check(hour)
            if alert is not None:
                out.append(alert)
        return out

    def _metric_event(self, i: Interval, tally: Tally) -> MetricUpdated:
        size = self.window.interval_s
        start = datetime.fromtimestamp(i.bucket * size, tz=UTC)
        end = start + timedelta(seconds=size)
        mean = i.power_sum / i.readings
        expected = self.baseline.expected(i, start, size)
        enpi = cusum = None
        if expected is not None:
            cusum = round(self.baseline.account(i.energy_kwh - expected), 6)
            enpi = round(i.energy_kwh / expected, 4) if expected > 1e-9 else None
        mid = self.machine.id
        return MetricUpdated(
            event_id=stable_event_id("metric_updated", mid, start.isoformat(), size),
            occurred_at=end, machine_id=mid, timestamp=end, metric=METRIC,
            value=round(mean, 4), window_start=start, window_end=end, readings=i.readings,
            anomalies=tally.anomalies, energy_kwh=round(i.energy_kwh, 6),
            mean_power_kw=round(mean, 4), max_power_kw=i.power_max,
            expected_energy_kwh=None if expected is None else round(expected, 6), enpi=enpi,
            cusum_kwh=cusum, duplicates=tally.duplicates, late=tally.late,
            refused=tally.refused,
        )

    def state(self) -> MetricsState:
        """The interval, the hour and the baseline's live view as data."""
        return MetricsState(window=self.window.state(), hourly=self.hourly.state(),
                            baseline=self.baseline.state())

    def load(self, state: MetricsState) -> None:
        """Take the state `state` gave."""
        self.window.load(state.window)
        self.hourly.load(state.hourly)
        self.baseline.load(state.baseline)

    def __repr__(self) -> str:
        return f"Metrics(machine={self.machine.name!r}, interval_s={self.interval_s!r})"
