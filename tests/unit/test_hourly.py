"""Hourly energy per machine: sums, means, coverage, hour rollover, late readings, pickling."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from detectors.hourly import HourlyAggregator, hour_of, hourly_records
from detectors.state import HourState
from schemas.energy import EnergyHourly
from schemas.machines import MACHINES
from schemas.readings import Reading
from simulation import generate

MOTOR = MACHINES[2].id  # 30 s interval: 120 readings an hour
T0 = datetime(2026, 1, 5, 8, tzinfo=UTC)


def reading(seconds: float, kw: float = 36.0, *, mid: str = MOTOR, interval: float = 30.0,
            production_count: float | None = None, outdoor_temp_c: float | None = None,
            throughput_units_per_hour: float | None = None,
            machine_temp_c: float | None = None) -> Reading:
    return Reading(machine_id=mid, timestamp=T0 + timedelta(seconds=seconds), power_kw=kw,
                   energy_kwh=kw * interval / 3600, production_count=production_count,
                   outdoor_temp_c=outdoor_temp_c,
                   throughput_units_per_hour=throughput_units_per_hour, machine_temp_c=machine_temp_c)


def test_sums_means_and_coverage_of_one_hour() -> None:
    agg = HourlyAggregator(MOTOR, interval_s=30.0)
    rs = [reading(30 * i, kw=30.0 + i % 3, production_count=2.0,
                  throughput_units_per_hour=240.0, outdoor_temp_c=10.0 + (i % 2),
                  machine_temp_c=None if i % 4 else 50.0) for i in range(60)]
    assert all(agg.add(r) is None for r in rs)
    rec = agg.flush()
    assert rec is not None
    assert rec.machine_id == MOTOR and rec.hour_start == T0
    assert rec.readings == 60
    assert rec.coverage == pytest.approx(0.5)  # 60 of 120
    assert rec.energy_kwh == pytest.approx(sum(r.energy_kwh for r in rs))
    assert rec.mean_power_kw == pytest.approx(31.0)
    assert rec.max_power_kw == 32.0
    assert rec.production_count == pytest.approx(120.0)
    assert rec.throughput_units_per_hour == pytest.approx(240.0)
    assert rec.outdoor_temp_c == pytest.approx(10.5)
    assert rec.machine_temp_c == pytest.approx(50.0)  # mean of the 15 readings that had it
    assert rec.pressure_bar is None  # no reading carried it
    assert agg.flush() is None


def test_coverage_is_capped_at_one() -> None:
    agg = HourlyAggregator(MOTOR, interval_s=60.0)  # expects 60, gets 120
    for i in range(120):
        agg.add(reading(30 * i))
    rec = agg.flush()
    assert rec is not None and rec.coverage == 1.0 and rec.readings == 120


def test_hour_rollover_emits_the_previous_hour() -> None:
    agg = HourlyAggregator(MOTOR, interval_s=30.0)
    out = [rec for i in range(3 * 120 + 1) if (rec := agg.add(reading(30 * i))) is not None]
    assert [rec.hour_start for rec in out] == [T0, T0 + timedelta(hours=1),
                                               T0 + timedelta(hours=2)]
    assert all(rec.readings == 120 and rec.coverage == 1.0 for rec in out)
    assert all(rec.energy_kwh == pytest.approx(36.0) for rec in out)  # 36 kW for an hour
    last = agg.flush()
    assert last is not None
    assert last.hour_start == T0 + timedelta(hours=3) and last.readings == 1


def test_a_gap_of_hours_emits_only_hours_with_readings() -> None:
    agg = HourlyAggregator(MOTOR, interval_s=30.0)
    assert agg.add(reading(0)) is None
    rec = agg.add(reading(5 * 3600))
    assert rec is not None and rec.hour_start == T0
    flushed = agg.flush()
    assert flushed is not None and flushed.hour_start == T0 + timedelta(hours=5)


def test_late_reading_is_counted_into_the_open_hour() -> None:
    agg = HourlyAggregator(MOTOR, interval_s=30.0)
    agg.add(reading(0, kw=10.0))
    first = agg.add(reading(3600, kw=20.0))
    assert first is not None and first.readings == 1
    assert agg.add(reading(1800, kw=40.0)) is None  # 08:30 arrives during 09:00
    rec = agg.flush()
    assert rec is not None
    assert rec.hour_start == T0 + timedelta(hours=1)
    assert rec.readings == 2
    assert rec.energy_kwh == pytest.approx((20.0 + 40.0) * 30 / 3600)


def test_event_time_buckets_are_utc_hours() -> None:
    plus3 = timezone(timedelta(hours=3))
    assert hour_of(datetime(2026, 1, 5, 11, 59, tzinfo=plus3)) == T0
    with pytest.raises(ValueError, match="timezone-aware"):
        hour_of(datetime(2026, 1, 5, 11, 59))  # noqa: DTZ001
    agg = HourlyAggregator(MOTOR, interval_s=30.0)
    agg.add(Reading(machine_id=MOTOR, timestamp=datetime(2026, 1, 5, 11, 30, tzinfo=plus3),
                    power_kw=1.0, energy_kwh=0.01))
    rec = agg.flush()
    assert rec is not None and rec.hour_start == T0 and rec.hour_start.tzinfo == UTC


def test_other_machine_and_bad_interval_are_errors() -> None:
    agg = HourlyAggregator(MOTOR, interval_s=30.0)
    with pytest.raises(ValueError, match="aggregator of"):
        agg.add(reading(0, mid=MACHINES[0].id))
    with pytest.raises(ValueError, match="positive"):
        HourlyAggregator(MOTOR, interval_s=0)
    assert repr(agg) == f"HourlyAggregator(machine_id={MOTOR!r}, interval_s=30.0)"


def test_state_round_trip_mid_hour_gives_the_same_records() -> None:
    rs = [reading(30 * i, kw=20.0 + i % 7, production_count=1.0, outdoor_temp_c=5.0)
          for i in range(300)]
    whole = HourlyAggregator(MOTOR, interval_s=30.0)
    expected = [rec for r in rs if (rec := whole.add(r)) is not None] + [whole.flush()]
    agg = HourlyAggregator(MOTOR, interval_s=30.0)
    got = [rec for r in rs[:150] if (rec := agg.add(r)) is not None]
    raw = msgspec.json.encode(agg.state())  # as the scorer's changelog value holds it
    agg = HourlyAggregator(MOTOR, interval_s=30.0)
    agg.load(msgspec.json.decode(raw, type=HourState))
    got += [rec for r in rs[150:] if (rec := agg.add(r)) is not None]
    last = agg.flush()
    assert last is not None
    assert [*got, last] == expected
    assert len(got) == 2  # and the flushed hour


def test_hourly_records_over_many_machines_matches_the_readings() -> None:
    start = T0 + timedelta(minutes=30)  # a half first hour
    sim = generate(start=start, duration=timedelta(hours=3), anomalies=False)
    readings = list(sim.readings)
    recs = list(hourly_records(readings, sim.intervals))
    assert all(isinstance(r, EnergyHourly) for r in recs)
    by_machine: dict[str, list[EnergyHourly]] = defaultdict(list)
    for rec in recs:
        by_machine[rec.machine_id].append(rec)
    assert set(by_machine) == {m.id for m in MACHINES}
    for mid, hours in by_machine.items():
        assert [h.hour_start for h in hours] == [T0 + timedelta(hours=i) for i in range(4)]
        assert [h.coverage for h in hours] == pytest.approx([0.5, 1.0, 1.0, 0.5])
        mine = [r for r in readings if r.machine_id == mid]
        assert sum(h.energy_kwh for h in hours) == pytest.approx(sum(r.energy_kwh for r in mine))
        assert sum(h.readings for h in hours) == len(mine)
        full = hours[1]
        in_hour = [r for r in mine if full.hour_start <= r.timestamp < full.hour_start
                   + timedelta(hours=1)]
        if not any(r.drivers() for r in in_hour):  # the power-only meter: power and energy
            assert full.production_count is None and full.outdoor_temp_c is None
            continue
        assert full.production_count == pytest.approx(
            sum(r.production_count or 0.0 for r in in_hour))
        assert full.outdoor_temp_c == pytest.approx(
            sum(r.outdoor_temp_c or 0.0 for r in in_hour) / len(in_hour))
    # the final open hours come last, ordered by hour then machine
    tail = recs[-len(MACHINES):]
    assert [r.machine_id for r in tail] == sorted(m.id for m in MACHINES)


def test_hourly_records_uses_the_catalogue_interval_and_rejects_unknown_machines() -> None:
    recs = list(hourly_records([reading(30 * i) for i in range(60)]))
    assert recs[0].coverage == pytest.approx(0.5)  # the motor's catalogue interval is 30 s
    recs = list(hourly_records([reading(30 * i) for i in range(60)], {MOTOR: 60.0}))
    assert recs[0].coverage == 1.0
    with pytest.raises(ValueError, match="unknown machine"):
        list(hourly_records([reading(0, mid="no-such-machine")]))
    assert list(hourly_records([reading(0, mid="x")], {"x": 10.0}))[0].coverage == pytest.approx(
        1 / 360)
