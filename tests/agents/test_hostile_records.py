"""Whatever a record holds, the scoring agent scores it or dead-letters it, and goes on.

Faust's test context (memory store, outbound topics mocked), the same agent code as in the
worker. The real-stack version of the first test is tests/integration/test_bad_input.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import AsyncMock, MagicMock, patch

import orjson
import pytest

from agents import score_readings as agent_module
from detectors.scoring import MachineScorer, ScoringConfig
from schemas.readings import Reading, encode_reading
from streams import deadletters, topics
from tests.agents.fakes import acked

M = "c0000000-0000-0000-0000-000000000003"  # Motor-Line-A, 30 kW, 30 s
T0 = datetime(2025, 3, 3, 8, tzinfo=UTC)


def good(i: int, p: float | None = None) -> Reading:
    p = 20.0 + 0.2 * (i % 4) if p is None else p
    return Reading(machine_id=M, timestamp=T0 + timedelta(seconds=30 * i), power_kw=p,
                   energy_kwh=p * 30 / 3600, throughput_units_per_hour=100.0)


def raw(r: Reading, **over: Any) -> bytes:
    d = orjson.loads(encode_reading(r))
    d.update(over)
    return orjson.dumps(d)


class Sent:
    """What the agent sent, by topic."""

    def __init__(self) -> None:
        self.dlq = acked()
        self.outputs = {name: AsyncMock() for name in agent_module.output_topics}
        self.hourly = AsyncMock()

    def events(self, topic: str, event_type: str) -> list[dict[str, Any]]:
        values = [orjson.loads(c.kwargs["value"]) for c in self.outputs[topic].await_args_list]
        return [v for v in values if v["event_type"] == event_type]

    def dead_letters(self) -> list[dict[str, Any]]:
        return [orjson.loads(c.kwargs["value"]) for c in self.dlq.await_args_list]

    def hours(self) -> list[dict[str, Any]]:
        return [orjson.loads(c.kwargs["value"]) for c in self.hourly.await_args_list]


@contextmanager
def mocked(sent: Sent, warmup: int = 300) -> Iterator[None]:
    config = ScoringConfig(warmup=warmup)
    with patch.object(agent_module.dead_letters.topic, "send", sent.dlq), \
            patch.object(agent_module.energy_hourly_topic, "send", sent.hourly), \
            patch.object(agent_module.scorers, "on_key_set", MagicMock()), \
            patch.object(agent_module, "CONFIG", config), \
            patch.dict(agent_module.output_topics,
                       {k: AsyncMock(send=v) for k, v in sent.outputs.items()}):
        yield  # the table starts empty (tests/agents/conftest.py)


def bad_records() -> list[tuple[str, bytes | None, str]]:
    """(what, value, the field its dead letter must name)."""
    r = good(50)
    return [
        ("null value", None, "$"),
        ("empty value", b"", "$"),
        ("not UTF-8", b"\xff\xfe\x00\x80" + os.urandom(64), "$"),
        ("5,000 deep", b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "x[0][0][0]"),
        ("2 MB", os.urandom(2 * 1024 * 1024), "$"),
        ("JSON, wrong shape", b"[1, 2, 3]", "$"),
        ("from the year 9000", raw(r, timestamp="9000-01-01T00:00:00Z"), "timestamp"),
        ("power 1e308", raw(r, power_kw=1e308), "power_kw"),
        ("throughput 1e200", raw(r, throughput_units_per_hour=1e200),
         "throughput_units_per_hour"),
        ("energy 1e308", raw(r, energy_kwh=1e308), "energy_kwh"),
    ]


async def test_every_bad_record_is_dead_lettered_and_every_good_one_scored(app) -> None:
    sent = Sent()
    bad = bad_records()
    spike = good(101, p=70.0)
    with mocked(sent, warmup=30):
        async with agent_module.score_readings.test_context() as agent:
            for i in range(50):
                await agent.put(encode_reading(good(i)), key=M.encode())
            for _what, value, _field in bad:
                await agent.put(value, key=M.encode())
            for i in range(51, 101):
                await agent.put(encode_reading(good(i)), key=M.encode())
            await agent.put(encode_reading(spike), key=M.encode())
            # A later reading closes the spike's metric window.
            await agent.put(encode_reading(good(110)), key=M.encode())
    letters = sent.dead_letters()
    assert [d["field"] for d in letters] == [f for _, _, f in bad]
    for (what, value, _), d in zip(bad, letters, strict=True):
        assert d["reason"], what
        assert d["source_topic"] == topics.READINGS
        assert d["value_bytes"] == (None if value is None else len(value)), what
    two_mb = letters[4]
    assert two_mb["value_truncated"] is True
    assert two_mb["value_encoding"] == "base64"
    assert two_mb["value_sha256"] == hashlib.sha256(bad[4][1] or b"").hexdigest()
    assert len(orjson.dumps(two_mb)) < 64 * 1024  # far below the producer's 1 MB limit
    metrics = sent.events(topics.METRICS, "metric_updated")
    assert sum(m["readings"] for m in metrics) == 101  # 100 good readings and the spike
    flagged = sent.events(topics.ANOMALIES, "anomaly_detected")
    assert [a["value"] for a in flagged] == [70.0]


async def test_a_failing_dead_letter_send_is_retried_counted_and_scoring_goes_on(app) -> None:
    sent = Sent()
    calls = 0

    async def broken(**_kw: object) -> asyncio.Future[None]:
        nonlocal calls
        calls += 1
        msg = "broker unreachable"
        raise RuntimeError(msg)

    sent.dlq = AsyncMock(side_effect=broken)
    failed_before = agent_module.dead_letters.failed
    with mocked(sent, warmup=30), patch.object(deadletters, "RETRIES_S", (0.0, 0.0)):
        async with agent_module.score_readings.test_context() as agent:
            for i in range(60):  # a power-only meter's hour is judged after 20 minutes
                await agent.put(encode_reading(good(i)), key=M.encode())
            await agent.put(b"not json", key=M.encode())
            await agent.put(encode_reading(good(61, p=70.0)), key=M.encode())
            await agent.put(encode_reading(good(65)), key=M.encode())
    assert calls == 3  # the first try and two retries
    assert agent_module.dead_letters.failed == failed_before + 1
    assert [a["value"] for a in sent.events(topics.ANOMALIES, "anomaly_detected")] == [70.0]


async def test_a_processing_error_is_dead_lettered_and_the_batch_goes_on(app) -> None:
    sent = Sent()
    step = MachineScorer.step

    def failing_step(self: MachineScorer, r: Reading) -> list[Any]:
        if r.power_kw == 13.37:
            msg = "a bug"
            raise ZeroDivisionError(msg)
        return step(self, r)

    with mocked(sent, warmup=30), patch.object(MachineScorer, "step", failing_step):
        async with agent_module.score_readings.test_context() as agent:
            for i in range(60):  # a power-only meter's hour is judged after 20 minutes
                await agent.put(encode_reading(good(i)), key=M.encode())
            await agent.put(encode_reading(good(60, p=13.37)), key=M.encode())
            await agent.put(encode_reading(good(61, p=70.0)), key=M.encode())
            await agent.put(encode_reading(good(65)), key=M.encode())
    letters = sent.dead_letters()
    assert len(letters) == 1
    assert "processing error" in letters[0]["reason"]
    assert "ZeroDivisionError" in letters[0]["reason"]
    assert [a["value"] for a in sent.events(topics.ANOMALIES, "anomaly_detected")] == [70.0]


async def test_a_re_sent_batch_counts_once_and_a_reading_too_late_is_dead_lettered(app) -> None:
    """(machine, timestamp) identifies a reading: a retried batch adds nothing."""
    sent = Sent()
    first = [good(i) for i in range(130)]  # 08:00 to 09:04:30
    spike = good(60, p=70.0)  # 08:30, after the warm-up
    batch = [*first[:60], spike, *first[61:]]
    with mocked(sent, warmup=30):
        async with agent_module.score_readings.test_context() as agent:
            for r in batch:
                await agent.put(encode_reading(r), key=M.encode())
            for r in batch[-20:]:  # the client retries its last 20 readings
                await agent.put(encode_reading(r), key=M.encode())
            # 08:00 again: 64 min behind the newest reading, more than max_lateness_s
            await agent.put(encode_reading(first[0]), key=M.encode())
            await agent.put(encode_reading(good(241)), key=M.encode())  # 10:00:30 closes 09:00
    hours = sent.hours()
    assert [h["hour_start"] for h in hours] == ["2025-03-03T08:00:00Z", "2025-03-03T09:00:00Z"]
    energy_8 = sum(r.energy_kwh for r in batch if r.timestamp.hour == 8)
    assert hours[0]["energy_kwh"] == pytest.approx(energy_8)
    assert hours[0]["readings"] == 120
    assert hours[1]["readings"] == 10  # 09:00 to 09:04:30, once
    assert [a["value"] for a in sent.events(topics.ANOMALIES, "anomaly_detected")] == [70.0]
    metrics = sent.events(topics.METRICS, "metric_updated")
    assert sum(m["duplicates"] for m in metrics) == 20
    assert sum(m["readings"] for m in metrics) == 130
    letters = sent.dead_letters()
    assert [d["field"] for d in letters] == ["timestamp"]
    assert "max_lateness_s" in letters[0]["reason"]


async def test_a_key_that_is_not_the_machine_is_dead_lettered(app) -> None:
    """The key places the record, and with it the machine's state: it must be the machine."""
    sent = Sent()
    with mocked(sent, warmup=30):
        async with agent_module.score_readings.test_context() as agent:
            await agent.put(encode_reading(good(0)), key=b"c0000000-0000-0000-0000-000000000004")
            await agent.put(encode_reading(good(1)), key=None)
            await agent.put(encode_reading(good(2)), key=M.encode())
    assert [d["field"] for d in sent.dead_letters()] == ["key", "key"]


async def test_a_meter_slower_than_its_catalogue_interval_is_scored(app) -> None:
    """Compressor-1 is catalogued at 1 s; a meter that reads it every 30 s reports 30 s of
    energy per reading. The energy gate takes the time since the previous reading."""
    compressor = "c0000000-0000-0000-0000-000000000001"
    sent = Sent()
    with mocked(sent, warmup=30):
        async with agent_module.score_readings.test_context() as agent:
            for i in range(130):
                r = Reading(machine_id=compressor, timestamp=T0 + timedelta(seconds=30 * i),
                            power_kw=30.0, energy_kwh=30.0 * 30 / 3600)
                await agent.put(encode_reading(r), key=compressor.encode())
            # ... but 30 s of energy one second after the previous reading is refused.
            r = Reading(machine_id=compressor, timestamp=T0 + timedelta(seconds=30 * 129 + 1),
                        power_kw=30.0, energy_kwh=30.0 * 30 / 3600)
            await agent.put(encode_reading(r), key=compressor.encode())
    assert [d["field"] for d in sent.dead_letters()] == ["energy_kwh"]
    hours = sent.hours()
    assert [h["readings"] for h in hours] == [120]
