"""The simulator's power-only meter (issue 10): Lighting-Hall-1 reports power and energy only,
follows the shifts and the weekend, and gets every kind of anomaly."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import msgspec
import numpy as np
import pytest

from detectors.baseline import fit_baseline
from detectors.hourly import hourly_records
from schemas.energy import EnergyHourly
from schemas.machines import MACHINES, machine_by_id
from schemas.readings import Reading, convert_reading, decode_reading, encode_reading
from simulation import KINDS, PROFILES, Label, Profile, generate, hourly_coefficients, shift_level
from streams import simulator
from streams.settings import Settings
from streams.topics import ENERGY_HOURLY

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)
LIGHTS = next(m for m in MACHINES if m.id == "c0000000-0000-0000-0000-000000000009")
PROFILE = PROFILES[LIGHTS.type]
R = LIGHTS.rated_power_kw
NO_DRIVERS = ("production_count", "throughput_units_per_hour", "outdoor_temp_c",
              "machine_temp_c", "pressure_bar")


def _lights(days: float, *, anomalies: bool = True,
            anomaly_rate_per_day: float = 4.0) -> list[Reading]:
    sim = generate(start=MONDAY, duration=timedelta(days=days), machines=[LIGHTS],
                   anomalies=anomalies, anomaly_rate_per_day=anomaly_rate_per_day)
    return list(sim.readings)


def test_the_catalogue_has_a_power_only_lighting_meter() -> None:
    assert machine_by_id(LIGHTS.id) is LIGHTS
    assert (LIGHTS.name, LIGHTS.type, LIGHTS.rated_power_kw, LIGHTS.data_interval_seconds) == (
        "Lighting-Hall-1", "lighting", 40.0, 30)
    assert len({m.id for m in MACHINES}) == len(MACHINES) == 9
    assert PROFILE.power_only
    assert [m.name for m in MACHINES if PROFILES[m.type].power_only] == ["Lighting-Hall-1"]


def test_readings_carry_power_and_energy_only() -> None:
    readings = _lights(1, anomaly_rate_per_day=40.0)
    assert len(readings) == 2880
    for r in readings:
        assert r.drivers() == {}
        assert all(getattr(r, name) is None for name in NO_DRIVERS)
        assert r.energy_kwh == pytest.approx(r.power_kw * 30 / 3600)
        assert convert_reading(msgspec.to_builtins(r)) == r
        assert decode_reading(encode_reading(r)) == r
    wire = msgspec.json.decode(encode_reading(readings[0]))
    assert {k for k, v in wire.items() if v is not None} == {
        "machine_id", "timestamp", "power_kw", "energy_kwh", "schema_version"}


def test_load_follows_the_shifts_and_the_weekend() -> None:
    groups: dict[str, list[float]] = defaultdict(list)
    for r in _lights(7, anomalies=False):
        ts = r.timestamp
        minute = ts.hour * 60 + ts.minute
        if ts.minute < 2:  # the ramps after the edges (06:00, 14:00, 22:00) are left out
            continue
        if ts.weekday() < 5 and 6 * 60 <= minute < 22 * 60:
            groups["weekday shift"].append(r.power_kw)
        elif ts.weekday() == 5 and 6 * 60 <= minute < 14 * 60:
            groups["saturday shift"].append(r.power_kw)
        else:
            groups["night or sunday"].append(r.power_kw)
    day, sat, off = (statistics.mean(groups[k]) for k in (
        "weekday shift", "saturday shift", "night or sunday"))
    assert day > sat > off
    assert day / R == pytest.approx(0.90, abs=0.02)
    assert sat / R == pytest.approx(0.588, abs=0.02)
    assert off / R == pytest.approx(0.12, abs=0.01)
    # small noise and wobble: a few per cent
    for values in groups.values():
        assert statistics.stdev(values) / statistics.mean(values) < 0.04


def test_the_lights_ramp_over_90_s_after_each_shift_edge() -> None:
    readings = {r.timestamp: r.power_kw for r in _lights(1, anomalies=False)}
    six, ten_pm = MONDAY + timedelta(hours=6), MONDAY + timedelta(hours=22)
    up = [readings[six + timedelta(seconds=s)] for s in (-30, 0, 30, 60, 90)]
    down = [readings[ten_pm + timedelta(seconds=s)] for s in (-30, 0, 30, 60, 90)]
    assert up[1:] == sorted(up[1:]) and down[1:] == sorted(down[1:], reverse=True)
    assert up[0] < 0.15 * R and up[1] < 0.15 * R and up[-1] > 0.85 * R
    assert 0.25 * R < up[2] < 0.5 * R < up[3] < 0.8 * R
    assert down[0] > 0.85 * R and down[1] > 0.85 * R and down[-1] < 0.15 * R
    with pytest.raises(ValueError, match="ramp_s"):
        Profile(base=0.1, load=0.5, nominal_uph=1.0, ramp_s=3600.0)


def test_every_kind_is_planned_on_it_in_the_plant() -> None:
    # The plan over the whole catalogue (labels are known before any reading is made).
    labels = generate(start=MONDAY, duration=timedelta(days=14),
                      anomaly_rate_per_day=40.0).labels
    mine = [lab for lab in labels if lab.machine_id == LIGHTS.id]
    assert set(Counter(lab.kind for lab in mine)) == set(KINDS)
    for lab in mine:
        ends = np.array([lab.start.timestamp(), lab.end.timestamp() - 1e-3])
        if lab.kind == "drop":
            assert (shift_level(ends) > 0).all(), lab
        if lab.kind == "off_shift":
            assert (shift_level(ends) == 0).all(), lab


def _by_label(labels: list[Label], readings: list[Reading]) -> dict[Label | None, list[int]]:
    out: dict[Label | None, list[int]] = defaultdict(list)
    for i, r in enumerate(readings):
        out[next((lab for lab in labels if lab.contains(r.timestamp)), None)].append(i)
    return out


def test_every_kind_is_injected_with_its_shape() -> None:
    # The same seed with and without anomalies: the noise draws are the same, so the ratio of
    # the two powers is the anomaly itself.
    sim = generate(start=MONDAY, duration=timedelta(days=6), machines=[LIGHTS],
                   anomaly_rate_per_day=12.0)
    faulty = list(sim.readings)
    clean = _lights(6, anomalies=False)
    assert [r.timestamp for r in faulty] == [r.timestamp for r in clean]
    assert {lab.kind for lab in sim.labels} == set(KINDS)
    for lab, idx in _by_label(sim.labels, faulty).items():
        power = np.array([faulty[i].power_kw for i in idx])
        ratio = power / np.array([clean[i].power_kw for i in idx])
        if lab is None:
            assert (ratio == 1.0).all()  # outside the labels: the clean readings exactly
        elif lab.kind == "spike":
            assert 1 <= len(idx) <= 3 and (ratio > 2.4).all() and (ratio < 4.1).all()
        elif lab.kind == "drop":
            assert (ratio > 0.04).all() and (ratio < 0.16).all()
            assert (power < 0.16 * R).all()  # the lights fail in a shift
        elif lab.kind == "drift":
            tenth = max(1, len(ratio) // 10)
            assert ratio[:tenth].mean() < 1.05 and 1.2 < ratio[-tenth:].mean() < 1.45
        elif lab.kind == "stuck":
            before = faulty[idx[0] - 1].power_kw
            assert set(power.tolist()) == {before}
            assert len({faulty[i].energy_kwh for i in idx}) == 1
        elif lab.kind == "off_shift":
            assert (power > 0.8 * R).all()  # the lights left on at the shift level
            assert (np.array([clean[i].power_kw for i in idx]) < 0.15 * R).all()


class _FakeProducer:
    """Stands in for AIOKafkaProducer in `seed_hourly_history`."""

    instances: ClassVar[list[_FakeProducer]] = []

    def __init__(self, **kwargs: object) -> None:
        self.sent: list[tuple[str, bytes, bytes, int]] = []
        _FakeProducer.instances.append(self)

    async def start(self) -> None:
        pass

    async def send(self, topic: str, key: bytes, value: bytes, timestamp_ms: int) -> None:
        self.sent.append((topic, key, value, timestamp_ms))

    async def stop(self) -> None:
        pass


async def test_seed_hourly_history_covers_the_power_only_meter(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulator, "AIOKafkaProducer", _FakeProducer)
    _FakeProducer.instances = []
    start = MONDAY + timedelta(hours=5)
    n = await simulator.seed_hourly_history(Settings(), seed=42, start=start,
                                            end=start + timedelta(hours=3))
    [producer] = _FakeProducer.instances
    sent = producer.sent
    assert n == len(sent) == 3 * len(MACHINES)
    mine = [msgspec.json.decode(value, type=EnergyHourly)
            for topic, key, value, _ in sent if key == LIGHTS.id.encode()]
    assert all(topic == ENERGY_HOURLY for topic, *_ in sent)
    assert [h.hour_start for h in mine] == [start + timedelta(hours=i) for i in range(3)]
    for h in mine:
        assert h.production_count is None and h.throughput_units_per_hour is None
        assert h.outdoor_temp_c is None and h.machine_temp_c is None and h.coverage == 1.0
    assert mine[0].energy_kwh == pytest.approx(0.12 * R, rel=0.05)  # 05:00, before the shift
    assert mine[2].energy_kwh == pytest.approx(0.90 * R, rel=0.05)  # 07:00, in it


def test_a_baseline_of_its_hourly_history_is_a_time_of_week_model() -> None:
    """Six weeks at one reading a minute: no production or temperature, so the only
    candidates are the mean and the time-of-week model (weekend and weekday-shift terms)."""
    start = datetime(2026, 3, 9, tzinfo=UTC)
    sim = generate(start=start, duration=timedelta(days=42), machines=[LIGHTS],
                   anomalies=False, interval_scale=2.0)
    rows = list(hourly_records(sim.readings, sim.intervals))
    model = fit_baseline(rows, machine_id=LIGHTS.id, version=1, model_id="lights",
                         training_job_id="job", trained_at=start + timedelta(days=42))
    truth = hourly_coefficients(LIGHTS)
    assert model.kind == "tow" and sorted(model.feature_names) == ["shift", "weekend"]
    assert model.intercept == pytest.approx(truth["intercept_kwh"], rel=0.10)
    assert model.coefficients["shift"] == pytest.approx(truth["shift_kwh"], rel=0.05)
    # Saturday's morning shift is not a term of the model: it lands in the weekend term.
    assert 0 < model.coefficients["weekend"] < 0.25 * truth["shift_kwh"]
    assert model.accepted, model.reasons
