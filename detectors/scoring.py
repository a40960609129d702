"""The per-reading scoring step: one machine's detector state in, events out.

`MachineScorer.step` is deterministic and does no I/O: the Faust agent, replay and the
benchmarks all call it the same way. Time comes from the reading, never the wall clock.

The step is a pipeline of small parts, each with its own state as data
(`detectors.state`): which readings are new (`detectors.ordering.ReadingOrder`), the metric
interval, hourly energy and live baseline (`detectors.metrics.Metrics`), alert episodes
(`detectors.episodes.EpisodeTracker`), the detector and the expected-power model that
explains it (`detectors.online`), the sustained-deviation test
(`detectors.sustained.SustainedDeviation`), the stuck meter (`detectors.stuck.StuckMeter`),
the run of flagged readings (`detectors.runs.RunTracker`), and what a flagged reading is
(`detectors.classify`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec

from detectors.base import DETECTORS
from detectors.classify import (
    classify,
    flagged_severity,
    learning_weight,
    producing,
    severity_of,
)
from detectors.episodes import EpisodeTracker
from detectors.hourly import too_large
from detectors.metrics import METRIC, Metrics
from detectors.online import (
    ExpectedPower,
    Explained,
    HalfSpaceTreesDetector,
    ResidualDetector,
    RobustZScore,
)
from detectors.ordering import LateReading, ReadingOrder
from detectors.power_only import PowerOnlyDetector
from detectors.runs import RunTracker
from detectors.state import ScorerState, StateMismatch
from detectors.stuck import StuckMeter
from detectors.sustained import SustainedDeviation
from schemas.energy import BaselineModel, EnergyHourly
from schemas.events import AnomalyDetected, Event, MaintenanceWindow, stable_event_id
from schemas.machines import Machine, machine_by_id
from schemas.readings import Reading

__all__ = ["METRIC", "MachineScorer", "Observer", "Output", "ScoringConfig", "make_detector",
           "score_stream", "severity_of"]

Output = Event | EnergyHourly

#: The largest |z| of a few thousand Gaussian readings: a power-only meter whose tail
#: (`detectors.power_only.PowerOnlyDetector.tail`) is wider needs wider drift means.
_GAUSSIAN_TAIL = 4.0

#: Flagged readings this close together are one run (for energy impact and following).
_RUN_GAP = timedelta(minutes=5)


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
    episode_gap_s, hold_readings
        A machine's anomalies no further apart than ``episode_gap_s`` are one episode, one
        alert (`detectors.episodes.EpisodeTracker`); an anomaly within ``hold_readings``
        readings of the machine's interval after the opening of its last episode reopens
        that episode instead of raising a new alert (no flapping): 100 minutes for a meter
        that reports every 30 s, 16 h 40 min for one every 5 minutes, and at least
        ``episode_gap_s``.
    power_only_threshold, power_only_min_z
        Readings without drivers (a sub-meter with power only) are scored by
        `detectors.power_only.PowerOnlyDetector`: a candidate has an anomaly likelihood of at
        least ``power_only_threshold`` and deviates at least ``power_only_min_z`` robust σ
        from the level of its hour of the week; a reading past ``power_only_spike_z`` σ and
        ``power_only_tail`` times the meter's tail (`detectors.power_only.PowerOnlyDetector.
        tail`) is a candidate whatever its likelihood. The threshold is the one
        ``enms evaluate nab`` chose on all NAB development files (in-sample; the
        cross-half frozen score is the honest one), written to
        `evaluation/configs/nab.json` and copied here.
    """

    detector: str = "residual"
    threshold: float = 0.9
    min_z: float = 4.0
    max_leverage: float = 0.1
    #: Identical power values in a row that mean a stuck meter (real meters jitter).
    stuck_run: int = 8
    warmup: int = 300
    window_seconds: float = 7200.0
    drift_z: float = 3.0
    drift_slow_s: float = 600.0
    drift_fast_s: float = 60.0
    follow_after_s: float = 4 * 3600.0
    metrics_interval_s: int = 60
    max_lateness_s: float = 900.0
    episode_gap_s: float = 900.0
    hold_readings: int = 200
    power_only_threshold: float = 0.16
    power_only_min_z: float = 5.0
    power_only_spike_z: float = 8.0
    power_only_tail: float = 2.0
    seed: int = 42


#: `detectors.univariate.AnomalyLikelihood`'s parameters for power-only meters, chosen on the
#: NAB development files (`evaluation/configs/nab.json`, `detectors.univariate` notes).
POWER_ONLY_LIKELIHOOD: dict[str, float | int | str] = {
    "average": 20, "short": 20, "fast_half_life": 6.0, "scale": 8.0, "history": 3000,
    "combine": "mean", "period": 86_400.0}


