"""The parts of the scoring pipeline, one by one; each one's state round-trips as data."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import msgspec
import pytest

from detectors import state as st
from detectors.baseline import _example_model
from detectors.classify import LONG_RUN, classify, learning_weight, producing
from detectors.enpi import LiveBaseline
from detectors.episodes import EpisodeTracker
from detectors.metrics import Metrics
from detectors.online import ExpectedPower, Explained, HalfSpaceTreesDetector, RobustZScore
from detectors.ordering import ReadingOrder
from detectors.runs import RunTracker
from detectors.stuck import StuckMeter
from detectors.sustained import SustainedDeviation
from detectors.window import MetricWindow
from schemas.energy import EnergyHourly
from schemas.events import AnomalyDetected
from schemas.machines import Machine, machine_by_id
from schemas.readings import Reading

M = "c0000000-0000-0000-0000-000000000003"  # Motor-Line-A, 30 kW, 30 s


def machine(machine_id: str) -> Machine:
    m = machine_by_id(machine_id)
    assert m is not None, machine_id
    return m


MOTOR = machine(M)
T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)  # a Monday


def reading(i: int, p: float = 20.0, *, production_count: float | None = None,
            outdoor_temp_c: float | None = None) -> Reading:
    return Reading(machine_id=M, timestamp=T0 + timedelta(seconds=30 * i), power_kw=p,
                   energy_kwh=p * 30 / 3600, production_count=production_count,
                   outdoor_temp_c=outdoor_temp_c)


class Stateful(Protocol):
    """A part whose state is data: ``state()`` gives it, ``load`` restores it."""

    def state(self) -> Any: ...  # each part has its own state struct

    def load(self, state: Any) -> None: ...


P = TypeVar("P", bound=Stateful)


def round_trip(part: P, fresh: P) -> P:
    """``fresh`` loaded with ``part``'s state, through JSON."""
    state = part.state()
    fresh.load(msgspec.json.decode(msgspec.json.encode(state), type=type(state)))
    return fresh


# -- sustained deviation ---------------------------------------------------------------------


def test_one_wild_reading_moves_the_means_no_more_than_six_sigma_would() -> None:
    a, b = SustainedDeviation(), SustainedDeviation()
    a.update(1000.0, 30.0)
    b.update(6.0, 30.0)
    assert a.state() == b.state()


def test_the_deviation_is_sustained_only_on_the_side_of_the_reading() -> None:
    sd = SustainedDeviation(threshold=2.0)
    for _ in range(40):
        sd.update(-3.0, 30.0)
    assert sd.holds(-1.0) and not sd.holds(1.0) and sd.leans_with(-0.5)
    sd.update(3.0, 0.0)  # a reading that stands for no time moves nothing
    assert sd.holds(-1.0)


def test_a_short_burst_is_not_sustained() -> None:
    """The slow mean takes minutes: one minute far off passes the fast mean only."""
    sd = SustainedDeviation(threshold=2.0, slow_s=600.0, fast_s=60.0)
    for _ in range(2):
        sd.update(6.0, 30.0)
    assert abs(sd.state().fast) >= 2.0 and not sd.holds(6.0)


# -- stuck meter -----------------------------------------------------------------------------


def jittery(meter: StuckMeter, n: int = 200) -> None:
    """A meter that jitters: its values almost never repeat."""
    for i in range(n):
        meter.update(10.0 + 0.01 * (i % 13))


def test_a_stuck_meter_is_reported_once_per_run() -> None:
    meter = StuckMeter(run=4)
    jittery(meter)
    values = [1.0] * 10 + [2.0] + [3.0] * 12
    flagged = [i for i, v in enumerate(values) if meter.update(v)]
    # Once per run; the first run taught the meter that it repeats now and then, so the
    # second needs a little longer than 4.
    assert len(flagged) == 2 and flagged[0] == 3 and 14 <= flagged[1] < len(values)


