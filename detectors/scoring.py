"""The per-reading scoring step: one machine's detector state in, events out.

`MachineScorer.step` is deterministic and does no I/O: the Faust agent, replay and the
benchmarks all call it the same way. Time comes from the reading, never the wall clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec

from detectors import baseline as bl
from detectors.base import DETECTORS, AnomalyDetector
from detectors.drift import TabularCusum
from detectors.episodes import EpisodeTracker
from detectors.hourly import HourlyAggregator, too_large
from detectors.online import (
    ExpectedPower,
    HalfSpaceTreesDetector,
    ResidualDetector,
    RobustZScore,
)
from detectors.ordering import LateReading, ReadingOrder
from schemas.energy import BaselineModel, EnergyHourly
from schemas.events import (
    AnomalyDetected,
    Event,
    MaintenanceWindow,
    MetricUpdated,
    SystemAlert,
    stable_event_id,
)
from schemas.machines import Machine, machine_by_id
from schemas.readings import Reading

Output = Event | EnergyHourly

METRIC = "power_kw"
#: Flagged readings this close together are one run (for energy impact and following).
_RUN_GAP = timedelta(minutes=5)
#: A run of point anomalies this long is a `baseline_deviation`, not a string of spikes.
_LONG_RUN = timedelta(minutes=15)


@dataclass(frozen=True, kw_only=True)
class ScoringConfig:
    """How readings are scored.

    Parameters
    ----------
    detector
        ``residual`` (default: the residual against the power expected for the drivers,
        `detectors.online.ResidualDetector`; score 0.9 at 6 robust σ), ``hst`` (River
        HalfSpaceTrees on power scaled by rated power) or ``zscore``.
    threshold
        Detector score in [0, 1] at or above which a reading is a candidate anomaly.
    min_z
        A candidate must also deviate at least this many robust standard deviations from the
        power expected for its drivers (production, weather): the detector says "unusual",
        the residual says "by how much, given what the machine was doing".
    max_leverage
        No flag where the drivers are new to the expected-power model (leverage above this,
        e.g. a machine's first production shift): that is learning, not an anomaly. 0.1
        asks for about ten readings in a new operating state before judging it.
    warmup
        Readings per machine learned before any anomaly is reported. HalfSpaceTrees adds its
        own: it scores 0 until its first reference window is full (``window_seconds``).
    window_seconds
        Span of HalfSpaceTrees' reference window, converted to readings per machine.
    drift_z, drift_slow_s, drift_fast_s
        The sustained-deviation test: a reading is a ``drift`` anomaly when the exponentially
        weighted means of the residual z over ``drift_slow_s`` (10 min) and ``drift_fast_s``
        (1 min) of event time both exceed ``drift_z`` on the reading's side. One reading far
        off is a spike; many readings a little off, for minutes, are a drift. Readings flagged
        on their own do not feed the means. While the slow mean is past half of ``drift_z``,
        readings are learned with a tenth of their weight, so the start of a drift (not yet
        flagged) does not become the norm.
    follow_after_s
        After this long of (nearly) unbroken anomalies the level is taken as the new normal:
        the expected-power model forgets most of its memory and learns again (a lasting
        change is reported, then followed, not flagged forever). Longer than any fault one
        wants reported to its end; the baseline drift test and a retrain handle the rest.
    metrics_interval_s
        Event-time interval of `MetricUpdated`.
    max_lateness_s
        Readings are identified by (machine, timestamp): a timestamp seen before is skipped
        (counted as ``duplicates``), and a reading older than the machine's newest by more
        than this raises `detectors.ordering.LateReading` (see `detectors.ordering`).
    """

    detector: str = "residual"
    threshold: float = 0.9
    min_z: float = 4.0
    max_leverage: float = 0.1
    #: Identical power values in a row that mean a stuck meter (real meters jitter).
    stuck_run: int = 8
    warmup: int = 300
    window_seconds: float = 7200.0
    drift_z: float = 2.0
    drift_slow_s: float = 600.0
    drift_fast_s: float = 60.0
    follow_after_s: float = 4 * 3600.0
    metrics_interval_s: int = 60
    max_lateness_s: float = 900.0
    seed: int = 42


def make_detector(config: ScoringConfig, machine: Machine) -> AnomalyDetector:
    """Build the configured detector for one machine.

    Examples
    --------
    >>> from schemas.machines import MACHINES
    >>> make_detector(ScoringConfig(detector="zscore"), MACHINES[0])
    RobustZScore(feature='power_kw', half_life=200.0, scale=6.0, min_mad=1e-06)
    >>> make_detector(ScoringConfig(), MACHINES[0])
    ResidualDetector(target='power_kw', z90=6.0, floor=2.75)
    """
    if config.detector == "residual":
        return ResidualDetector(METRIC, floor=0.05 * machine.rated_power_kw)
    if config.detector == "hst":
        window = max(50, round(config.window_seconds / machine.data_interval_seconds))
        return HalfSpaceTreesDetector(
            limits={METRIC: (0.0, 1.5 * machine.rated_power_kw)},
            window_size=window, seed=config.seed,
        )
    if config.detector == "zscore":
        return RobustZScore(METRIC)
    msg = f"unknown detector {config.detector!r} (known: {', '.join(DETECTORS)})"
    raise ValueError(msg)


def severity_of(z: float, impact_kwh: float | None = None, rated_kw: float | None = None) -> str:
    """How bad an anomaly is: how far it deviates, and how much energy it has cost so far.

    ``impact_kwh`` is the energy above (or below) expected over the anomaly's run so far;
    how long it lasts enters through it. Against the machine's rated power:

    * critical: at least 6 robust σ off and a *material* impact (ten seconds at rated
      power, e.g. 0.15 kWh for a 55 kW compressor), or a *large* impact whatever the σ (a
      minute at rated power: a long modest drift ends up here);
    * warning: at least 3 σ off, or a material impact;
    * normal: the rest.

    Without an impact (``impact_kwh`` or ``rated_kw`` None) σ alone decides: critical from 6.

    Examples
    --------
    >>> severity_of(7.0), severity_of(-4.5), severity_of(2.0)
    ('critical', 'warning', 'normal')
    >>> severity_of(40.0, impact_kwh=0.02, rated_kw=55.0)  # a one-second spike: little energy
    'warning'
    >>> severity_of(40.0, impact_kwh=0.3, rated_kw=55.0), severity_of(3.5, 1.2, 55.0)
    ('critical', 'critical')
    """
    a = abs(z)
    if impact_kwh is None or rated_kw is None:
        return "critical" if a >= 6 else "warning" if a >= 3 else "normal"
    material, large = rated_kw * 10 / 3600, rated_kw * 60 / 3600
    impact = abs(impact_kwh)
    if (a >= 6 and impact >= material) or impact >= large:
        return "critical"
    return "warning" if a >= 3 or impact >= material else "normal"


class MachineScorer:
    """One machine's detector, level profile and metric window.

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> cfg = ScoringConfig(detector="zscore", threshold=0.5, warmup=50)
    >>> s = MachineScorer("c0000000-0000-0000-0000-000000000003", cfg)
    >>> t0 = datetime(2026, 1, 5, 8, tzinfo=timezone.utc)
    >>> def r(i, p):
    ...     return Reading(machine_id=s.machine_id, timestamp=t0 + timedelta(seconds=30 * i),
    ...                    power_kw=p, energy_kwh=p * 30 / 3600)
    >>> events = [e for i in range(100) for e in s.step(r(i, 20.0 + (i % 3) * 0.1))]
    >>> sorted({e.event_type for e in events})
    ['metric_updated']
    >>> [(e.severity, e.anomaly_type) for e in s.step(r(100, 40.0))
    ...  if isinstance(e, AnomalyDetected)]
    [('critical', 'spike')]
    """

    #: Bumped when the pickled state's layout changes; a scorer restored from a changelog
    #: with another version (or another detector) is rebuilt (`usable_with`).
    STATE_VERSION = 3

    def __init__(self, machine_id: str, config: ScoringConfig) -> None:
        self.state_version = self.STATE_VERSION
        machine = machine_by_id(machine_id)
        if machine is None:
            msg = f"unknown machine_id {machine_id!r}"
            raise ValueError(msg)
        self.machine_id = machine_id
        self.machine = machine
        self.config = config
        self.detector = make_detector(config, machine)
        # The expected power (for z, the expected value and explanations): the residual
        # detector's own model, or one of its own beside another detector.
        self.expect = (self.detector.model if isinstance(self.detector, ResidualDetector)
                       else ExpectedPower(floor=0.05 * machine.rated_power_kw))
        self.seen = 0
        # Which timestamps were seen (duplicates and late readings).
        self.order = ReadingOrder()
        # Sustained deviation: fast and slow EW means of z (event time); the last time seen.
        self._fast = 0.0
        self._slow = 0.0
        self._t: float | None = None
        # The current run of anomalies: first and last flagged time, energy off so far.
        self._run_start: datetime | None = None
        self._run_last: datetime | None = None
        self._run_kwh = 0.0
        self._forgot_run: datetime | None = None  # the run whose level was last followed
        #: The machine's maintenance window (set by the caller): readings in it are neither
        #: judged nor learned; metrics and hourly energy go on.
        self.maintenance: MaintenanceWindow | None = None
        self._last_power: float | None = None
        self._same = 0
        self.episodes = EpisodeTracker()
        # Metric window (event time).
        self._bucket: int | None = None
        self._count = 0
        self._anomalies = 0
        self._energy = 0.0
        self._power_sum = 0.0
        self._power_max = 0.0
        self._production = 0.0
        self._temp_sum = 0.0
        self._temp_n = 0
        self._duplicates = 0
        self._late = 0
        self._refused = 0  # readings the core would not take in (`hourly.too_large`)
        self._refused_before = 0  # the models' own refusals when the window opened
        # Hourly energy (training data) and the active baseline's live view.
        self.hourly = HourlyAggregator(machine_id, machine.data_interval_seconds)
        self.baseline: BaselineModel | None = None
        self.cusum_kwh = 0.0
        self.drift = TabularCusum()
        self._drift_alarmed = False

    @property
    def newest(self) -> datetime | None:
        """The time of the newest reading taken in so far (None before any)."""
        t = self.order.newest
        return None if t is None else datetime.fromtimestamp(t, UTC)

    def usable_with(self, config: ScoringConfig) -> bool:
        """Whether this (maybe restored) scorer has the current state layout and detector."""
        return (getattr(self, "state_version", 1) == self.STATE_VERSION
                and self.config.detector == config.detector)

    # -- baseline ------------------------------------------------------------------------
    def set_baseline(self, model: BaselineModel | None) -> None:
        """Use this active baseline; a new version restarts the CUSUM and the drift test."""
        if model is self.baseline or (
                model is not None and self.baseline is not None
                and model.model_id == self.baseline.model_id):
            return
        self.baseline = model
        self.cusum_kwh = 0.0
        self.drift.reset()
        self._drift_alarmed = False

    def _expected_interval(self, start: datetime, size: int) -> float | None:
        """Expected energy of the open interval from the active baseline (hourly model)."""
        if self.baseline is None:
            return None
        per_hour = 3600.0 / size
        row = EnergyHourly(
            machine_id=self.machine_id, hour_start=start.replace(minute=0, second=0),
            energy_kwh=0.0, readings=self._count, coverage=1.0, mean_power_kw=0.0,
            max_power_kw=0.0, production_count=self._production * per_hour,
            outdoor_temp_c=self._temp_sum / self._temp_n if self._temp_n else None)
        try:
            return bl.predict(self.baseline, row) / per_hour
        except ValueError:  # a driver the model needs is missing in this interval
            return None

    def _check_drift(self, rec: EnergyHourly) -> SystemAlert | None:
        """Feed a closed hour's residual to the drift test; an alert when it fires."""
        model = self.baseline
        if model is None or self._drift_alarmed or rec.coverage < 0.5:
            return None
        try:
            expected = bl.predict(model, rec)
        except ValueError:
            return None
        # Standardise by the model's own validated error: z = 1 is a typical hour's miss.
        rmse = max(model.metrics.rmse_validation or model.metrics.rmse, 1e-6)
        z = (rec.energy_kwh - expected) / rmse
        if not math.isfinite(z) or not self.drift.update(z):  # a NaN would stick in the sums
            return None
        self._drift_alarmed = True  # once per model version: the retrain decides what next
        end = rec.hour_start + timedelta(hours=1)
        return SystemAlert(
            event_id=stable_event_id("system_alert", "baseline_drift", self.machine_id,
                                     model.model_id, end.isoformat()),
            occurred_at=end, machine_id=self.machine_id, alert_type="baseline_drift",
            severity="warning",
            message=(f"{self.machine.name}: energy drifted {self.drift.direction} from "
                     f"baseline v{model.version} (CUSUM over {self.drift.n} hours)"),
            details={"model_version": model.version, "model_id": model.model_id,
                     "direction": self.drift.direction, "hours": self.drift.n,
                     "cusum_high": round(self.drift.s_hi, 3), "cusum_low": round(self.drift.s_lo, 3),
                     "k": self.drift.k, "h": self.drift.h,
                     "last_actual_kwh": round(rec.energy_kwh, 4),
                     "last_expected_kwh": round(expected, 4), "retrain": True})

    # -- metrics -------------------------------------------------------------------------
    def _metric_event(self) -> MetricUpdated:
        size = self.config.metrics_interval_s
        assert self._bucket is not None  # noqa: S101 - only called with an open bucket
        start = datetime.fromtimestamp(self._bucket * size, tz=UTC)
        end = start + timedelta(seconds=size)
        mean = self._power_sum / self._count
        expected = self._expected_interval(start, size)
        enpi = None
        if expected is not None:
            self.cusum_kwh += self._energy - expected
            enpi = round(self._energy / expected, 4) if expected > 1e-9 else None
        refused = self._refused + self._model_refusals() - self._refused_before
        return MetricUpdated(
            event_id=stable_event_id("metric_updated", self.machine_id, start.isoformat(), size),
            occurred_at=end, machine_id=self.machine_id, timestamp=end, metric=METRIC,
            value=round(mean, 4), window_start=start, window_end=end, readings=self._count,
            anomalies=self._anomalies, energy_kwh=round(self._energy, 6),
            mean_power_kw=round(mean, 4), max_power_kw=self._power_max,
            expected_energy_kwh=None if expected is None else round(expected, 6), enpi=enpi,
            cusum_kwh=None if expected is None else round(self.cusum_kwh, 6),
            duplicates=self._duplicates, late=self._late, refused=refused,
        )

    def _model_refusals(self) -> int:
        return self.expect.refused + self.hourly.refused

    def _roll_metrics(self, r: Reading) -> list[Output]:
        bucket = int(r.timestamp.timestamp()) // self.config.metrics_interval_s
        out: list[Output] = []
        if self._bucket is None:
            self._bucket = bucket
        elif bucket > self._bucket:
            out.append(self._metric_event())
            self._bucket = bucket
            self._count = self._anomalies = self._temp_n = 0
            self._duplicates = self._late = self._refused = 0
            self._refused_before = self._model_refusals()
            self._energy = self._power_sum = self._power_max = 0.0
            self._production = self._temp_sum = 0.0
        # A late reading (older bucket) counts toward the open one: metrics are a live view,
        # the readings topic stays the record.
        self._count += 1
        self._energy += r.energy_kwh
        self._power_sum += r.power_kw
        self._power_max = max(self._power_max, r.power_kw)
        if r.production_count is not None:
            self._production += r.production_count
        elif r.throughput_units_per_hour is not None:
            self._production += r.throughput_units_per_hour * self.machine.data_interval_seconds / 3600
        if r.outdoor_temp_c is not None:
            self._temp_sum += r.outdoor_temp_c
            self._temp_n += 1
        hour = self.hourly.add(r)
        if hour is not None:
            out.append(hour)
            alert = self._check_drift(hour)
            if alert is not None:
                out.append(alert)
        return out

    # -- scoring -------------------------------------------------------------------------
    def step(self, r: Reading) -> list[Output]:
        """Score one reading, then learn from it (fully when normal, a tenth when the
        recent residuals lean or only the drift test flags it, not at all when it is far
        off on its own); return what it produced: events, and a closed hour's
        `EnergyHourly` record."""
        cfg = self.config
        t = r.timestamp.timestamp()
        if too_large(r):
            self._refused += 1  # could overflow a sum or a square: not taken in at all
            return []
        admission = self.order.admit(t, cfg.max_lateness_s)
        if admission == "duplicate":  # seen before (a retried batch, a replay): skip
            self._duplicates += 1
            return []
        if admission == "too_late":
            newest = self.order.newest or t
            msg = (f"{newest - t:.0f} s older than the newest reading of this machine "
                   f"({datetime.fromtimestamp(newest, UTC).isoformat()}); readings more than "
                   f"max_lateness_s = {cfg.max_lateness_s:.0f} s late are refused, since they "
                   "cannot be told from re-sent ones")
            raise LateReading(msg, "timestamp")
        events = self._roll_metrics(r)
        if admission == "late":
            self._late += 1
        events.extend(self.episodes.on_time(r.timestamp))
        drivers = r.drivers()
        x = {**drivers, METRIC: r.power_kw, "t": t}
        score = self.detector.score_one(x)  # score first ...
        expected = self.expect.predict(drivers)
        z = self.expect.z_of(r.power_kw, expected)
        known = self.expect.leverage(drivers) <= cfg.max_leverage
        if not (math.isfinite(z) and math.isfinite(expected) and math.isfinite(score)):
            z, known = 0.0, False  # the model cannot say: neither judged nor fed to the means
        # Time this reading stands for: at most two intervals, so a gap in the data is not
        # taken as minutes of evidence (nor of energy).
        interval = self.machine.data_interval_seconds
        dt = interval if self._t is None else min(max(0.0, t - self._t), 2.0 * interval)
        self._t = t if self._t is None else max(t, self._t)

        self._same = self._same + 1 if r.power_kw == self._last_power else 0
        self._last_power = r.power_kw
        stuck = self._same + 1 == cfg.stuck_run  # report once, when the run is long
        warm = self.seen >= cfg.warmup
        self.seen += 1
        if self.maintenance is not None and self.maintenance.covers(r.timestamp):
            return events  # in maintenance: not judged, not learned
        point = known and abs(z) >= cfg.min_z and score >= cfg.threshold
        if not point and known:  # a reading far off on its own does not feed the means
            zc = max(-6.0, min(6.0, z))
            self._fast += (1.0 - math.exp(-dt / cfg.drift_fast_s)) * (zc - self._fast)
            self._slow += (1.0 - math.exp(-dt / cfg.drift_slow_s)) * (zc - self._slow)
        sustained = (known and abs(self._slow) >= cfg.drift_z and abs(self._fast) >= cfg.drift_z
                     and self._slow * self._fast > 0 and self._slow * z > 0)
        flagged = warm and (stuck or point or sustained)

        follow = False
        if flagged:
            if self._run_last is None or abs(r.timestamp - self._run_last) > _RUN_GAP:
                self._run_start, self._run_kwh = r.timestamp, 0.0
            self._run_last = max(self._run_last or r.timestamp, r.timestamp)
            self._run_kwh += (r.power_kw - expected) * dt / 3600.0
            assert self._run_start is not None  # noqa: S101 - set just above
            follow = r.timestamp - self._run_start >= timedelta(seconds=cfg.follow_after_s)
        # ... then learn: fully from a normal reading; a tenth while the recent residuals
        # lean one way (the start of a slow drift must not become the norm) and from a
        # reading flagged only by the sustained test (so a model that learned a drift as
        # normal, say in a new temperature range, heals instead of flagging for days);
        # never from a reading flagged on its own (spike, drop, off_shift, stuck).
        lean = abs(self._slow) >= cfg.drift_z / 2
        w = (1.0 if follow or not (flagged or lean) else 0.1 if not (point or stuck) else 0.0)
        if w > 0:
            if follow and self._forgot_run != self._run_start:
                # A lasting change, once per run: learn the new level quickly.
                self.expect.forget()
                self._forgot_run = self._run_start
                self._fast = self._slow = 0.0
            if isinstance(self.detector, ResidualDetector):
                self.detector.learn_one(x, w)
            else:
                self.detector.learn_one(x)
                self.expect.learn_one(drivers, r.power_kw, t, w)
        if not flagged:
            return events

        self._anomalies += 1
        if stuck:
            kind = "stuck"
        elif point and not (self._slow * z > 0 and abs(self._slow) >= cfg.drift_z):
            kind = ("off_shift" if z > 0 and not self._producing(drivers)
                    else "spike" if z > 0 else "drop")
            if kind != "off_shift" and self._run_start is not None and (
                    r.timestamp - self._run_start >= _LONG_RUN):
                kind = "baseline_deviation"  # far off for a quarter of an hour: not a spike
        else:
            kind = "drift"
        anomaly = self._anomaly_event(r, score, z, expected, kind, drivers)
        episode_events = self.episodes.on_anomaly(anomaly)
        anomaly = msgspec.structs.replace(
            anomaly, episode_id=self.episodes.open[anomaly.anomaly_type].episode_id)
        events.append(anomaly)
        events.extend(episode_events)
        return events

    @staticmethod
    def _producing(drivers: dict[str, float]) -> bool:
        """Whether the reading says the machine was producing (True when it does not say)."""
        for name in ("throughput_units_per_hour", "production_count"):
            if name in drivers:
                return drivers[name] > 0
        return True

    def _anomaly_event(self, r: Reading, score: float, z: float, expected: float, kind: str,
                       drivers: dict[str, float]) -> AnomalyDetected:
        deviation = round(100.0 * (r.power_kw - expected) / expected, 2) if expected else None
        ts = r.timestamp
        impact = self._run_kwh
        minutes = (ts - self._run_start).total_seconds() / 60 if self._run_start else 0.0
        # A flagged reading is at least a warning: "normal" would say there is nothing to see.
        severity = ("warning" if kind == "stuck" else max(
            severity_of(z, impact, self.machine.rated_power_kw), "warning",
            key=("normal", "warning", "critical").index))
        parts = " + ".join(f"{k} {v:.2f}" for k, v in self.expect.contributions(drivers).items())
        why = {
            "stuck": f"the same value {self.config.stuck_run} times in a row: meter stuck?",
            "drift": (f"sustained: mean deviation {self._slow:+.1f} σ over the last "
                      f"{self.config.drift_slow_s / 60:.0f} min"),
            "off_shift": (f"drawing {r.power_kw - expected:.2f} kW more than expected while "
                          "reporting no production"),
            "baseline_deviation": f"far off for {minutes:.0f} min",
        }.get(kind, "one reading far off")
        explanation = (
            f"{METRIC} {r.power_kw:.2f} kW vs expected {expected:.2f} kW"
            f"{f' ({parts})' if parts else ''}, {z:+.1f} robust σ; {why}; "
            f"{impact:+.3f} kWh against expected over {minutes:.0f} min")
        return AnomalyDetected(
            event_id=stable_event_id("anomaly_detected", self.machine_id, ts.isoformat(),
                                     self.config.detector),
            occurred_at=ts, machine_id=self.machine_id, machine_name=self.machine.name,
            timestamp=ts, metric=METRIC, value=r.power_kw, expected_value=round(expected, 4),
            deviation_percent=deviation, score=round(score, 4),
            threshold=self.config.threshold, anomaly_score=round(z, 3), severity=severity,  # type: ignore[arg-type]
            anomaly_type=kind, detector=self.config.detector, explanation=explanation,
            energy_impact_kwh=round(impact, 4))


#: Told of every reading scored: the reading, the power expected before it was scored (None
#: until its machine's model has data) and the anomalies it raised.
Observer = Callable[[Reading, float | None, list[AnomalyDetected]], None]


def score_stream(readings: Iterable[Reading], config: ScoringConfig,
                 observe: Observer | None = None) -> Iterator[Output]:
    """Score readings of any machines in order, as the agent does; yield every event (and
    tell ``observe`` of each reading, e.g. for plots)."""
    scorers: dict[str, MachineScorer] = {}
    for r in readings:
        s = scorers.get(r.machine_id)
        if s is None:
            s = scorers[r.machine_id] = MachineScorer(r.machine_id, config)
        if observe is None:
            yield from s.step(r)
            continue
        expected = s.expect.predict(r.drivers()) if s.seen else None
        out = s.step(r)
        observe(r, expected, [e for e in out if isinstance(e, AnomalyDetected)])
        yield from out
