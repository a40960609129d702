"""Generated records for ``enms.readings``: bad ones of every kind, and good readings.

Deterministic for a seed. Each bad record is checked against the worker's own decoder and
plausibility gates before it is kept, so "bad" means "the worker must dead-letter it": a
mutation that happens to leave a valid reading is thrown away and drawn again.
"""

from __future__ import annotations

import json
import math
import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schemas.machines import Machine
from schemas.plausibility import Limits, check_plausible
from schemas.readings import InvalidRecord, Reading, decode_reading, encode_reading

#: Kinds of bad record, drawn in turn.
KINDS = ("bytes", "json", "mutated")


@dataclass(frozen=True)
class Record:
    """One record to produce: its key, value and the time it carries."""

    key: bytes | None
    value: bytes | None
    kind: str  # "good", or one of KINDS
    at: datetime


def refused(value: bytes | None, now: datetime, limits: Limits, max_bytes: int) -> bool:
    """Whether the worker dead-letters this value (its decoder and gates, nothing else)."""
    try:
        check_plausible(decode_reading(value, max_bytes=max_bytes), now, limits)
    except InvalidRecord:
        return True
    return False


def _random_bytes(rng: random.Random) -> bytes | None:
    roll = rng.random()
    if roll < 0.05:
        return None  # a tombstone
    if roll < 0.06:
        return b""
    if roll < 0.062:
        return rng.randbytes(rng.choice((100_000, 2 * 1024 * 1024)))  # huge
    return rng.randbytes(int(rng.expovariate(1 / 200)) + 1)


def _random_json_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 4 or roll < 0.5:
        return rng.choice([
            None, True, False, rng.randint(-2**63, 2**63 - 1), rng.choice((-1, 1)) * rng.random() * 1e308,
            "".join(rng.choices(string.printable, k=rng.randint(0, 20))),
            "\u0000\ud7ff\ue000\U0001f600", 1e-320, -0.0, 10**30])
    if roll < 0.75:
        return [_random_json_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    return {"".join(rng.choices(string.ascii_letters, k=rng.randint(0, 8))):
            _random_json_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def _random_json(rng: random.Random) -> bytes:
    if rng.random() < 0.05:  # deep: 40 to 20,000 levels, arrays or objects
        n = rng.choice((40, 200, 5000, 20_000))
        opening, closing = (b"[", b"]") if rng.random() < 0.5 else (b'{"a":', b"}")
        return opening * n + b"1" + closing * n
    return json.dumps(_random_json_value(rng), allow_nan=False).encode()


_EXTREMES: list[Any] = [1e308, -1e308, 1e200, -1.0, 0.0, 1e-320, 10**400, "12.5", None, [],
                        {}, True, float("nan"), float("inf"), "", "NaN", [1.0]]
_TIMES = ["9000-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "1999-12-31T23:59:59Z",
          "2011-03-07T08:00:00", "not a time", "2011-02-30T00:00:00Z", "",
          "2011-03-07T08:00:00+25:00", "+275760-09-13T00:00:00Z", 0, None]
_FIELDS = ("power_kw", "energy_kwh", "production_count", "throughput_units_per_hour",
           "outdoor_temp_c", "machine_temp_c", "pressure_bar")


def _mutate(rng: random.Random, good: dict[str, Any]) -> bytes:
    d = dict(good)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(8)
        if op == 0:
            d.pop(rng.choice(list(d)), None)
        elif op == 1:
            d[rng.choice(_FIELDS)] = rng.choice(_EXTREMES)
        elif op == 2:
            d["timestamp"] = rng.choice(_TIMES)
        elif op == 3:
            d["machine_id"] = rng.choice([
                "", "c0000000-0000-0000-0000-00000000dead", None, 42, "x" * 10_000])
        elif op == 4:
            d[rng.choice(("extra", "note", "power_kw"))] = _random_json_value(rng)
        elif op == 5:
            d["schema_version"] = rng.choice([2, 0, "1", None])
        elif op == 6:
            d["outdoor_temp_c"] = rng.choice([-80.0, 61.0, 1e6])
        else:
            d["power_kw"] = rng.choice([1e4, 5e3, 1e308])
    text = json.dumps(d, default=str).encode()  # json writes NaN/Infinity tokens
    roll = rng.random()
    if roll < 0.1:
        return text[: rng.randrange(max(1, len(text)))]  # truncated
    if roll < 0.2:
        i = rng.randrange(len(text))
        return text[:i] + bytes([rng.randrange(256)]) + text[i + 1:]  # one byte flipped
    return text


def good_readings(machines: list[Machine], start: datetime, count: int,
                  rng: random.Random) -> list[Reading]:
    """``count`` plausible readings, round-robin over the machines, each at its interval,
    steady at a third of rated power with 2.5 % noise."""
    out: list[Reading] = []
    for i in range(count):
        m = machines[i % len(machines)]
        n = i // len(machines)
        p = max(0.0, rng.gauss(m.rated_power_kw / 3, m.rated_power_kw / 120))
        out.append(Reading(machine_id=m.id,
                           timestamp=start + timedelta(seconds=m.data_interval_seconds * n),
                           power_kw=round(p, 4),
                           energy_kwh=p * m.data_interval_seconds / 3600))
    return out


def stream(*, seed: int, machines: list[Machine], start: datetime, bad: int, good: int,
           now: datetime, limits: Limits, max_bytes: int) -> Iterator[Record]:
    """``bad`` bad records and ``good`` good readings, interleaved at random (the good ones
    in time order per machine)."""
    rng = random.Random(seed)
    readings = good_readings(machines, start, good, rng)
    template = json.loads(encode_reading(readings[0]))
    makers: dict[str, Callable[[], bytes | None]] = {
        "bytes": lambda: _random_bytes(rng),
        "json": lambda: _random_json(rng),
        "mutated": lambda: _mutate(rng, template),
    }
    good_it = iter(readings)
    left_bad, left_good = bad, good
    while left_bad or left_good:
        if left_good and (not left_bad or rng.random() < left_good / (left_good + left_bad)):
            r = next(good_it)
            left_good -= 1
            yield Record(r.machine_id.encode(), encode_reading(r), "good", r.timestamp)
            continue
        kind = KINDS[left_bad % len(KINDS)]
        while True:
            value = makers[kind]()
            if refused(value, now, limits, max_bytes):
                break
        left_bad -= 1
        key = rng.choice([None, rng.randbytes(rng.randint(0, 300)),
                          rng.choice(machines).id.encode()])
        if key is None and value is None:  # Kafka takes no record without both
            key = rng.choice(machines).id.encode()
        at = start + timedelta(seconds=rng.uniform(0, 3600))
        yield Record(key, value, kind, at)


def closing_readings(machines: list[Machine], after: datetime) -> list[Reading]:
    """One reading per machine in a later hour: every metric window before it closes."""
    return [Reading(machine_id=m.id, timestamp=after, power_kw=m.rated_power_kw / 3,
                    energy_kwh=m.rated_power_kw / 3 * m.data_interval_seconds / 3600)
            for m in machines]


def span(readings_start: datetime, machines: list[Machine], good: int) -> datetime:
    """The end of the good readings' time range."""
    longest = max(m.data_interval_seconds for m in machines)
    return readings_start + timedelta(seconds=longest * math.ceil(good / len(machines)))


__all__ = ["KINDS", "Record", "closing_readings", "good_readings", "refused", "span",
           "stream"]
