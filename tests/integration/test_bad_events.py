"""Malformed records on an output topic and malformed messages on a Redis channel, on the real
stack: both are skipped and counted in /health, and a real anomaly made afterwards still
reaches a WebSocket client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from schemas.readings import Reading
from streams import topics
from tests.integration.clients import producer, send_readings, steady_readings, ws_client
from tests.integration.conftest import ALL_OUTPUT_PARTITIONS, Stack, bridge_partitions
from tests.integration.services import EnmsProcess, eventually, http_json, wait_until

pytestmark = pytest.mark.integration

MACHINE = "c0000000-0000-0000-0000-000000000005"
#: Records on output topics that are not events: (topic, value).
BAD_RECORDS = [
    (topics.ALERTS, None),  # a tombstone
    (topics.ALERTS, b"\xff\xfe\x00 not even UTF-8"),
    (topics.ALERTS, b'{"event_type": ["system_alert"], "event_id": "x"}'),  # was a poison pill
    (topics.ANOMALIES, b"[" * 5000 + b"]" * 5000),  # on the machine's partition, before its anomaly
    (topics.ANOMALIES, b'{"event_type": "anomaly_detected"}'),
]
#: Messages on a Redis channel that are not events.
BAD_MESSAGES = [
    b'{"event_type": "anomaly_detected", "event_id": ["x"]}',
    b'{"event_type": {"a": 1}, "event_id": "y"}',
    b"\xff junk",
]


@pytest.fixture(scope="module")
def api(stack: Stack) -> tuple[str, EnmsProcess]:
    worker = stack.start("worker")
    base = stack.start_api()
    worker.wait_for_log("Worker]: Ready", 120)
    wait_until(lambda: len(bridge_partitions(base)) == ALL_OUTPUT_PARTITIONS, 60,
               "the bridge to own every output partition")
    return base, stack.procs[-1]


async def test_junk_on_kafka_and_redis_is_counted_and_a_real_anomaly_still_arrives(
        api: tuple[str, EnmsProcess], kafka_bootstrap: str, redis_url: str) -> None:
    base, api_proc = api
    t0 = datetime(2024, 5, 6, 8, tzinfo=UTC)  # in the past: future readings are refused
    warm = steady_readings(MACHINE, t0, 400, level=30.0, seed=5)
    spike_ts = t0 + timedelta(seconds=30 * 400)
    spike = Reading(machine_id=MACHINE, timestamp=spike_ts, power_kw=95.0,
                    energy_kwh=95.0 * 30 / 3600, throughput_units_per_hour=100.0)
    ws_url = base.replace("http://", "ws://") + "/api/v1/ws/anomalies"
    redis = aioredis.from_url(redis_url)
    try:
        async with ws_client(ws_url) as (ws, _), producer(kafka_bootstrap) as p:
            where = []
            for topic, value in BAD_RECORDS:
                md = await (await p.send(topic, key=MACHINE.encode(), value=value))
                where.append(f"{topic}[{md.partition}]@{md.offset}")
            for message in BAD_MESSAGES:
                await redis.publish("anomaly.detected", message)
            await send_readings(p, topics.READINGS, [*warm, spike])
            await ws.wait_for(
                lambda _: any(e["machine_id"] == MACHINE
                              and datetime.fromisoformat(e["timestamp"]) == spike_ts
                              for e in ws.events("anomaly_detected")),
                60, "the spike's anomaly_detected after the junk")
            assert all(isinstance(m.get("type"), str) for m in ws.messages)  # no junk frames
    finally:
        await redis.aclose()

    def counted() -> dict[str, Any] | None:
        body = http_json(f"{base}/health", 2)
        ok = (body["bridge"]["malformed"] == len(BAD_RECORDS)
              and body["hub"]["malformed"] == len(BAD_MESSAGES))
        return dict(body) if ok else None
    body = await eventually(counted, 20, "/health to count every skipped record and message")
    assert body is not None  # eventually returns a truthy result or fails
    assert body["bridge"]["running"] is True
    assert body["bridge"]["skipped"] == len(BAD_RECORDS)
    assert body["hub"]["running"] is True and body["hub"]["restarts"] == 0
    log = api_proc.log_text()
    for w in where:  # each logged once, with where it is
        assert log.count(f"at {w}:") == 1, w