def expected_power_floor(machine: Machine) -> float:
    """Smallest denominator of a relative residual: 5 % of the machine's rated power."""
    return 0.05 * machine.rated_power_kw


def make_detector(config: ScoringConfig,
                  machine: Machine) -> ResidualDetector | HalfSpaceTreesDetector | RobustZScore:
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
        return ResidualDetector(METRIC, floor=expected_power_floor(machine))
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


def _explained(config: ScoringConfig, machine: Machine) -> ResidualDetector | Explained:
    """The configured detector with the expected-power model that explains it: the residual
    detector's own, or one beside another detector."""
    det = make_detector(config, machine)
    if isinstance(det, ResidualDetector):
        return det
    return Explained(det, target=METRIC, floor=expected_power_floor(machine))


class MachineScorer:
    """One machine's scoring pipeline: readings in, events out (`step`).

    Parameters
    ----------
    machine
        The machine, or its id in the catalogue (`schemas.machines`).
    config
        How readings are scored.

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> cfg = ScoringConfig(detector="zscore", threshold=0.5, warmup=50)
    >>> s = MachineScorer("c0000000-0000-0000-0000-000000000003", cfg)
    >>> t0 = datetime(2026, 1, 5, 8, tzinfo=timezone.utc)
    >>> def r(i, p):
    ...     return Reading(machine_id=s.machine_id, timestamp=t0 + timedelta(seconds=30 * i),
    ...                    power_kw=p, energy_kwh=p * 30 / 3600, throughput_units_per_hour=90.0)
    >>> events = [e for i in range(100) for e in s.step(r(i, 20.0 + (i % 3) * 0.1))]
    >>> sorted({e.event_type for e in events})
    ['metric_updated']
    >>> [(e.severity, e.anomaly_type) for e in s.step(r(100, 40.0))
    ...  if isinstance(e, AnomalyDetected)]
    [('critical', 'spike')]

    Its state is data: a scorer built from it goes on exactly where this one stopped.

    >>> clone = MachineScorer.from_state(s.state(), cfg)
    >>> clone.step(r(101, 20.1)) == s.step(r(101, 20.1))
    True
    """

    def __init__(self, machine: str | Machine, config: ScoringConfig) -> None:
        if isinstance(machine, str):
            found = machine_by_id(machine)
            if found is None:
                msg = f"unknown machine_id {machine!r}"
                raise ValueError(msg)
            machine = found
        self.machine = machine
        self.config = config
        self.detector = _explained(config, machine)
        #: Readings without drivers are judged by their hour of the week (`power_only`).
        self._power_only: PowerOnlyDetector | None = None
        self.order = ReadingOrder()
        self.metrics = Metrics(machine, config.metrics_interval_s)
        self.episodes = EpisodeTracker(
            timedelta(seconds=config.episode_gap_s),
            hold=timedelta(seconds=max(config.episode_gap_s,
                                       config.hold_readings * machine.data_interval_seconds)))
        self.sustained = SustainedDeviation(config.drift_z, config.drift_slow_s,
                                            config.drift_fast_s)
        self.stuck = StuckMeter(config.stuck_run)
        self.runs = RunTracker(_RUN_GAP, timedelta(seconds=config.follow_after_s))
        #: Readings far off where the model barely knows the drivers are not learned; for
        #: ``follow_after_s`` on end the model is what is wrong (its first shift learned
        #: during a fault), and it learns them: no lockout.
        self.bent = RunTracker(_RUN_GAP, timedelta(seconds=config.follow_after_s))
        #: The machine's maintenance window (set by the caller): readings in it are neither
        #: judged nor learned; metrics and hourly energy go on.
        self.maintenance: MaintenanceWindow | None = None

    @property
    def machine_id(self) -> str:
        """The machine's id."""
        return self.machine.id

    @property
    def expect(self) -> ExpectedPower:
        """The expected-power model (for z, the expected value and explanations)."""
        return self.detector.model

    @property
    def power_only(self) -> PowerOnlyDetector:
        """The detector of readings without drivers (built at the first such reading)."""
        det = self._power_only
        if det is None:
            det = self._power_only = PowerOnlyDetector(
                floor=0.2 * expected_power_floor(self.machine), likelihood=POWER_ONLY_LIKELIHOOD)
        return det

    def expected_power(self, r: Reading) -> float | None:
        """The power expected for ``r`` before it is scored (None until the model of its
        kind of reading, with or without drivers, has data)."""
        drivers = r.drivers()
        if drivers:
            return self.expect.predict(drivers) if self.seen else None
        return None if self._power_only is None else self.power_only.profile.expected(
            r.timestamp.timestamp())

    @property
    def seen(self) -> int:
        """Readings taken in so far."""
        return self.order.admitted

    @property
    def newest(self) -> datetime | None:
        """The time of the newest reading taken in so far (None before any)."""
        t = self.order.newest
        return None if t is None else datetime.fromtimestamp(t, UTC)

    # -- state -------------------------------------------------------------------------
    def state(self) -> ScorerState:
        """Everything the scorer keeps, as data (`detectors.state.encode` writes it)."""
        return ScorerState(
            machine_id=self.machine_id, detector=self.detector.state(),
            order=self.order.state(), sustained=self.sustained.state(),
            stuck=self.stuck.state(), run=self.runs.state(), episodes=self.episodes.state(),
            metrics=self.metrics.state(),
            power_only=None if self._power_only is None else self._power_only.state(),
            bent=self.bent.state())

    @classmethod
    def from_state(cls, state: ScorerState, config: ScoringConfig,
                   machine: Machine | None = None) -> MachineScorer:
        """The scorer that wrote ``state``, going on with ``config``; `StateMismatch` when
        the state is of another detector (or detector parameters) than ``config``'s.

        ``machine``: the machine, when it is not in the catalogue. The state names the
        active baseline by its id: `set_baseline` it again (the same model goes on with its
        CUSUM and drift test), and set `maintenance`.
        """
        if machine is None:
            machine = machine_by_id(state.machine_id)
        if machine is None or machine.id != state.machine_id:
            msg = f"a state of an unknown machine {state.machine_id!r}"
            raise StateMismatch(msg)
        s = cls(machine, config)
        s.detector.load(state.detector)
        s.order.load(state.order)
        s.sustained.load(state.sustained)
        s.stuck.load(state.stuck)
        s.runs.load(state.run)
        s.episodes.load(state.episodes)
        s.metrics.load(state.metrics)
        if state.power_only is not None:
            s.power_only.load(state.power_only)
        if state.bent is not None:
            s.bent.load(state.bent)
        return s

    # -- baseline ------------------------------------------------------------------------
    @property
    def baseline(self) -> BaselineModel | None:
        """The active baseline (`set_baseline`)."""
        return self.metrics.baseline.model

    @property
    def cusum_kwh(self) -> float:
        """Σ (actual − expected) energy of the metric intervals under the active baseline."""
        return self.metrics.baseline.cusum_kwh

    @cusum_kwh.setter
    def cusum_kwh(self, value: float) -> None:
        self.metrics.baseline.cusum_kwh = value

    def set_baseline(self, model: BaselineModel | None) -> None:
        """Use this active baseline; a new version restarts the CUSUM and the drift test."""
        self.metrics.baseline.set(model)

    # -- scoring -------------------------------------------------------------------------
    def step(self, r: Reading) -> list[Output]:
        """Score one reading, then learn from it (`detectors.classify.learning_weight`);
        return what it produced: events, and a closed hour's `EnergyHourly` record."""
        cfg, ts, t = self.config, r.timestamp, r.timestamp.timestamp()
        dt = self._admit(r, t)  # the time it stands for; None: not taken in
        if dt is None:
            return []
        events = [*self.metrics.add(r, t, self.expect.refused), *self.episodes.on_time(ts)]
        drivers = r.drivers()
        x = {**drivers, METRIC: r.power_kw, "t": t}
        v = self._verdict(x, drivers, t, r.power_kw)  # score first ...
        score, expected, z, known, point = v.score, v.expected, v.z, v.known, v.point
        stuck, warm = self.stuck.update(r.power_kw), self.seen > cfg.warmup
        if self.maintenance is not None and self.maintenance.covers(ts):
            return events  # in maintenance: not judged, not learned
        if known and not point:  # a reading far off on its own does not feed the means
            self.sustained.update(z, dt)
        elif not known:  # not judged: no evidence either way, and the means must not go
            self.sustained.update(0.0, dt)  # stale (a drift from hours ago, read as now)
        flagged = warm and (stuck or point or (known and self.sustained.holds(z, v.drift_z)))
        follow = flagged and self.runs.add(ts, (r.power_kw - expected) * dt / 3600.0)
        w = 1.0 if v.below_idle and not stuck else learning_weight(
            follow=follow, flagged=flagged, leaning=self.sustained.leaning, alone=point or stuck)
        if v.bends and not v.below_idle and not self._bent_too_long(ts):
            w = 0.0
        if self.stuck.repeating:
            w = 0.0  # a stuck meter's repeats are not measurements
        if drivers:  # ... then learn
            self._learn(x, follow, w)
        else:
            self._learn_power_only(x, follow, w, dt)
        if not flagged:
            return events
        kind = classify(stuck=stuck, point=point, drifting=self.sustained.leans_with(z), z=z,
                        producing=v.busy, run=self.runs.length(ts))
        return events + self._anomaly(r, score, z, expected, kind, drivers)

    def _bent_too_long(self, ts: datetime) -> bool:
        """Count a reading that would bend the model; True once such readings have gone on
        for ``follow_after_s`` (the model forgets, once, and learns them from then on)."""
        if not self.bent.add(ts, 0.0):
            return False
        if self.bent.follow_once():
            self.expect.forget()
            self.sustained.reset()
        return True

    def _admit(self, r: Reading, t: float) -> float | None:
        """Sort ``r`` (at ``t`` s): the seconds it stands for, or None when it is not taken
        in (counted as refused or duplicate); `LateReading` when it comes too late."""
        if too_large(r):
            self.metrics.tally.refused += 1  # could overflow a sum or a square
            return None
        newest = self.order.newest
        admission = self.order.admit(t, self.config.max_lateness_s)
        if admission == "duplicate":  # seen before (a retried batch, a replay): skip
            self.metrics.tally.duplicates += 1
            return None
        if admission == "too_late":
            raise LateReading(_too_late(t, newest or t, self.config.max_lateness_s), "timestamp")
        if admission == "late":
            self.metrics.tally.late += 1
        # At most two intervals: a gap in the data is not minutes of evidence (nor energy).
        interval = self.machine.data_interval_seconds
        return interval if newest is None else min(max(0.0, t - newest), 2.0 * interval)

    def _judge(self, x: dict[str, float], drivers: dict[str, float],
               power: float) -> tuple[float, float, float, bool]:
        """(score, expected power, residual z, whether the model knows the drivers)."""
        score = self.detector.score_one(x)
        expect = self.expect
        expected = expect.predict(drivers)
        z = expect.z_of(power, expected)
        if not (math.isfinite(z) and math.isfinite(expected) and math.isfinite(score)):
            return score, expected, 0.0, False  # the model cannot say: not judged, not fed
        return score, expected, z, (expect.leverage(drivers) <= self.config.max_leverage
                                    and not expect.novel(drivers))

    def _verdict(self, x: dict[str, float], drivers: dict[str, float], t: float,
                 power: float) -> _Verdict:
        """What the detector makes of a reading, before it is learned."""
        cfg = self.config
        if drivers:
            score, expected, z, known = self._judge(x, drivers, power)
            point = known and abs(z) >= cfg.min_z and score >= cfg.threshold
            drift_z, busy = cfg.drift_z, producing(drivers)
            # Drivers a little past what the model knows (a colder night) cannot explain a
            # reading this far off: learning it would bend the model to an anomaly.
            bends = not known and abs(z) >= cfg.min_z and not self.expect.new_state(drivers)
        else:  # the hour of the week is a weaker guide than drivers: a meter whose normal
            # readings stray far (its tail) needs larger deviations, alone or sustained
            score, expected, z, known = self._judge_power_only(x, t, power)
            det = self.power_only
            spike = max(cfg.power_only_spike_z, cfg.power_only_tail * det.tail)
            drift_z = cfg.drift_z * max(1.0, det.tail / _GAUSSIAN_TAIL)
            point = known and abs(z) >= cfg.power_only_min_z and (
                score >= cfg.power_only_threshold or abs(z) >= spike)
            busy, bends = not det.profile.off_hours(expected), False
        # Less than expected while reported idle wastes nothing: it is the idle level,
        # learned, not judged (after an off-shift fault, the return to the idle level is not
        # a "drop"). Not for a meter with power only: its idle hours are only inferred, and
        # its profile never learns from today's hour anyway (`detectors.power_only`).
        below_idle = bool(drivers) and known and z < 0 and not busy
        if below_idle:
            known = point = False
        return _Verdict(score, expected, z, known, point, drift_z, busy, below_idle, bends)

    def _judge_power_only(self, x: dict[str, float], t: float,
                          power: float) -> tuple[float, float, float, bool]:
        """`_judge` of a reading without drivers: its hour of the week decides."""
        det = self.power_only
        score = det.score_one(x)
        judged = det.profile.judge(t, power)
        if judged is None or not math.isfinite(score):
            return score, 0.0 if judged is None else judged[0], 0.0, False
        return score, judged[0], judged[1], True

    def _learn_power_only(self, x: dict[str, float], follow: bool, w: float,
                          dt: float) -> None:
        det = self.power_only
        if w > 0 and follow and self.runs.follow_once():
            det.profile.forget()  # a lasting change, once per run: learn the new level
            self.sustained.reset()
        # A stuck meter's repeats are not measurements: not even a young bin takes them.
        det.learn_one(x, dt, w, profile=not self.stuck.repeating)

    def _learn(self, x: dict[str, float], follow: bool, w: float) -> None:
        if w <= 0:
            return
        if follow and self.runs.follow_once():
            # A lasting change, once per run: learn the new level quickly.
            self.expect.forget()
            self.sustained.reset()
        self.detector.learn_one(x, w)

    def _anomaly(self, r: Reading, score: float, z: float, expected: float, kind: str,
                 drivers: dict[str, float]) -> list[Output]:
        """The anomaly event, in its episode, and the episode events it causes."""
        self.metrics.tally.anomalies += 1
        anomaly = self._anomaly_event(r, score, z, expected, kind, drivers)
        episode_events = self.episodes.on_anomaly(anomaly)
        current = self.episodes.current
        anomaly = msgspec.structs.replace(
            anomaly, episode_id=None if current is None else current.episode_id)
        return [anomaly, *episode_events]

    def _anomaly_event(self, r: Reading, score: float, z: float, expected: float, kind: str,
                       drivers: dict[str, float]) -> AnomalyDetected:
        deviation = round(100.0 * (r.power_kw - expected) / expected, 2) if expected else None
        ts = r.timestamp
        cfg = self.config  # a reading without drivers is the power-only detector's
        detector, threshold = ((cfg.detector, cfg.threshold) if drivers
                               else ("power_only", cfg.power_only_threshold))
        impact = self.runs.kwh
        minutes = self.runs.length(ts).total_seconds() / 60
        severity = flagged_severity(kind, z, impact, self.machine.rated_power_kw)
        parts = (" + ".join(f"{k} {v:.2f}" for k, v in self.expect.contributions(drivers).items())
                 if drivers else "level of this hour of the week")
        why = {
            "stuck": f"the same value {self.config.stuck_run} times in a row: meter stuck?",
            "drift": (f"sustained: mean deviation {self.sustained.slow:+.1f} σ over the last "
                      f"{self.config.drift_slow_s / 60:.0f} min"),
            "off_shift": (f"drawing {r.power_kw - expected:.2f} kW more than expected while "
                          + ("reporting no production" if drivers else "in an idle hour")),
            "baseline_deviation": f"far off for {minutes:.0f} min",
        }.get(kind, "one reading far off")
        explanation = (
            f"{METRIC} {r.power_kw:.2f} kW vs expected {expected:.2f} kW"
            f"{f' ({parts})' if parts else ''}, {z:+.1f} robust σ; {why}; "
            f"{impact:+.3f} kWh against expected over {minutes:.0f} min")
        return AnomalyDetected(
            event_id=stable_event_id("anomaly_detected", self.machine_id, ts.isoformat(),
                                     detector),
            occurred_at=ts, machine_id=self.machine_id, machine_name=self.machine.name,
            timestamp=ts, metric=METRIC, value=r.power_kw, expected_value=round(expected, 4),
            deviation_percent=deviation, score=round(score, 4),
            threshold=threshold, anomaly_score=round(z, 3), severity=severity,
            anomaly_type=kind, detector=detector, explanation=explanation,
            energy_impact_kwh=round(impact, 4))


@dataclass(frozen=True, slots=True)
class _Verdict:
    """`MachineScorer._verdict`: a reading's score, expected power and residual z, whether
    the model knows its drivers, whether it is off on its own (``point``), the drift
    threshold for it, whether the machine is busy, and the two learning exceptions."""

    score: float
    expected: float
    z: float
    known: bool
    point: bool
    drift_z: float
    busy: bool
    below_idle: bool  # below expected while idle: learned, not judged
    bends: bool  # far off where the model barely knows the drivers: not learned


def _too_late(t: float, newest: float, max_lateness_s: float) -> str:
    return (f"{newest - t:.0f} s older than the newest reading of this machine "
            f"({datetime.fromtimestamp(newest, UTC).isoformat()}); readings more than "
            f"max_lateness_s = {max_lateness_s:.0f} s late are refused, since they cannot be "
            "told from re-sent ones")


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
        expected = s.expected_power(r)
        out = s.step(r)
        observe(r, expected, [e for e in out if isinstance(e, AnomalyDetected)])
        yield from out
