"""Unit tests of the plant simulator: pure generator, label files, runner with a fake producer."""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import msgspec
import numpy as np
import pytest

from schemas.machines import MACHINES, machine_by_id
from schemas.readings import Reading, convert_reading, decode_reading
from simulation import KINDS, PROFILES, Label, generate, hourly_coefficients, shift_level
from streams import simulator
from streams.settings import Settings
from streams.simulator import read_labels, write_labels
from streams.topics import READINGS

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday in winter
BY_TYPE = {m.type: m for m in MACHINES}
#: The machines whose readings carry drivers (every one but the power-only lighting meter).
DRIVEN = tuple(m for m in MACHINES if not PROFILES[m.type].power_only)


def _f(x: float | None) -> float:
    assert x is not None
    return x


def _expected_kw(r: Reading) -> float:
    """The documented generating function, evaluated on the reading's own drivers."""
    m = machine_by_id(r.machine_id)
    assert m is not None
    assert r.throughput_units_per_hour is not None and r.outdoor_temp_c is not None
    return PROFILES[m.type].mean_power_kw(
        m.rated_power_kw, throughput_uph=r.throughput_units_per_hour,
        outdoor_temp_c=r.outdoor_temp_c)


@pytest.fixture(scope="module")
def anomalous() -> tuple[list[Label], dict[str, list[Reading]]]:
    """Two days of the machines with drivers at 30 anomalies/day: the labels and every
    machine's readings from 10 minutes before to the end of each label (not the whole run, to
    keep memory low). The power-only meter's anomalies: test_simulation_power_only."""
    sim = generate(seed=7, start=MONDAY, duration=timedelta(days=2), anomaly_rate_per_day=30.0,
                   machines=DRIVEN)
    windows: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for lab in sim.labels:
        windows[lab.machine_id].append((lab.start - timedelta(minutes=10), lab.end))
    kept: dict[str, list[Reading]] = defaultdict(list)
    for r in sim.readings:
        if any(a <= r.timestamp < b for a, b in windows[r.machine_id]):
            kept[r.machine_id].append(r)
    return sim.labels, kept


def _inside(readings: list[Reading], lab: Label) -> list[Reading]:
    return [r for r in readings if lab.contains(r.timestamp)]


def _before(readings: list[Reading], lab: Label) -> list[Reading]:
    return [r for r in readings if r.timestamp < lab.start]


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_readings_other_seed_differs() -> None:
    def first(seed: int) -> list[Reading]:
        sim = generate(seed=seed, start=MONDAY + timedelta(hours=7), duration=timedelta(days=1))
        return list(islice(sim.readings, 2000))

    a, b, c = first(42), first(42), first(43)
    assert len(a) == 2000
    assert a == b
    assert a != c
    assert generate(start=MONDAY, duration=timedelta(days=14)).labels == generate(
        start=MONDAY, duration=timedelta(days=14)).labels


def test_shorter_clean_run_is_a_prefix_of_a_longer_one() -> None:
    short = list(generate(start=MONDAY, duration=timedelta(hours=1), anomalies=False).readings)
    long = generate(start=MONDAY, duration=timedelta(hours=2), anomalies=False).readings
    assert short == list(islice(long, len(short)))


def test_generate_is_lazy_for_long_durations() -> None:
    t0 = time.perf_counter()
    sim = generate(start=MONDAY, duration=timedelta(days=365))
    first = next(sim.readings)
    assert time.perf_counter() - t0 < 2.0
    assert first.timestamp == MONDAY
    assert 1000 < len(sim.labels) < 2000  # about 4 a day, all known up front


# --------------------------------------------------------------------------- shape of the data