def test_a_meter_whose_values_often_repeat_needs_a_longer_run() -> None:
    """A coarse meter (1 kW steps, each value twice in a row) is not stuck after 4 or 8
    repeats; it is after a run its own repeat rate makes a one-in-a-million event."""
    meter = StuckMeter(run=4)
    for i in range(3000):
        assert not meter.update(float(i // 2 % 5))
    assert meter.needed() == 20
    flags = [meter.update(9.0) for _ in range(60)]
    assert sum(flags) == 1 and 19 <= flags.index(True) < 30  # the run teaches it a little
    never = StuckMeter(run=4)
    for _ in range(3000):
        assert not never.update(0.0)  # a meter that always reads 0 cannot be told stuck


def test_the_stuck_count_goes_on_after_a_restore() -> None:
    meter = StuckMeter(run=4)
    jittery(meter)
    for _ in range(2):
        meter.update(5.0)
    clone = round_trip(meter, StuckMeter(run=4))
    assert [clone.update(5.0), clone.update(5.0)] == [False, True]


# -- runs ------------------------------------------------------------------------------------


def test_flagged_readings_further_apart_than_the_gap_start_a_new_run() -> None:
    runs = RunTracker(gap=timedelta(minutes=5), follow_after=timedelta(hours=1))
    runs.add(T0, 1.0)
    runs.add(T0 + timedelta(minutes=4), 1.0)
    assert runs.kwh == 2.0 and runs.length(T0 + timedelta(minutes=4)) == timedelta(minutes=4)
    runs.add(T0 + timedelta(minutes=10), 0.5)
    assert runs.kwh == 0.5 and runs.length(T0 + timedelta(minutes=10)) == timedelta(0)


def test_a_late_flagged_reading_does_not_move_the_run_back() -> None:
    runs = RunTracker(gap=timedelta(minutes=5))
    runs.add(T0 + timedelta(minutes=10), 1.0)
    runs.add(T0 + timedelta(minutes=8), 1.0)  # late, within the gap: the same run
    assert runs.state().last == T0 + timedelta(minutes=10) and runs.kwh == 2.0


def test_a_lasting_run_is_followed_once() -> None:
    runs = RunTracker(gap=timedelta(minutes=5), follow_after=timedelta(minutes=3))
    follows = [runs.add(T0 + timedelta(minutes=m), 0.1) for m in range(6)]
    assert follows == [False, False, False, True, True, True]
    assert [runs.follow_once() for _ in range(3)] == [True, False, False]
    clone = round_trip(runs, RunTracker(gap=timedelta(minutes=5),
                                        follow_after=timedelta(minutes=3)))
    assert clone.follow_once() is False  # the restored run was followed already
    runs.add(T0 + timedelta(hours=1), 0.1)  # a new run
    assert runs.add(T0 + timedelta(hours=1, minutes=3), 0.1) and runs.follow_once()


# -- classification --------------------------------------------------------------------------


@pytest.mark.parametrize(("flags", "z", "kind"), [
    ({"stuck": True, "point": True}, 9.0, "stuck"),
    ({"point": True}, 9.0, "spike"),
    ({"point": True}, -9.0, "drop"),
    ({"point": True, "producing": False}, 9.0, "off_shift"),
    ({"point": True, "producing": False}, -9.0, "drop"),  # below expected: not off shift
    ({"point": True, "run": LONG_RUN}, -9.0, "baseline_deviation"),
    ({"point": True, "producing": False, "run": LONG_RUN}, 9.0, "off_shift"),
    ({"point": True, "drifting": True}, 9.0, "drift"),
    ({}, 2.5, "drift"),
])
def test_classify(flags: dict[str, Any], z: float, kind: str) -> None:
    args = {"stuck": False, "point": False, "drifting": False, "producing": True,
            "run": timedelta(0), **flags}
    assert classify(**args, z=z) == kind


@pytest.mark.parametrize(("follow", "flagged", "leaning", "alone", "w"), [
    (False, False, False, False, 1.0),
    (False, False, True, False, 0.1),  # the start of a drift must not become the norm
    (False, True, False, False, 0.1),  # flagged by the sustained test only
    (False, True, False, True, 0.0),   # a spike, a drop, a stuck meter
    (True, True, True, True, 1.0),     # a lasting change followed
])
def test_learning_weight(follow: bool, flagged: bool, leaning: bool, alone: bool,
                         w: float) -> None:
    assert learning_weight(follow=follow, flagged=flagged, leaning=leaning, alone=alone) == w


def test_producing_reads_throughput_before_the_count() -> None:
    assert not producing({"throughput_units_per_hour": 0.0, "production_count": 3.0})
    assert producing({"production_count": 3.0}) and not producing({"production_count": 0.0})


# -- metric window, metrics, live baseline ---------------------------------------------------


def test_a_late_reading_counts_in_the_open_interval() -> None:
    w = MetricWindow(interval_s=60, reading_interval_s=30)
    for i in (0, 1, 2):
        w.add(reading(i), reading(i).timestamp.timestamp(), refused=0)
    late = reading(0, p=50.0)
    assert w.add(late, late.timestamp.timestamp(), refused=0) is None
    interval = w.state().open
    assert interval is not None and (interval.readings, interval.power_max) == (2, 50.0)


def test_an_interval_reports_the_refusals_of_its_own_time() -> None:
    w = MetricWindow(interval_s=60)
    t = T0.timestamp()
    w.add(reading(0), t, refused=5)  # 5 refused before any interval was open: counted here
    w.tally.refused += 1  # one the caller refused
    closed = w.add(reading(2), t + 60, refused=7)
    assert closed is not None and closed[1].refused == 1 + 7
    closed = w.add(reading(4), t + 120, refused=8)
    assert closed is not None and closed[1].refused == 1


def test_metrics_with_a_baseline_give_enpi_and_cusum_that_survive_a_restore() -> None:
    model = msgspec.structs.replace(_example_model(), machine_id=M)
    metrics = Metrics(MOTOR, interval_s=60)
    metrics.baseline.set(model)

    def feed(m: Metrics, rs: range) -> list[Any]:
        return [o for i in rs for o in m.add(reading(i, 20.0, production_count=1.0,
                                                     outdoor_temp_c=10.0),
                                             reading(i).timestamp.timestamp(), 0)]

    first = [o for o in feed(metrics, range(300)) if type(o).__name__ == "MetricUpdated"]
    assert first and all(o.enpi is not None for o in first)
    assert first[-1].cusum_kwh == pytest.approx(sum(
        o.energy_kwh - o.expected_energy_kwh for o in first), abs=1e-3)
    clone = round_trip(metrics, Metrics(MOTOR, interval_s=60))
    assert clone.baseline.model is None  # the model by its id: the caller sets it again
    clone.baseline.set(model)
    assert msgspec.json.encode(feed(clone, range(300, 600))) == msgspec.json.encode(
        feed(metrics, range(300, 600)))


def test_a_closed_hour_off_the_baseline_raises_one_drift_alert() -> None:
    model = msgspec.structs.replace(_example_model(), machine_id=M)
    live = LiveBaseline(MOTOR)
    live.set(model)  # expects 4 + 0.2 * 10 = 6 kWh in a Monday hour at 20 °C

    def row(h: int, kwh: float) -> EnergyHourly:
        return EnergyHourly(machine_id=M, hour_start=T0 + timedelta(hours=h), energy_kwh=kwh,
                            readings=120, coverage=1.0, mean_power_kw=kwh, max_power_kw=kwh,
                            production_count=10.0, outdoor_temp_c=20.0)

    alerts = [a for h in range(12) if (a := live.check(row(h, 6.0 + 3.0))) is not None]
    assert len(alerts) == 1 and alerts[0].details["direction"] == "up"
    live.set(msgspec.structs.replace(model, model_id="other"))  # a new model: test again
    assert live.check(row(12, 9.0)) is None and live.drift.n == 1


# -- episodes, order, detectors --------------------------------------------------------------


def test_open_episodes_survive_a_restore() -> None:
    def anomaly(minute: int) -> AnomalyDetected:
        ts = T0 + timedelta(minutes=minute)
        return AnomalyDetected(
            event_id=f"a{minute}", occurred_at=ts, machine_id=M, machine_name="Motor-Line-A",
            timestamp=ts, metric="power_kw", value=40.0, expected_value=20.0,
            deviation_percent=100.0, score=1.0, threshold=0.9, anomaly_score=9.0,
            severity="critical", anomaly_type="spike", detector="residual")

    tracker = EpisodeTracker()
    tracker.on_anomaly(anomaly(0))
    clone = round_trip(tracker, EpisodeTracker())
    assert clone.on_anomaly(anomaly(5)) == tracker.on_anomaly(anomaly(5))
    assert [e.status for e in clone.on_time(T0 + timedelta(hours=1))] == ["closed"]


def test_a_restored_order_still_knows_the_readings_it_saw() -> None:
    order = ReadingOrder()
    for t in (100.0, 130.0, 110.0):
        order.admit(t, 60.0)
    clone = round_trip(order, ReadingOrder())
    assert [clone.admit(t, 60.0) for t in (110.0, 120.0, 30.0, 200.0)] == [
        "duplicate", "late", "too_late", "new"]
    assert clone.admitted == 5 and clone.newest == 200.0


def test_explained_teaches_its_model_with_the_weight_and_its_detector_in_full() -> None:
    a = Explained(RobustZScore("power_kw"), floor=1.0)
    b = Explained(RobustZScore("power_kw"), floor=1.0)
    for i in range(50):
        x = {"power_kw": 10.0 + 0.1 * (i % 3), "t": 30.0 * i}
        a.learn_one(x)
        b.learn_one(x, 0.1 if i >= 40 else 1.0)
    assert a.detector.state() == b.detector.state()
    assert a.model.state() != b.model.state()
    clone = round_trip(b, Explained(RobustZScore("power_kw"), floor=1.0))
    assert clone.score_one({"power_kw": 30.0}) == b.score_one({"power_kw": 30.0})


def test_expected_power_round_trips_exactly() -> None:
    m = ExpectedPower()
    for i in range(500):
        u = 100.0 * (i % 2)
        m.learn_one({"throughput_units_per_hour": u, "outdoor_temp_c": 3.0 + i % 17},
                    5.0 + 0.2 * u + (i % 3) * 0.1, t=30.0 * i)
    clone = round_trip(m, ExpectedPower())
    probe = {"throughput_units_per_hour": 55.5, "outdoor_temp_c": 11.0}
    assert clone.predict(probe) == m.predict(probe)
    assert clone.leverage(probe) == m.leverage(probe) and clone.z(probe, 9.0) == m.z(probe, 9.0)
    with pytest.raises(st.StateMismatch, match="another size"):
        ExpectedPower().load(msgspec.structs.replace(m.state(), b=[0.0]))


def hst(window_size: int = 60, seed: int = 3) -> HalfSpaceTreesDetector:
    return HalfSpaceTreesDetector(limits={"power_kw": (0.0, 45.0)}, window_size=window_size,
                                  seed=seed)


def test_hst_state_is_refused_for_other_parameters_or_other_trees() -> None:
    det = hst()
    for i in range(100):
        det.learn_one({"power_kw": 20.0 + i % 5})
    state = det.state()
    with pytest.raises(st.StateMismatch, match="does not fit"):
        hst(seed=4).load(state)
    with pytest.raises(st.StateMismatch, match="does not fit"):
        hst(window_size=61).load(state)
    with pytest.raises(st.StateMismatch, match="trees this River builds"):
        hst().load(msgspec.structs.replace(state, check=state.check ^ 1))
    with pytest.raises(st.StateMismatch, match="does not fit"):
        hst().load(st.ZScoreState())
    before = hst()
    before.load(hst().state())  # no trees yet: a fresh detector
    assert before.score_one({"power_kw": 40.0}) == 0.0
    assert not math.isnan(round_trip(det, hst()).score_one({"power_kw": 40.0}))


def test_an_idle_machine_has_its_own_level_not_its_load_lines_intercept() -> None:
    # Hours of production (the load line's intercept is 3 kW), then a first idle spell at
    # 1.5 kW: ten idle readings must be enough to know the standby load.
    m = ExpectedPower()
    for i in range(2000):
        u = 1100.0 + 200.0 * ((i * 7) % 11) / 10
        m.learn_one({"throughput_units_per_hour": u}, 3.0 + 0.008 * u, t=10.0 * i)
    for i in range(10):
        m.learn_one({"throughput_units_per_hour": 0.0}, 1.5, t=20_000.0 + 10.0 * i)
    assert m.predict({"throughput_units_per_hour": 0.0}) == pytest.approx(1.5, abs=0.05)
    assert m.predict({"throughput_units_per_hour": 1200.0}) == pytest.approx(12.6, abs=0.1)


def test_a_state_written_before_the_idle_term_loads_and_predicts_as_before() -> None:
    m = ExpectedPower()
    for i in range(300):
        m.learn_one({"throughput_units_per_hour": 100.0 + i % 7}, 5.0 + 0.2 * (100 + i % 7),
                    t=30.0 * i)
    s = m.state()
    d = len(s.b)
    old = msgspec.structs.replace(  # the same model without its last (idle) term
        s, a=[v for k, v in enumerate(s.a) if k % d < d - 1 and k // d < d - 1],
        inv=[v for k, v in enumerate(s.inv) if k % d < d - 1 and k // d < d - 1],
        b=s.b[:-1], theta=s.theta[:-1], lo=s.lo[:-1], hi=s.hi[:-1])
    clone = ExpectedPower()
    clone.load(old)
    probe = {"throughput_units_per_hour": 103.0}
    assert clone.predict(probe) == pytest.approx(m.predict(probe))
    assert not clone.novel(probe)
