"""Property tests (Hypothesis): what the decoder, the plausibility gates and the scoring
core do with input no one here chose."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import numpy as np
import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from detectors.ordering import LateReading
from detectors.scoring import MachineScorer, ScoringConfig
from schemas.jsondepth import too_deep
from schemas.machines import MACHINES, machine_by_id
from schemas.plausibility import EARLIEST, Limits, check_plausible
from schemas.readings import (
    InvalidRecord,
    Reading,
    decode_reading,
    decode_readings_batch,
    encode_reading,
)

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
FIELDS = ("machine_id", "timestamp", "power_kw", "energy_kwh", "production_count",
          "throughput_units_per_hour", "outdoor_temp_c", "machine_temp_c", "pressure_bar",
          "schema_version")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=30)


def good_reading(**over: Any) -> dict[str, Any]:
    d = {"machine_id": MACHINES[2].id, "timestamp": "2026-06-01T11:00:00+00:00",
         "power_kw": 20.0, "energy_kwh": 20.0 * 30 / 3600}
    d.update(over)
    return d


mutations = st.fixed_dictionaries({}, optional={
    name: json_values | st.floats() | st.sampled_from(
        [1e308, -1e308, 1e200, 0.0, -1.0, "9000-01-01T00:00:00Z", "1970-01-01T00:00:00Z",
         "2026-06-01T11:00:00", None, "", [], {}])
    for name in FIELDS})


def _only_invalid_record(raw: bytes) -> Reading | None:
    try:
        return decode_reading(raw)
    except InvalidRecord as e:
        assert e.reason
        assert isinstance(e.field, str)
        return None


@given(st.binary(max_size=2048))
def test_the_decoder_raises_only_invalid_record_on_any_bytes(raw: bytes) -> None:
    _only_invalid_record(raw)


@example(b"\xd9", "machine_id")  # msgspec raised UnicodeDecodeError for this one (found by make fuzz)
@given(st.binary(max_size=64), st.sampled_from(FIELDS + ("x",)))
def test_bytes_inside_a_json_string_never_escape_as_another_error(inner: bytes,
                                                                  name: str) -> None:
    for raw in (b'{"%s": "%s"}' % (name.encode(), inner), b'["%s"]' % inner,
                b'"%s"' % inner, b'{"machine_id": "m", "%s": "%s"}' % (inner, inner)):
        _only_invalid_record(raw)
        try:
            decode_readings_batch(raw)
        except InvalidRecord:
            pass


@given(json_values)
def test_the_decoder_raises_only_invalid_record_on_any_json(value: Any) -> None:
    _only_invalid_record(json.dumps(value).encode())


@given(mutations)
def test_a_mutated_reading_decodes_or_is_refused_naming_a_field(over: dict[str, Any]) -> None:
    raw = json.dumps(good_reading(**over)).encode()  # json writes NaN/Infinity tokens too
    try:
        r = decode_reading(raw)
    except InvalidRecord as e:
        assert e.field in (*FIELDS, "$") or e.field.split("[")[0].split(".")[0] in FIELDS, e
        return
    for name in ("power_kw", "energy_kwh"):
        assert math.isfinite(getattr(r, name)) and getattr(r, name) >= 0


@given(st.lists(json_values | mutations.map(lambda o: good_reading(**o)), max_size=5),
       st.booleans())
def test_a_batch_decodes_whole_or_names_the_index(items: list[Any], wrapped: bool) -> None:
    body = {"readings": items} if wrapped else items
    try:
        out = decode_readings_batch(json.dumps(body).encode())
    except InvalidRecord as e:
        assert e.field == "$" or e.field.startswith("["), e
        return
    assert len(out) == len(items)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@given(json_values, st.integers(min_value=0, max_value=6))
def test_too_deep_agrees_with_the_parsed_depth(value: Any, limit: int) -> None:
    raw = json.dumps(value).encode()
    assert (too_deep(raw, limit) is None) == (_depth(value) <= limit)


def test_deep_nesting_is_refused_naming_the_place_without_recursion() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    for raw, field in ((b'{"machine_id": "m", "extra": ' + deep + b"}", "extra[0][0][0]"),
                       (deep, "[0][0][0][0]")):
        try:
            decode_reading(raw)
        except InvalidRecord as e:
            assert e.field == field
            assert "nested deeper than 32" in e.reason
        else:
            raise AssertionError("a 100,000-deep value was accepted")


readings = st.builds(
    Reading,
    machine_id=st.sampled_from([m.id for m in MACHINES]),
    # Hypothesis takes naive bounds and adds the time zone itself.
    timestamp=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(9999, 1, 1),  # noqa: DTZ001
                           timezones=st.just(UTC)),
    power_kw=st.floats(min_value=0, max_value=1e308),
    energy_kwh=st.floats(min_value=0, max_value=1e308),
    production_count=st.none() | st.floats(min_value=0, max_value=1e308),
    throughput_units_per_hour=st.none() | st.floats(min_value=0, max_value=1e308),
    outdoor_temp_c=st.none() | st.floats(min_value=-1e308, max_value=1e308),
    machine_temp_c=st.none() | st.floats(min_value=-1e308, max_value=1e308),
    pressure_bar=st.none() | st.floats(min_value=0, max_value=1e308),
)


@given(readings)
def test_a_reading_passes_the_gates_only_inside_every_limit(r: Reading) -> None:
    limits = Limits()
    try:
        check_plausible(r, NOW, limits)
    except InvalidRecord as e:
        assert e.field in FIELDS
        return
    m = machine_by_id(r.machine_id)
    assert m is not None
    assert EARLIEST <= r.timestamp <= NOW + timedelta(seconds=limits.max_future_s)
    assert r.power_kw <= limits.max_power_factor * m.rated_power_kw
    assert r.energy_kwh <= (r.power_kw * 1.5 + 0.5 * m.rated_power_kw) * 1.0  # an hour at most
    for name, lo, hi in (("outdoor_temp_c", -60, 60), ("machine_temp_c", -60, 800)):
        v = getattr(r, name)
        assert v is None or lo <= v <= hi
    for name in ("throughput_units_per_hour", "production_count", "pressure_bar"):
        v = getattr(r, name)
        assert v is None or v <= 1e6


def _floats(obj: Any, seen: set[int] | None = None) -> list[float]:
    """Every float (and array element) reachable in an object's state."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, float):
        return [obj]
    if isinstance(obj, np.ndarray):
        return [float(v) for v in obj.ravel()] if obj.dtype.kind == "f" else []
    if isinstance(obj, dict):
        return [f for v in obj.values() for f in _floats(v, seen)]
    if isinstance(obj, list | tuple):
        return [f for v in obj for f in _floats(v, seen)]
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return [f for v in vars(obj).values() for f in _floats(v, seen)]
    return []


