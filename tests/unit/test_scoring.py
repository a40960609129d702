"""MachineScorer: warm-up, gates, events, metrics, determinism."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from detectors import state as scorer_state
from detectors.scoring import MachineScorer, ScoringConfig, score_stream, severity_of
from detectors.state import StateMismatch
from schemas.events import AnomalyDetected, MetricUpdated
from schemas.readings import Reading

M = "c0000000-0000-0000-0000-000000000003"  # Motor-Line-A, 30 kW, 30 s
T0 = datetime(2026, 1, 5, 8, tzinfo=UTC)


def readings(n: int, level: float = 20.0, *, seed: int = 0, start: int = 0,
             throughput: float | None = 100.0) -> list[Reading]:
    """Readings of a machine producing steadily (the driver model's: a meter with power
    only is judged by its hours of the week, after its first day, `tests/unit/
    test_power_only.py`)."""
    rnd = random.Random(seed)
    out = []
    for i in range(start, start + n):
        p = rnd.gauss(level, 0.02 * level)
        out.append(Reading(machine_id=M, timestamp=T0 + timedelta(seconds=30 * i), power_kw=p,
                           energy_kwh=p * 30 / 3600, throughput_units_per_hour=throughput))
    return out


def anomalies(events: list) -> list[AnomalyDetected]:
    return [e for e in events if isinstance(e, AnomalyDetected)]


def run(s: MachineScorer, rs: list[Reading]) -> list:
    return [e for r in rs for e in s.step(r)]


def encoded(outputs: list) -> list[bytes]:
    """The outputs as they go on the wire (== on datetimes would ignore their offsets)."""
    return [msgspec.json.encode(o) for o in outputs]


def test_no_anomaly_during_warmup_even_for_a_huge_value() -> None:
    s = MachineScorer(M, ScoringConfig(warmup=100))
    rs = readings(50)
    rs.append(Reading(machine_id=M, timestamp=T0 + timedelta(seconds=30 * 50), power_kw=44.0,
                      energy_kwh=0.3))
    assert not anomalies(run(s, rs))


def test_spike_and_drop_after_warmup_are_flagged_with_type_and_severity() -> None:
    s = MachineScorer(M, ScoringConfig())
    assert not anomalies(run(s, readings(400)))
    spike = Reading(machine_id=M, timestamp=T0 + timedelta(seconds=30 * 400), power_kw=44.0,
                    energy_kwh=0.37, throughput_units_per_hour=100.0)
    [a] = anomalies(s.step(spike))
    assert (a.anomaly_type, a.severity, a.value) == ("spike", "critical", 44.0)
    assert a.expected_value == pytest.approx(20.0, rel=0.05)
    assert a.score >= 0.9 and a.anomaly_score > 6
    assert "expected" in a.explanation
    drop = Reading(machine_id=M, timestamp=T0 + timedelta(seconds=30 * 401), power_kw=1.0,
                   energy_kwh=0.01, throughput_units_per_hour=100.0)
    [d] = anomalies(s.step(drop))
    assert d.anomaly_type == "drop"


def test_flagged_readings_are_not_learned() -> None:
    s = MachineScorer(M, ScoringConfig())
    run(s, readings(400))
    busy = {"throughput_units_per_hour": 100.0}
    before = s.expect.predict(busy)
    spikes = [Reading(machine_id=M, timestamp=T0 + timedelta(seconds=30 * (400 + i)),
                      power_kw=44.0, energy_kwh=0.37, throughput_units_per_hour=100.0)
              for i in range(5)]
    assert len(anomalies(run(s, spikes))) == 5
    assert s.expect.predict(busy) == before


def test_a_lasting_level_change_is_followed_after_follow_after_s() -> None:
    s = MachineScorer(M, ScoringConfig(follow_after_s=300))  # 10 readings 30 s apart
    run(s, readings(400))
    flagged = anomalies(run(s, readings(200, level=28.0, start=400, seed=9)))
    assert 10 <= len(flagged) < 60
    assert not anomalies(run(s, readings(100, level=28.0, start=600, seed=10)))


def test_new_operating_state_is_learned_not_flagged() -> None:
    """A first production shift (throughput > 0 never seen) is not an anomaly."""
    s = MachineScorer(M, ScoringConfig())
    run(s, readings(400, level=4.0, throughput=0.0))  # idle all night
    shift = readings(300, level=22.0, throughput=600.0, start=400, seed=2)
    assert not anomalies(run(s, shift))


def test_metric_updated_per_event_time_interval() -> None:
    s = MachineScorer(M, ScoringConfig(metrics_interval_s=60))
    events = run(s, readings(10))  # 10 readings 30 s apart = 5 minutes
    metrics = [e for e in events if isinstance(e, MetricUpdated)]
    assert len(metrics) == 4  # the 5th interval is still open
    m = metrics[0]
    assert m.readings == 2 and m.window_end - m.window_start == timedelta(seconds=60)
    assert m.value == pytest.approx(20.0, rel=0.05)
    assert m.energy_kwh == pytest.approx(2 * 20.0 * 30 / 3600, rel=0.05)


def test_replay_gives_identical_events_and_ids() -> None:
    rs = readings(400) + [Reading(machine_id=M, timestamp=T0 + timedelta(seconds=12000),
                                  power_kw=44.0, energy_kwh=0.37,
                                  throughput_units_per_hour=100.0)]
    a = list(score_stream(rs, ScoringConfig()))
    b = list(score_stream(rs, ScoringConfig()))
    assert a == b and anomalies(a)


def eventful(n: int, *, start: int = 0, seed: int = 0, t0: datetime = T0) -> list[Reading]:
    """Readings with a bit of everything: production shifts, spikes, a stuck stretch and
    a slow ramp (so that runs, episodes and the sustained means all have state)."""
    rnd = random.Random(seed)
    out = []
    for i in range(start, start + n):
        busy = (i // 90) % 2 == 1
        level = 22.0 if busy else 4.0
        p = rnd.gauss(level, 0.02 * level)
        if i % 97 == 50:
            p *= 2.5  # a spike
        if 300 <= i % 400 < 310:
            p = 7.77  # a stuck meter
        if i % 400 >= 340:
            p *= 1.0 + 0.004 * (i % 400 - 340)  # a slow ramp
        out.append(Reading(machine_id=M, timestamp=t0 + timedelta(seconds=30 * i), power_kw=p,
                           energy_kwh=p * 30 / 3600, throughput_units_per_hour=600.0 * busy,
                           outdoor_temp_c=5.0 + (i % 200) / 20))
    return out


@pytest.mark.parametrize("detector", ["residual", "hst", "zscore"])
def test_a_restored_scorer_goes_on_exactly_like_the_one_that_wrote_its_state(
        detector: str) -> None:
    config = ScoringConfig(detector=detector, warmup=100)
    s = MachineScorer(M, config)
    before = run(s, eventful(700))
    assert anomalies(before)
    raw = scorer_state.encode(s.state())
    clone = MachineScorer.from_state(scorer_state.decode(raw), config)
    assert clone.state() == s.state()
    rest = eventful(600, start=700, seed=5)
    after = run(s, rest)
    assert anomalies(after) and encoded(after) == encoded(run(clone, rest))
    assert scorer_state.encode(clone.state()) == scorer_state.encode(s.state())


def test_a_restored_state_keeps_the_readings_utc_offsets() -> None:
    """JSON keeps a datetime's offset: an episode opened before the checkpoint is updated
    and closed after it with the same times, written the same way."""
    t0 = datetime(2026, 1, 5, 10, tzinfo=timezone(timedelta(hours=2)))
    s = MachineScorer(M, ScoringConfig(warmup=100))
    run(s, eventful(655, t0=t0))
    assert s.episodes.open  # the episode the spike at reading 632 reopened is still open
    clone = MachineScorer.from_state(scorer_state.decode(scorer_state.encode(s.state())),
                                     s.config)
    rest = eventful(300, start=655, seed=2, t0=t0)
    after = encoded(run(s, rest))
    assert after == encoded(run(clone, rest))  # == on datetimes would ignore the offsets
    assert any(b'"anomaly_episode"' in e and b'"first_at":"2026-01-05T14:27:30+02:00"' in e
               for e in after)


def test_a_state_of_another_detector_is_refused() -> None:
    s = MachineScorer(M, ScoringConfig())
    run(s, readings(50))
    state = scorer_state.decode(scorer_state.encode(s.state()))
    with pytest.raises(StateMismatch, match="ResidualState"):
        MachineScorer.from_state(state, ScoringConfig(detector="hst"))
    hst = MachineScorer(M, ScoringConfig(detector="hst"))
    run(hst, readings(50))
    with pytest.raises(StateMismatch, match="HSTState"):
        MachineScorer.from_state(hst.state(), ScoringConfig(detector="hst", seed=1))
    assert MachineScorer.from_state(state, ScoringConfig(threshold=0.8)).seen == 50


def test_unknown_machine_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown machine_id"):
        MachineScorer("nope", ScoringConfig())


@pytest.mark.parametrize(("z", "sev"), [(2.0, "normal"), (-4.5, "warning"), (7, "critical")])
def test_severity_from_sigma_alone(z: float, sev: str) -> None:
    assert severity_of(z) == sev


@pytest.mark.parametrize(("z", "kwh", "sev"), [
    (40.0, 0.02, "warning"),   # far off, but one second of a 55 kW machine: little energy
    (40.0, 0.2, "critical"),   # far off and material (more than 10 s at rated power)
    (3.5, 1.0, "critical"),    # modest but long: more than a minute at rated power
    (-8.0, -0.5, "critical"),  # below expected counts the same way
    (2.0, 0.05, "normal"),
])
def test_severity_weighs_energy_impact(z: float, kwh: float, sev: str) -> None:
    assert severity_of(z, impact_kwh=kwh, rated_kw=55.0) == sev


def steady(n: int, *, start: int = 0, level: float = 20.0, factor=lambda i: 1.0,
           seed: int = 0, throughput: float = 600.0) -> list[Reading]:
    rnd = random.Random(seed)
    out = []
    for i in range(start, start + n):
        p = rnd.gauss(level, 0.02 * level) * factor(i)
        out.append(Reading(machine_id=M, timestamp=T0 + timedelta(seconds=30 * i), power_kw=p,
                           energy_kwh=p * 30 / 3600, throughput_units_per_hour=throughput))
    return out


def test_a_slow_drift_is_flagged_as_drift_before_it_ends() -> None:
    """+30 % over two hours: no single reading is far off at first, the run of them is."""
    s = MachineScorer(M, ScoringConfig())
    assert not anomalies(run(s, steady(600)))
    ramp = steady(240, start=600, seed=1, factor=lambda i: 1.0 + 0.3 * (i - 600) / 240)
    flagged = anomalies(run(s, ramp))
    assert flagged and flagged[0].anomaly_type == "drift"
    assert flagged[0].timestamp < ramp[-1].timestamp
    impact = flagged[0].energy_impact_kwh
    assert impact is not None and impact > 0 and "sustained" in flagged[0].explanation
    # Back to normal: the alarm stops within a few minutes.
    after = anomalies(run(s, steady(60, start=840, seed=2)))
    assert all(a.timestamp < T0 + timedelta(seconds=30 * 850) for a in after)


def test_power_without_production_is_off_shift() -> None:
    s = MachineScorer(M, ScoringConfig())
    idle = [r for i in range(8) for r in steady(
        60, start=120 * i, level=4.0, throughput=0.0, seed=i)]
    busy = [r for i in range(8) for r in steady(
        60, start=120 * i + 60, level=22.0, throughput=600.0, seed=50 + i)]
    run(s, sorted(idle + busy, key=lambda r: r.timestamp))
    off = steady(20, start=960, level=22.0, throughput=0.0, seed=99)
    flagged = anomalies(run(s, off))
    assert flagged and {a.anomaly_type for a in flagged} == {"off_shift"}
    assert "production" in flagged[0].explanation


def test_production_is_remembered_over_a_quiet_weekend() -> None:
    """The expected-power memory is in event time: 40 idle hours do not erase what a
    producing hour looks like (a per-reading forgetting factor did, and Monday's first
    shift was flagged)."""
    s = MachineScorer(M, ScoringConfig())
    busy = steady(600, level=22.0, throughput=600.0)
    weekend = steady(40 * 120, start=600, level=4.0, throughput=0.0, seed=1)
    monday = steady(240, start=600 + 40 * 120, level=22.0, throughput=600.0, seed=2)
    assert not anomalies(run(s, busy + weekend + monday))
    assert s.expect.predict({"throughput_units_per_hour": 600.0}) == pytest.approx(22.0, rel=0.02)


def test_a_stuck_meter_is_flagged_once() -> None:
    s = MachineScorer(M, ScoringConfig(stuck_run=8))
    run(s, readings(400))
    frozen = [Reading(machine_id=M, timestamp=T0 + timedelta(seconds=30 * (400 + i)),
                      power_kw=20.123, energy_kwh=0.1677) for i in range(30)]
    flagged = anomalies(run(s, frozen))
    assert [a.anomaly_type for a in flagged] == ["stuck"]
    assert flagged[0].timestamp == frozen[7].timestamp  # the 8th identical value


def test_a_gap_in_the_data_is_not_evidence_of_a_drift() -> None:
    """A reading after two silent hours stands for one interval, not for two hours."""
    s = MachineScorer(M, ScoringConfig())
    run(s, steady(600))
    after_gap = steady(3, start=600 + 240, seed=3, factor=lambda i: 1.07)  # about +3.5 σ
    assert not anomalies(run(s, after_gap))


def test_a_flagged_reading_is_at_least_a_warning() -> None:
    s = MachineScorer(M, ScoringConfig())
    run(s, steady(600))
    flagged = anomalies(run(s, steady(240, start=600, seed=1,
                                      factor=lambda i: 1.0 + 0.3 * (i - 600) / 240)))
    assert flagged and {a.severity for a in flagged} <= {"warning", "critical"}


def test_readings_in_a_maintenance_window_are_neither_judged_nor_learned() -> None:
    from schemas.events import MaintenanceWindow

    s = MachineScorer(M, ScoringConfig())
    run(s, steady(600))
    start, end = T0 + timedelta(seconds=30 * 600), T0 + timedelta(seconds=30 * 660)
    s.maintenance = MaintenanceWindow(event_id="w", occurred_at=start, machine_id=M,
                                      start=start, end=end, reason="bearing change")
    before = s.expect.predict({"throughput_units_per_hour": 600.0})
    # A motor on the test bench: three times its power for half an hour, no alarm ...
    assert not anomalies(run(s, steady(60, start=600, seed=1, factor=lambda i: 3.0)))
    assert s.expect.predict({"throughput_units_per_hour": 600.0}) == before
    # ... and after the window the same fault is flagged at once.
    assert anomalies(run(s, steady(2, start=660, seed=2, factor=lambda i: 3.0)))


def test_a_first_shift_learned_during_a_fault_does_not_lock_the_model_out() -> None:
    """The first production readings came during a drop, and the afternoon grew warmer than
    any hour yet: readings far off where the model barely knows the drivers are not learned,
    but not for ever; after ``follow_after_s`` the model learns them."""
    s = MachineScorer(M, ScoringConfig(follow_after_s=1800))  # 60 readings
    rnd = random.Random(4)

    def at(i: int, p: float, u: float, temp: float) -> Reading:
        p = rnd.gauss(p, 0.02 * p)
        return Reading(machine_id=M, timestamp=T0 + timedelta(seconds=30 * i), power_kw=p,
                       energy_kwh=p * 30 / 3600, throughput_units_per_hour=u,
                       outdoor_temp_c=temp)

    run(s, [at(i, 4.0, 0.0, 5.0) for i in range(400)])  # idle all night at 5 °C
    run(s, [at(400 + i, 8.0, 600.0, 5.0) for i in range(10)])  # the first shift, in a drop
    shift = [at(410 + i, 22.0, 600.0, 5.0 + 0.05 * i) for i in range(300)]  # 5 to 20 °C
    run(s, shift)
    last = shift[-1]
    expected = s.expected_power(last)
    assert expected is not None and abs(expected - 22.0) < 2.2
