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
    machine_id
        The machine (of the catalogue, `schemas.machines`).
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
    ...                    power_kw=p, energy_kwh=p * 30 / 3600)
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

    def __init__(self, machine_id: str, config: ScoringConfig) -> None:
        machine = machine_by_id(machine_id)
        if machine is None:
            msg = f"unknown machine_id {machine_id!r}"
            raise ValueError(msg)
        self.machine = machine
        self.config = config
        self.detector = _explained(config, machine)
        self.order = ReadingOrder()
        self.metrics = Metrics(machine, config.metrics_interval_s)
        self.episodes = EpisodeTracker()
        self.sustained = SustainedDeviation(config.drift_z, config.drift_slow_s,
                                            config.drift_fast_s)
        self.stuck = StuckMeter(config.stuck_run)
        self.runs = RunTracker(_RUN_GAP, timedelta(seconds=config.follow_after_s))
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
            metrics=self.metrics.state())

    @classmethod
    def from_state(cls, state: ScorerState, config: ScoringConfig) -> MachineScorer:
        """The scorer that wrote ``state``, going on with ``config``; `StateMismatch` when
        the state is of another detector (or detector parameters) than ``config``'s.

        The state names the active baseline by its id: `set_baseline` it again (the same
        model goes on with its CUSUM and drift test), and set `maintenance`.
        """
        if machine_by_id(state.machine_id) is None:
            msg = f"a state of an unknown machine {state.machine_id!r}"
            raise StateMismatch(msg)
        s = cls(state.machine_id, config)
        s.detector.load(state.detector)
        s.order.load(state.order)
        s.sustained.load(state.sustained)
        s.stuck.load(state.stuck)
        s.runs.load(state.run)
        s.episodes.load(state.episodes)
        s.metrics.load(state.metrics)
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
        score, expected, z, known = self._judge(x, drivers, r.power_kw)  # score first ...
        stuck, warm = self.stuck.update(r.power_kw), self.seen > cfg.warmup
        if self.maintenance is not None and self.maintenance.covers(ts):
            return events  # in maintenance: not judged, not learned
        point = known and abs(z) >= cfg.min_z and score >= cfg.threshold
        if known and not point:  # a reading far off on its own does not feed the means
            self.sustained.update(z, dt)
        flagged = warm and (stuck or point or (known and self.sustained.holds(z)))
        follow = flagged and self.runs.add(ts, (r.power_kw - expected) * dt / 3600.0)
        self._learn(x, follow, learning_weight(  # ... then learn
            follow=follow, flagged=flagged, leaning=self.sustained.leaning, alone=point or stuck))
        if not flagged:
            return events
        kind = classify(stuck=stuck, point=point, drifting=self.sustained.leans_with(z), z=z,
                        producing=producing(drivers), run=self.runs.length(ts))
        return events + self._anomaly(r, score, z, expected, kind, drivers)

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
        return score, expected, z, expect.leverage(drivers) <= self.config.max_leverage

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
        anomaly = msgspec.structs.replace(
            anomaly, episode_id=self.episodes.open[anomaly.anomaly_type].episode_id)
        return [anomaly, *episode_events]

    def _anomaly_event(self, r: Reading, score: float, z: float, expected: float, kind: str,
                       drivers: dict[str, float]) -> AnomalyDetected:
        deviation = round(100.0 * (r.power_kw - expected) / expected, 2) if expected else None
        ts = r.timestamp
        impact = self.runs.kwh
        minutes = self.runs.length(ts).total_seconds() / 60
        severity = flagged_severity(kind, z, impact, self.machine.rated_power_kw)
        parts = " + ".join(f"{k} {v:.2f}" for k, v in self.expect.contributions(drivers).items())
        why = {
            "stuck": f"the same value {self.config.stuck_run} times in a row: meter stuck?",
            "drift": (f"sustained: mean deviation {self.sustained.slow:+.1f} σ over the last "
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
            threshold=self.config.threshold, anomaly_score=round(z, 3), severity=severity,
            anomaly_type=kind, detector=self.config.detector, explanation=explanation,
            energy_impact_kwh=round(impact, 4))


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
        expected = s.expect.predict(r.drivers()) if s.seen else None
        out = s.step(r)
        observe(r, expected, [e for e in out if isinstance(e, AnomalyDetected)])
        yield from out