def test_timestamps_ordered_aware_and_on_each_machines_grid() -> None:
    sim = generate(start=MONDAY + timedelta(hours=5, minutes=30), duration=timedelta(hours=1))
    last = None
    counts: Counter[str] = Counter()
    for r in sim.readings:
        assert r.timestamp.tzinfo is not None and r.timestamp.utcoffset() == timedelta(0)
        assert last is None or r.timestamp >= last
        last = r.timestamp
        step = sim.intervals[r.machine_id]
        offset = (r.timestamp - MONDAY - timedelta(hours=5, minutes=30)).total_seconds()
        assert offset == pytest.approx(counts[r.machine_id] * step)
        counts[r.machine_id] += 1
    assert {m.id: counts[m.id] for m in MACHINES} == {
        m.id: 3600 // m.data_interval_seconds for m in MACHINES}


def test_every_reading_validates_and_energy_matches_power() -> None:
    sim = generate(seed=3, start=MONDAY + timedelta(days=5, hours=13), duration=timedelta(hours=2),
                   anomaly_rate_per_day=100.0)
    assert sim.labels  # anomalous readings are validated too
    n = 0
    for r in sim.readings:
        assert convert_reading(msgspec.to_builtins(r)) == r
        assert r.power_kw >= 0
        assert r.energy_kwh == pytest.approx(r.power_kw * sim.intervals[r.machine_id] / 3600)
        m = machine_by_id(r.machine_id)
        assert m is not None
        assert (r.pressure_bar is not None) == (m.type == "compressor")
        if r.pressure_bar is not None:
            assert 6.5 < r.pressure_bar < 7.5
        n += 1
        if PROFILES[m.type].power_only:
            assert r.drivers() == {}
            continue
        assert r.production_count == pytest.approx(
            _f(r.throughput_units_per_hour) * sim.intervals[r.machine_id] / 3600, abs=1e-4)
    assert n == 2 * 7200 + 2 * 720 + 5 * 240  # 1 s, 10 s and 30 s machines


def test_interval_scale_and_clamp() -> None:
    sim = generate(start=MONDAY, duration=timedelta(minutes=1), interval_scale=0.5)
    assert sim.intervals[MACHINES[0].id] == 0.5
    assert sim.intervals[MACHINES[2].id] == 15.0
    assert sum(1 for _ in sim.readings) == 2 * 120 + 2 * 12 + 5 * 4
    with pytest.raises(ValueError, match="timezone"):
        generate(start=datetime(2026, 1, 5), duration=timedelta(minutes=1))  # noqa: DTZ001


# --------------------------------------------------------------------------- the load model


def test_production_machine_idles_at_night_and_weekend() -> None:
    motor = BY_TYPE["injection_molding"]
    sim = generate(start=MONDAY, duration=timedelta(days=7), machines=[motor], anomalies=False)
    groups: dict[str, list[float]] = defaultdict(list)
    for r in sim.readings:
        ts = r.timestamp
        if ts.weekday() < 5 and 6 <= ts.hour < 22:
            groups["shift"].append(r.power_kw)
            assert _f(r.throughput_units_per_hour) > 0
        elif ts.weekday() == 6:
            groups["sunday"].append(r.power_kw)
            assert r.production_count == 0
        elif ts.weekday() < 5 and (ts.hour < 6 or ts.hour >= 22):
            groups["night"].append(r.power_kw)
        elif ts.weekday() == 5 and 6 <= ts.hour < 14:
            groups["saturday"].append(r.power_kw)
    shift = statistics.mean(groups["shift"])
    assert statistics.mean(groups["sunday"]) < 0.4 * shift
    assert statistics.mean(groups["night"]) < 0.4 * shift
    assert statistics.mean(groups["night"]) < statistics.mean(groups["saturday"]) < shift


def test_boiler_draws_more_when_cold_at_equal_production() -> None:
    boiler = BY_TYPE["boiler"]
    sim = generate(start=MONDAY, duration=timedelta(days=5), machines=[boiler], anomalies=False)
    on_shift = [r for r in sim.readings if shift_level(
        np.array([r.timestamp.timestamp()]))[0] == 1.0]
    temps = [_f(r.outdoor_temp_c) for r in on_shift]
    cold_t, warm_t = np.percentile(temps, [25, 75])
    cold = [r.power_kw for r, t in zip(on_shift, temps, strict=True) if t <= cold_t]
    warm = [r.power_kw for r, t in zip(on_shift, temps, strict=True) if t >= warm_t]
    assert statistics.mean(cold) > statistics.mean(warm) + 20.0
    # and the slope is the documented one, about 0.045 * 200 = 9 kW per degree
    slope = np.polyfit(temps, [r.power_kw for r in on_shift], 1)[0]
    assert -10.5 < slope < -7.5


def test_hvac_cools_in_summer() -> None:
    hvac = BY_TYPE["hvac"]
    july = datetime(2026, 7, 6, tzinfo=UTC)
    sim = generate(start=july, duration=timedelta(days=2), machines=[hvac], anomalies=False)
    noon = [r.power_kw for r in sim.readings if 11 <= r.timestamp.hour < 14]
    winter = generate(start=MONDAY, duration=timedelta(days=2), machines=[hvac], anomalies=False)
    winter_noon = [r.power_kw for r in winter.readings if 11 <= r.timestamp.hour < 14]
    assert statistics.mean(noon) > statistics.mean(winter_noon) + 10.0


def test_clean_power_follows_the_documented_function() -> None:
    sim = generate(start=MONDAY + timedelta(days=4), duration=timedelta(days=2),
                   machines=MACHINES[1:7], anomalies=False)
    ratios: dict[str, list[float]] = defaultdict(list)
    for r in sim.readings:
        ratios[r.machine_id].append(r.power_kw / _expected_kw(r))
    for mid, rs in ratios.items():
        m = machine_by_id(mid)
        assert m is not None
        noise = PROFILES[m.type].noise
        assert statistics.mean(rs) == pytest.approx(1.0, abs=0.01)
        assert statistics.stdev(rs) == pytest.approx(noise, rel=0.2)


# --------------------------------------------------------------------------- anomalies


def test_fourteen_days_have_every_kind_without_overlaps() -> None:
    duration = timedelta(days=14)
    sim = generate(start=MONDAY, duration=duration, anomaly_rate_per_day=4.0)
    kinds = Counter(lab.kind for lab in sim.labels)
    assert set(kinds) == set(KINDS)
    assert 35 < len(sim.labels) < 80
    assert len({lab.machine_id for lab in sim.labels}) >= 6
    assert sim.labels == sorted(sim.labels, key=lambda lab: (lab.start, lab.machine_id))
    per_machine: dict[str, list[Label]] = defaultdict(list)
    for lab in sim.labels:
        assert MONDAY < lab.start < lab.end <= MONDAY + duration
        assert lab.start.tzinfo is not None
        step = sim.intervals[lab.machine_id]
        assert (lab.start - MONDAY).total_seconds() % step == 0
        per_machine[lab.machine_id].append(lab)
    for labs in per_machine.values():
        for a, b in zip(labs, labs[1:], strict=False):
            assert a.end <= b.start


def test_kind_schedules() -> None:
    sim = generate(start=MONDAY, duration=timedelta(days=14), anomaly_rate_per_day=20.0)
    for lab in sim.labels:
        ends = np.array([lab.start.timestamp(), lab.end.timestamp() - 1e-3])
        if lab.kind == "drop":
            assert (shift_level(ends) > 0).all()
        if lab.kind == "off_shift":
            assert (shift_level(ends) == 0).all()
        minutes = (lab.end - lab.start).total_seconds() / 60
        lo, hi = {"spike": (0, 1.5), "drop": (3, 10), "drift": (60, 180), "stuck": (10, 30),
                  "off_shift": (30, 90)}[lab.kind]
        assert lo - 0.5 <= minutes <= hi + 0.5, lab


def test_no_anomalies_no_labels() -> None:
    sim = generate(start=MONDAY, duration=timedelta(days=14), anomalies=False)
    assert sim.labels == []
    assert generate(start=MONDAY, duration=timedelta(days=3), anomaly_rate_per_day=0).labels == []


def test_spikes_stand_out(anomalous: tuple[list[Label], dict[str, list[Reading]]]) -> None:
    labels, readings = anomalous
    spikes = [lab for lab in labels if lab.kind == "spike"]
    assert spikes
    for lab in spikes:
        rs = readings[lab.machine_id]
        inside = _inside(rs, lab)
        assert 1 <= len(inside) <= 3
        for r in inside:
            assert r.power_kw / _expected_kw(r) > 2.0
        ts = np.array([r.timestamp.timestamp() for r in rs])
        before = [r.power_kw for r in _before(rs, lab)]
        if len(set(shift_level(ts).tolist())) == 1:  # no shift change nearby: use the median
            assert min(r.power_kw for r in inside) > 2.0 * statistics.median(before)


def test_stuck_values_are_exactly_constant(
    anomalous: tuple[list[Label], dict[str, list[Reading]]],
) -> None:
    labels, readings = anomalous
    stuck = [lab for lab in labels if lab.kind == "stuck"]
    assert stuck
    for lab in stuck:
        rs = readings[lab.machine_id]
        inside = _inside(rs, lab)
        assert len(inside) >= 10 * 60 / 30
        last_good = _before(rs, lab)[-1]
        assert {r.power_kw for r in inside} == {last_good.power_kw}
        assert len({r.energy_kwh for r in inside}) == 1


def test_drop_drift_off_shift_shapes(
    anomalous: tuple[list[Label], dict[str, list[Reading]]],
) -> None:
    labels, readings = anomalous
    seen = set()
    for lab in labels:
        inside = _inside(readings[lab.machine_id], lab)
        ratios = [r.power_kw / _expected_kw(r) for r in inside]
        if lab.kind == "drop":
            assert max(ratios) < 0.2
            assert all(_f(r.throughput_units_per_hour) > 0 for r in inside)
        elif lab.kind == "drift":
            tenth = max(1, len(ratios) // 10)
            assert statistics.mean(ratios[:tenth]) < 1.08
            assert statistics.mean(ratios[-tenth:]) > 1.18
        elif lab.kind == "off_shift":
            assert all(r.production_count == 0 for r in inside)
            assert statistics.mean(ratios) > 1.3
        else:
            continue
        seen.add(lab.kind)
    assert seen == {"drop", "drift", "off_shift"}


def test_clean_readings_outside_labels(
    anomalous: tuple[list[Label], dict[str, list[Reading]]],
) -> None:
    labels, readings = anomalous
    by_machine: dict[str, list[Label]] = defaultdict(list)
    for lab in labels:
        by_machine[lab.machine_id].append(lab)
    for mid, rs in readings.items():
        m = machine_by_id(mid)
        assert m is not None
        bound = 6 * PROFILES[m.type].noise
        for r in rs:
            if not any(lab.contains(r.timestamp) for lab in by_machine[mid]):
                assert abs(r.power_kw / _expected_kw(r) - 1) < bound


# --------------------------------------------------------------------------- label files


def test_labels_round_trip(tmp_path: Path) -> None:
    labels = generate(start=MONDAY, duration=timedelta(days=14)).labels
    path = tmp_path / "labels.jsonl"
    write_labels(labels, path)
    back = read_labels(path)
    assert back == labels
    assert all(lab.start.tzinfo is not None for lab in back)
    assert len(path.read_text().splitlines()) == len(labels)
    write_labels(labels[:2], str(path), append=True)
    assert read_labels(str(path)) == labels + labels[:2]
    d = labels[0].to_dict()
    assert set(d) == {"machine_id", "kind", "start", "end"}
    assert msgspec.convert(d, Label) == labels[0]


# --------------------------------------------------------------------------- the runner


class FakeProducer:
    """Stands in for AIOKafkaProducer: records what is sent."""

    instances: list[FakeProducer] = []

    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.timestamps: list[int] = []
        self.sent_at: list[float] = []  # wall clock (time.time) at each send
        self.started = self.stopped = False
        FakeProducer.instances.append(self)

    async def start(self) -> None:
        self.started = True

    async def send(self, topic: str, value: bytes, key: bytes, timestamp_ms: int) -> None:
        assert self.started and not self.stopped
        # The record time is the reading's own time (replay seeks by it).
        reading_time = datetime.fromisoformat(msgspec.json.decode(value)["timestamp"])
        assert timestamp_ms == int(reading_time.timestamp() * 1000)
        self.sent.append((topic, key, value))
        self.timestamps.append(timestamp_ms)
        self.sent_at.append(time.time())

    async def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def fake_producer(monkeypatch: pytest.MonkeyPatch) -> type[FakeProducer]:
    FakeProducer.instances = []
    monkeypatch.setattr(simulator, "AIOKafkaProducer", FakeProducer)
    return FakeProducer


async def test_run_sends_every_reading_keyed_by_machine(
    fake_producer: type[FakeProducer], tmp_path: Path,
) -> None:
    labels_path = tmp_path / "labels.jsonl"
    settings = Settings(kafka_bootstrap="kafka.test:9092")
    start = MONDAY + timedelta(hours=9)
    n = await simulator.run(settings, speed=0, start=start, duration=timedelta(minutes=1),
                            labels_path=str(labels_path))
    [producer] = fake_producer.instances
    assert n == 142 == len(producer.sent)
    assert producer.kwargs == {"bootstrap_servers": "kafka.test:9092", "linger_ms": 5}
    assert producer.stopped
    expected = list(generate(start=start, duration=timedelta(minutes=1)).readings)
    for (topic, key, value), r in zip(producer.sent, expected, strict=True):
        assert topic == READINGS
        assert key == r.machine_id.encode()
        assert decode_reading(value) == r
    assert labels_path.exists()
    assert read_labels(labels_path) == []


async def test_run_paces_by_speed(fake_producer: type[FakeProducer]) -> None:
    t0 = time.perf_counter()
    n = await simulator.run(Settings(), speed=1200, start=MONDAY,
                            duration=timedelta(minutes=3), anomalies=False)
    elapsed = time.perf_counter() - t0
    assert n == 3 * 142
    assert 0.13 < elapsed < 2.0  # 180 simulated s at 1200x is 0.15 s


def _sent_readings(producer: FakeProducer) -> list[tuple[Reading, float]]:
    """(reading, wall-clock time it was sent) of each send."""
    return [(decode_reading(value), at)
            for (_, _, value), at in zip(producer.sent, producer.sent_at, strict=True)]


async def test_run_flat_out_holds_back_readings_from_the_future(
        fake_producer: type[FakeProducer]) -> None:
    # speed 0 sends the past at once, but a reading not yet due waits for its time.
    t_begin = time.time()
    start = datetime.now(UTC) - timedelta(seconds=1)
    n = await simulator.run(Settings(), speed=0, start=start, duration=timedelta(seconds=3),
                            anomalies=False)
    elapsed = time.time() - t_begin
    [producer] = fake_producer.instances
    sent = _sent_readings(producer)
    assert [r for r, _ in sent] == list(generate(start=start, duration=timedelta(seconds=3),
                                                 anomalies=False).readings)
    assert n == len(sent)
    early = [(r.timestamp, r.timestamp.timestamp() - at) for r, at in sent
             if at < r.timestamp.timestamp()]
    assert not early, f"sent before their time (reading time, seconds early): {early}"
    assert sent[0][1] - t_begin < 0.5  # the reading in the past went at once
    last = max(r.timestamp for r, _ in sent)
    assert last > start + timedelta(seconds=1.5)  # some were really in the future
    assert elapsed >= last.timestamp() - t_begin


async def test_run_paced_catches_up_with_now_then_goes_on_in_real_time(
        fake_producer: type[FakeProducer], caplog: pytest.LogCaptureFixture) -> None:
    # 120 simulated s behind at 600x: caught up after 0.2 s, then the last second in real time.
    caplog.set_level("INFO", logger=simulator.__name__)
    t_begin = time.time()
    start = datetime.now(UTC) - timedelta(seconds=120)
    n = await simulator.run(Settings(), speed=600, start=start,
                            duration=timedelta(seconds=122), anomalies=False)
    elapsed = time.time() - t_begin
    [producer] = fake_producer.instances
    sent = _sent_readings(producer)
    assert n == len(sent) == 2 * 122 + 2 * 13 + 5 * 5  # compressors 1 s, 10 s and 30 s machines
    assert all(at >= r.timestamp.timestamp() for r, at in sent)
    # Paced while in the past: a minute in is 0.1 s of real time in.
    minute = next(at for r, at in sent if r.timestamp >= start + timedelta(seconds=60))
    assert minute - t_begin >= 0.09
    # ... and the run lasts until the wall clock reaches its last reading (a second after
    # the start of the test), not the 0.2 s of 122 s at 600x.
    last = max(r.timestamp for r, _ in sent).timestamp()
    assert last - t_begin > 0.5
    assert last - t_begin <= elapsed < 10
    assert "caught up with the wall clock" in caplog.text


async def test_run_default_start_puts_the_backfill_in_the_past(
        fake_producer: type[FakeProducer]) -> None:
    before = datetime.now(UTC)
    t_begin = time.perf_counter()
    n = await simulator.run(Settings(), speed=60, backfill=timedelta(seconds=30),
                            duration=timedelta(seconds=30), anomalies=False)
    elapsed = time.perf_counter() - t_begin
    [producer] = fake_producer.instances
    stamps = [r.timestamp for r, _ in _sent_readings(producer)]
    assert n == len(stamps)
    assert before - timedelta(seconds=32) <= stamps[0] <= before - timedelta(seconds=29)
    assert max(stamps) < before
    assert elapsed < 2.0  # all of it past: sent flat out, nothing waited for


async def test_run_until_stopped_writes_labels_per_day(
    fake_producer: type[FakeProducer], tmp_path: Path,
) -> None:
    stop = asyncio.Event()
    labels_path = tmp_path / "labels.jsonl"
    task = asyncio.create_task(simulator.run(
        Settings(), speed=0, start=MONDAY, labels_path=str(labels_path), stop=stop))
    deadline = time.monotonic() + 20
    day = sum(86_400 // m.data_interval_seconds for m in MACHINES)  # 204,480 readings
    while not fake_producer.instances or len(fake_producer.instances[0].sent) < day + 500:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)  # into the second simulated day
    stop.set()
    n = await asyncio.wait_for(task, timeout=10)
    [producer] = fake_producer.instances
    assert producer.stopped
    assert n == len(producer.sent) >= day + 500
    days = read_labels(labels_path)
    assert {lab.start.date() for lab in days} == {
        MONDAY.date(), (MONDAY + timedelta(days=1)).date()}
    first_day = generate(start=MONDAY, duration=timedelta(days=1)).labels
    assert days[: len(first_day)] == first_day


async def test_run_stops_producer_when_cancelled(fake_producer: type[FakeProducer]) -> None:
    task = asyncio.create_task(simulator.run(Settings(), speed=60, start=MONDAY))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [producer] = fake_producer.instances
    assert producer.stopped
    assert producer.sent


# --------------------------------------------------------------------------- efficiency changes


def test_efficiency_change_scales_power_from_its_time_on() -> None:
    boiler = BY_TYPE["boiler"]
    when = MONDAY + timedelta(hours=30, seconds=15)  # between two 30-s readings
    plain = list(generate(start=MONDAY, duration=timedelta(days=2), machines=[boiler],
                          anomalies=False).readings)
    changed = list(generate(start=MONDAY, duration=timedelta(days=2), machines=[boiler],
                            anomalies=False,
                            efficiency_changes={boiler.id: (when, 1.25)}).readings)
    assert len(plain) == len(changed)
    for a, b in zip(plain, changed, strict=True):
        assert a.timestamp == b.timestamp
        assert a.drivers().keys() == b.drivers().keys()
        assert (a.production_count, a.outdoor_temp_c) == (b.production_count, b.outdoor_temp_c)
        if a.timestamp < when:
            assert a == b
        else:
            assert b.power_kw == pytest.approx(1.25 * a.power_kw, abs=2e-4)  # both rounded
            assert b.energy_kwh == pytest.approx(1.25 * a.energy_kwh, abs=1e-6)


def test_efficiency_change_keeps_other_machines_and_labels() -> None:
    boiler = BY_TYPE["boiler"]
    six_hours = functools.partial(generate, start=MONDAY, duration=timedelta(hours=6),
                                  anomaly_rate_per_day=40.0)
    plain = six_hours()
    changed = six_hours(efficiency_changes={boiler.id: (MONDAY, 0.8)})
    assert plain.labels == changed.labels
    for a, b in zip(plain.readings, changed.readings, strict=True):
        if a.machine_id != boiler.id:
            assert a == b
        else:
            assert a.timestamp == b.timestamp


def test_efficiency_change_is_validated() -> None:
    motor = BY_TYPE["motor"]
    one_minute = functools.partial(generate, start=MONDAY, duration=timedelta(minutes=1),
                                   machines=[motor])
    with pytest.raises(ValueError, match="not simulated"):
        one_minute(efficiency_changes={BY_TYPE["boiler"].id: (MONDAY, 1.2)})
    with pytest.raises(ValueError, match="timezone-aware"):
        one_minute(efficiency_changes={motor.id: (datetime(2026, 1, 5), 1.2)})  # noqa: DTZ001
    for factor in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="positive"):
            one_minute(efficiency_changes={motor.id: (MONDAY, factor)})


def test_hourly_coefficients_are_the_profile_in_hourly_terms() -> None:
    for m in MACHINES:
        p = PROFILES[m.type]
        c = p.coefficients(m.rated_power_kw)
        truth = hourly_coefficients(m)
        assert truth["intercept_kwh"] == pytest.approx(c["base_kw"])  # kW for one hour
        if p.power_only:  # no production in its records: the load is a time-of-week term
            assert truth["kwh_per_unit"] == 0.0
            assert truth["shift_kwh"] == pytest.approx(m.rated_power_kw * p.load)
        else:
            assert truth["kwh_per_unit"] == pytest.approx(c["kw_per_unit"])  # per unit/h, 1 h
            assert truth["shift_kwh"] == 0.0
        assert truth["heat_kwh_per_degree_hour"] == pytest.approx(c["heat_kw_per_c"])
        assert truth["cool_kwh_per_degree_hour"] == pytest.approx(c["cool_kw_per_c"])
        assert (truth["heat_balance_c"], truth["cool_balance_c"]) == (
            p.heat_balance_c, p.cool_balance_c)
        scaled = hourly_coefficients(m, factor=1.25)
        assert scaled["intercept_kwh"] == pytest.approx(1.25 * truth["intercept_kwh"])
        assert scaled["heat_balance_c"] == truth["heat_balance_c"]


def test_hourly_energy_follows_the_hourly_coefficients() -> None:
    """Hourly sums of clean readings obey the documented hourly model to within about 1 %."""
    boiler = BY_TYPE["boiler"]
    sim = generate(start=MONDAY, duration=timedelta(days=2), machines=[boiler],
                   anomalies=False)
    truth = hourly_coefficients(boiler)
    hours: dict[datetime, list[Reading]] = defaultdict(list)
    for r in sim.readings:
        hours[r.timestamp.replace(minute=0, second=0)].append(r)
    for rs in hours.values():
        energy = sum(r.energy_kwh for r in rs)
        count = sum(_f(r.production_count) for r in rs)
        temp = statistics.mean(_f(r.outdoor_temp_c) for r in rs)
        expected = (truth["intercept_kwh"] + truth["kwh_per_unit"] * count
                    + truth["heat_kwh_per_degree_hour"] * max(0.0, truth["heat_balance_c"] - temp))
        assert energy == pytest.approx(expected, rel=0.03)


async def test_run_passes_efficiency_changes_through(fake_producer: type[FakeProducer]) -> None:
    start = MONDAY + timedelta(hours=9)
    changes = {MACHINES[2].id: (start + timedelta(seconds=30), 2.0)}
    n = await simulator.run(Settings(), speed=0, start=start, duration=timedelta(minutes=1),
                            anomalies=False, efficiency_changes=changes)
    [producer] = fake_producer.instances
    expected = list(generate(start=start, duration=timedelta(minutes=1), anomalies=False,
                             efficiency_changes=changes).readings)
    assert n == len(expected)
    assert [decode_reading(value) for _, _, value in producer.sent] == expected
