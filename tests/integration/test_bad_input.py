"""Hostile input on the real stack: bad records on enms.readings, bad readings through
POST /api/v1/readings, a retried batch, and Kafka going away under the API."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from schemas.readings import Reading, encode_reading
from streams import topics
from tests.integration.clients import consume, steady_readings
from tests.integration.conftest import ALL_OUTPUT_PARTITIONS, Stack, bridge_partitions
from tests.integration.services import KAFKA_SH, EnmsProcess, kafka_broker, wait_until

pytestmark = pytest.mark.integration

MOTOR = "c0000000-0000-0000-0000-000000000003"  # Motor-Line-A, 30 kW, 30 s
PUMP = "c0000000-0000-0000-0000-000000000004"  # Pump-Cooling, 22 kW, 30 s
T0 = datetime(2010, 3, 1, 8, tzinfo=UTC)  # a period no other module writes to


@pytest.fixture(scope="module")
def api(stack: Stack) -> tuple[str, EnmsProcess]:
    # A short warm-up, so that 100 good readings are enough to flag a spike.
    worker = stack.start("worker", ENMS_WARMUP="30")
    base = stack.start_api()
    worker.wait_for_log("Worker]: Ready", 120)
    wait_until(lambda: len(bridge_partitions(base)) == ALL_OUTPUT_PARTITIONS, 60,
               "the bridge to own every output partition")
    return base, worker


def reading_json(r: Reading, **over: Any) -> dict[str, Any]:
    d: dict[str, Any] = orjson.loads(encode_reading(r))
    d.update(over)
    return d


def bad_records(at: Reading) -> list[tuple[str, bytes | None, str]]:
    """(what, value, the field its dead letter names)."""
    j = reading_json(at)
    return [
        ("null value", None, "$"),
        ("not UTF-8", b"\xff\xfe\x00\x81 " + os.urandom(200), "$"),
        ("5,000 deep", b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "x[0][0][0]"),
        ("2 MB", os.urandom(2 * 1024 * 1024), "$"),
        ("dated 9000-01-01", orjson.dumps({**j, "timestamp": "9000-01-01T00:00:00Z"}),
         "timestamp"),
        ("power 1e308", orjson.dumps({**j, "power_kw": 1e308}), "power_kw"),
        ("throughput 1e200", orjson.dumps({**j, "throughput_units_per_hour": 1e200}),
         "throughput_units_per_hour"),
    ]


async def test_bad_records_are_dead_lettered_and_every_good_reading_is_scored(
        api: tuple[str, EnmsProcess], kafka_bootstrap: str) -> None:
    _base, worker = api
    readings = steady_readings(MOTOR, T0, 100, level=20.0, seed=8)
    spike = Reading(machine_id=MOTOR, timestamp=T0 + timedelta(seconds=30 * 100),
                    power_kw=70.0, energy_kwh=70.0 * 30 / 3600, throughput_units_per_hour=100.0)
    closer = steady_readings(MOTOR, T0 + timedelta(minutes=55), 1, level=20.0)[0]
    bad = bad_records(readings[49])
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=2,
                         max_request_size=4 * 1024 * 1024)
    await p.start()
    try:
        async def send(value: bytes | None, at: datetime) -> tuple[int, int]:
            md = await (await p.send(topics.READINGS, key=MOTOR.encode(), value=value,
                                     timestamp_ms=int(at.timestamp() * 1000)))
            return md.partition, md.offset

        for r in readings[:50]:
            await send(encode_reading(r), r.timestamp)
        where = [await send(value, readings[49].timestamp) for _, value, _ in bad]
        for r in [*readings[50:], spike, closer]:
            await send(encode_reading(r), r.timestamp)
    finally:
        await p.stop()
    assert len({part for part, _ in where}) == 1  # all on the machine's one partition

    dead = await consume(kafka_bootstrap, topics.READINGS_DLQ, lambda recs: set(where) <= {
        (d["source_partition"], d["source_offset"]) for d in (orjson.loads(r.value) for r in recs)},
        60)
    by_place = {(d["source_partition"], d["source_offset"]): d
                for d in (orjson.loads(r.value) for r in dead)}
    for (what, value, field), place in zip(bad, where, strict=True):
        d = by_place[place]
        assert d["field"] == field, (what, d)
        assert d["reason"], what
        assert d["source_topic"] == topics.READINGS
        assert d["value_bytes"] == (None if value is None else len(value)), what
    assert by_place[where[3]]["value_truncated"] is True  # the 2 MB value, cut

    def mine(recs: list[Any], event_type: str) -> list[dict[str, Any]]:
        out = []
        for rec in recs:
            try:  # other modules put junk on the output topics (test_bad_events)
                e = orjson.loads(rec.value)
            except (orjson.JSONDecodeError, TypeError):
                continue
            if not isinstance(e, dict):
                continue
            if e.get("machine_id") == MOTOR and e.get("event_type") == event_type and \
                    datetime.fromisoformat(e["timestamp"]) <= closer.timestamp:
                out.append(e)
        return out

    metrics = await consume(kafka_bootstrap, topics.METRICS,
                            lambda recs: sum(m["readings"] for m in mine(recs, "metric_updated"))
                            >= 101, 60)
    counted = mine(metrics, "metric_updated")
    assert sum(m["readings"] for m in counted) == 101  # 100 good readings and the spike
    anomalies = await consume(kafka_bootstrap, topics.ANOMALIES,
                              lambda recs: bool(mine(recs, "anomaly_detected")), 60)
    flagged = mine(anomalies, "anomaly_detected")
    assert [(a["value"], datetime.fromisoformat(a["timestamp"])) for a in flagged] == [
        (70.0, spike.timestamp)]
    assert "Crashed" not in worker.log_text()
    worker.check_alive()


async def _post(session: aiohttp.ClientSession, url: str, data: bytes,
                content_type: str = "application/json") -> tuple[int, Any]:
    async with session.post(url, data=data, headers={"Content-Type": content_type}) as r:
        text = await r.text()
        try:
            return r.status, orjson.loads(text)
        except orjson.JSONDecodeError:
            return r.status, text


async def test_the_same_bad_readings_through_rest_get_422_naming_the_field(
        api: tuple[str, EnmsProcess]) -> None:
    base, _ = api
    url = f"{base}/api/v1/readings"
    good = steady_readings(PUMP, T0, 1, level=10.0)[0]
    cases = [
        ("null", b"[null]", ["body", 0]),
        ("not UTF-8", b"[\xff\xfe]", ["body"]),
        ("5,000 deep", b'[{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}]", ["body", 0, "x", 0, 0]),
        ("2 MB", orjson.dumps([{**reading_json(good), "machine_id": "m" * 2_000_000}]),
         ["body", 0, "machine_id"]),
        *[(what, b"[" + value + b"]", ["body", 0, field])
          for what, value, field in bad_records(good)[4:] if value is not None],
    ]
    async with aiohttp.ClientSession() as s:
        for what, body, loc in cases:
            status, answer = await _post(s, url, body)
            assert status == 422, (what, answer)
            assert answer["detail"][0]["loc"] == loc, (what, answer)
        status, answer = await _post(s, url, orjson.dumps([reading_json(good)]), "text/plain")
        assert status == 415, answer
        huge = b"[" + b" " * (40 * 1024 * 1024) + b"]"
        status, answer = await _post(s, url, huge)
        assert status == 413, answer
        assert "41943042 bytes" in answer["detail"]  # judged by its Content-Length, unread
        assert (await _post(s, url, orjson.dumps([reading_json(good)])))[0] == 202


async def test_posting_an_accepted_batch_twice_counts_its_energy_once(
        api: tuple[str, EnmsProcess], kafka_bootstrap: str) -> None:
    base, _ = api
    hour = T0 + timedelta(days=2)  # 2010-03-03 08:00
    batch = steady_readings(PUMP, hour, 120, level=12.0, seed=4)  # 08:00:00 to 08:59:30
    body = orjson.dumps([reading_json(r) for r in batch])
    async with aiohttp.ClientSession() as s:
        assert (await _post(s, f"{base}/api/v1/readings", body))[0] == 202
        assert (await _post(s, f"{base}/api/v1/readings", body))[0] == 202  # a client retry
        # A later reading closes the hour (a second copy would have gone into it).
        later = steady_readings(PUMP, hour + timedelta(hours=2), 1, level=12.0)
        assert (await _post(s, f"{base}/api/v1/readings",
                            orjson.dumps([reading_json(r) for r in later])))[0] == 202

    def hours(recs: list[Any]) -> list[dict[str, Any]]:
        return [h for h in (orjson.loads(r.value) for r in recs)
                if h.get("machine_id") == PUMP and h["hour_start"].startswith("2010-03-03T0")]
    recs = await consume(kafka_bootstrap, topics.ENERGY_HOURLY,
                         lambda recs: bool(hours(recs)), 60)
    eight = hours(recs)
    assert [h["hour_start"] for h in eight] == ["2010-03-03T08:00:00Z"]
    assert eight[0]["readings"] == 120
    assert eight[0]["energy_kwh"] == pytest.approx(sum(r.energy_kwh for r in batch))


@pytest.fixture
def lone_api(base_env: dict[str, str], run_dir: Path) -> Any:
    """An API on a Kafka broker of its own, which the test may stop."""
    with kafka_broker(run_dir / "kafka-stopped") as bootstrap:
        logs = run_dir / "bad_input_lone"
        logs.mkdir(exist_ok=True)
        stack = Stack(dict(base_env, ENMS_KAFKA_BOOTSTRAP=bootstrap), logs)
        try:
            yield stack.start_api(), run_dir / "kafka-stopped"
        finally:
            stack.stop()


def _stop_broker(kafka_dir: Path) -> None:
    """Stop the broker of that run folder now (the fixture's own stop is then a no-op)."""
    env = dict(os.environ, KAFKA_RUN_DIR=str(kafka_dir))
    subprocess.run([str(KAFKA_SH), "stop"], env=env, check=True, timeout=60)


async def test_with_kafka_stopped_a_post_gets_503_within_5_s(lone_api: Any) -> None:
    base, kafka_dir = lone_api
    url = f"{base}/api/v1/readings"
    good = steady_readings(PUMP, T0 + timedelta(days=5), 2, level=10.0)
    async with aiohttp.ClientSession() as s:
        assert (await _post(s, url, orjson.dumps([reading_json(good[0])])))[0] == 202
        _stop_broker(kafka_dir)
        # The client gives up after 5 s: the answer must come before.
        async with s.post(url, data=orjson.dumps([reading_json(good[1])]),
                          headers={"Content-Type": "application/json"},
                          timeout=aiohttp.ClientTimeout(total=5)) as r:
            assert r.status == 503
            assert r.headers["Retry-After"]
            body = await r.json()
    assert body["accepted"] == 0 and body["accepted_indexes"] == []
    assert body["not_confirmed"] == 1