def _scorer_after(hostile: list[tuple[int, Reading]]) -> tuple[MachineScorer, Any]:
    """A warm scorer of Motor-Line-A (30 kW, 30 s) fed the hostile readings (their values,
    its machine and times) between normal ones; and a function for more normal readings."""
    m = MACHINES[2]
    s = MachineScorer(m.id, ScoringConfig(warmup=40))
    t0 = datetime(2026, 5, 4, 8, tzinfo=UTC)
    clock = {"i": 0}

    def normal(p: float | None = None) -> list[Any]:
        i = clock["i"]
        clock["i"] += 1
        p = 20.0 + 0.2 * (i % 4) if p is None else p
        # A steady production rate: the normal readings are the driver model's; the
        # hostile ones carry whatever they carry (most none: the power-only detector's).
        return s.step(Reading(machine_id=m.id, timestamp=t0 + timedelta(seconds=30 * i),
                              power_kw=p, energy_kwh=p * 30 / 3600,
                              throughput_units_per_hour=100.0))

    for _ in range(60):
        normal()
    for gap, r in hostile:
        clock["i"] += gap
        values = {f: getattr(r, f) for f in r.__struct_fields__}
        bad = Reading(**{**values, "machine_id": m.id,
                         "timestamp": t0 + timedelta(seconds=30 * clock["i"] + 1)})
        try:
            s.step(bad)
        except LateReading:
            pass
        clock["i"] += 1
    return s, normal


hostile_lists = st.lists(st.tuples(st.integers(0, 4), readings), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_lists)
def test_no_input_makes_the_scoring_state_nan_or_infinite(
        hostile: list[tuple[int, Reading]]) -> None:
    """Readings the decoder lets through (finite, >= 0) but the gates would not, fed
    straight to the core: every number of its state stays finite."""
    s, normal = _scorer_after(hostile)
    for _ in range(20):
        normal()
    state = _floats(msgspec.to_builtins(s.state()))  # the state as the changelog holds it
    assert state and all(math.isfinite(v) for v in state)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 4), readings.map(
    lambda r: Reading(machine_id=r.machine_id, timestamp=r.timestamp, power_kw=r.power_kw,
                      energy_kwh=r.energy_kwh))), min_size=1, max_size=6))
def test_a_spike_is_still_flagged_after_any_power_or_energy(
        hostile: list[tuple[int, Reading]]) -> None:
    """Absurd power and energy values (no drivers) do not blind the detector: a spike
    later is flagged. (Absurd drivers are the gates' job: a driver value never seen is
    learned, not judged.)"""
    s, normal = _scorer_after(hostile)
    for _ in range(200):
        normal()
    out = normal(80.0)
    assert any(getattr(e, "anomaly_type", None) == "spike" for e in out), out


def test_a_reading_round_trips_through_its_encoding() -> None:
    r = Reading(machine_id=MACHINES[0].id, timestamp=NOW, power_kw=1.5, energy_kwh=0.1,
                outdoor_temp_c=-3.0)
    assert decode_reading(encode_reading(r)) == r
    assert orjson.loads(encode_reading(r))["power_kw"] == 1.5


def test_the_energy_gate_takes_the_interval_since_the_previous_reading() -> None:
    m = MACHINES[0]  # Compressor-1: 55 kW, catalogued at 1 s
    t = datetime(2026, 6, 1, 11, tzinfo=UTC)
    r = Reading(machine_id=m.id, timestamp=t, power_kw=30.0, energy_kwh=30.0 * 30 / 3600)
    check_plausible(r, NOW, Limits(), since=t - timedelta(seconds=30))  # a 30 s meter
    check_plausible(r, NOW, Limits())  # unknown interval: up to an hour
    for since in (t - timedelta(seconds=1), t - timedelta(milliseconds=10)):
        try:
            check_plausible(r, NOW, Limits(), since=since)
        except InvalidRecord as e:
            assert e.field == "energy_kwh"
        else:
            raise AssertionError("30 s of energy one second after the last reading passed")
    hour = Reading(machine_id=m.id, timestamp=t, power_kw=30.0, energy_kwh=30.0 * 3)
    try:  # three hours of energy (past the tolerance of one) are refused even after a day
        check_plausible(hour, NOW, Limits(), since=t - timedelta(days=1))
    except InvalidRecord as e:
        assert e.field == "energy_kwh"
    else:
        raise AssertionError("three hours of energy in one reading passed")
