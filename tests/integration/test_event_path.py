"""The whole event path on the real Kafka, worker, bridge, Redis and WebSocket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas.events import stable_event_id
from schemas.readings import Reading
from streams import topics
from tests.integration.clients import (
    consume,
    producer,
    send_readings,
    steady_readings,
    ws_client,
)
from tests.integration.conftest import ALL_OUTPUT_PARTITIONS, Stack, bridge_partitions
from tests.integration.services import wait_until

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def api(stack: Stack) -> str:
    worker = stack.start("worker")
    base = stack.start_api()
    worker.wait_for_log("Worker]: Ready", 120)
    wait_until(lambda: len(bridge_partitions(base)) == ALL_OUTPUT_PARTITIONS, 60,
               "the bridge to own every output partition")
    return base


def ws_url(base: str, path: str) -> str:
    return base.replace("http://", "ws://") + f"/api/v1/ws/{path}"


async def test_spike_reading_reaches_websocket_as_anomaly(
        api: str, kafka_bootstrap: str) -> None:
    machine = "c0000000-0000-0000-0000-000000000003"
    t0 = datetime(2003, 3, 2, 8, tzinfo=UTC)
    warm = steady_readings(machine, t0, 400, level=20.0, seed=3)
    spike_ts = t0 + timedelta(seconds=30 * 400)
    spike = Reading(machine_id=machine, timestamp=spike_ts, power_kw=64.0,
                    energy_kwh=64.0 * 30 / 3600, throughput_units_per_hour=100.0)
    async with ws_client(ws_url(api, "anomalies")) as (ws, _), producer(kafka_bootstrap) as p:
        await send_readings(p, topics.READINGS, [*warm, spike])
        found = await ws.wait_for(
            lambda _: [e for e in ws.events("anomaly_detected")
                       if e["machine_id"] == machine
                       and datetime.fromisoformat(e["timestamp"]) == spike_ts],
            60, "anomaly_detected for the spike")
    event = found[0]
    assert event["event_id"] == stable_event_id("anomaly_detected", machine,
                                                spike_ts.isoformat(), "residual")
    assert event["value"] == 64.0
    assert event["severity"] == "critical"
    assert event["anomaly_type"] == "spike"
    assert 18.0 < event["expected_value"] < 22.0
    assert event["machine_name"] == "Motor-Line-A"
    # Only the anomalies path: no metric events on it.
    assert not ws.events("metric_updated")


BAD_RECORDS = [
    (b'{"machine_id": "c0000000-0000-0000-0000-000000000004", "timestamp": ', "$"),
    (b'{"machine_id": "c0000000-0000-0000-0000-000000000004", "power_kw": 1.0,'
     b' "energy_kwh": 0.1}', "timestamp"),
    (b'{"machine_id": "c0000000-0000-0000-0000-000000000004", "timestamp":'
     b' "2003-04-01T00:00:00Z", "power_kw": "lots", "energy_kwh": 0.1}', "power_kw"),
    (b'{"machine_id": "c0000000-0000-0000-0000-000000000004", "timestamp":'
     b' "2003-04-01T00:00:00Z", "power_kw": NaN, "energy_kwh": 0.1}', "power_kw"),
    (b'{"machine_id": "c0000000-0000-0000-0000-00000000dead", "timestamp":'
     b' "2003-04-01T00:00:00Z", "power_kw": 1.0, "energy_kwh": 0.1}', "machine_id"),
]


async def test_malformed_readings_go_to_dead_letter_and_scoring_goes_on(
        api: str, kafka_bootstrap: str) -> None:
    machine = "c0000000-0000-0000-0000-000000000004"
    t0 = datetime(2003, 4, 1, tzinfo=UTC)
    warm = steady_readings(machine, t0, 400, level=15.0, seed=4)
    spike_ts = t0 + timedelta(seconds=30 * 400)
    spike = Reading(machine_id=machine, timestamp=spike_ts, power_kw=2.0,
                    energy_kwh=2.0 * 30 / 3600, throughput_units_per_hour=100.0)
    async with ws_client(ws_url(api, "dashboard")) as (ws, _), producer(kafka_bootstrap) as p:
        await send_readings(p, topics.READINGS, warm)
        offsets = []
        # Record time in this test's own period, as for its readings: a record stamped now
        # would come before later tests' older readings on the partition and cut their
        # replays by time short (history.load_readings stops at the first record past its end).
        bad_at_ms = int((spike_ts - timedelta(seconds=15)).timestamp() * 1000)
        for raw, _field in BAD_RECORDS:
            md = await (await p.send(topics.READINGS, key=machine.encode(), value=raw,
                                     timestamp_ms=bad_at_ms))
            offsets.append((md.partition, md.offset))
        await send_readings(p, topics.READINGS, [spike])
        await ws.wait_for(
            lambda _: any(e["machine_id"] == machine and e["anomaly_type"] == "drop"
                          and datetime.fromisoformat(e["timestamp"]) == spike_ts
                          for e in ws.events("anomaly_detected")),
            60, "the good reading after the bad ones to be scored (a drop)")
    dead = await consume(
        kafka_bootstrap, topics.READINGS_DLQ,
        lambda recs: {(d["source_partition"], d["source_offset"])
                      for d in map(lambda r: orjson.loads(r.value), recs)} >= set(offsets),
        30)
    by_offset = {(d["source_partition"], d["source_offset"]): d
                 for d in (orjson.loads(r.value) for r in dead)}
    for (raw, field), where in zip(BAD_RECORDS, offsets, strict=True):
        d = by_offset[where]
        assert d["field"] == field, d
        assert d["reason"], d
        assert d["source_topic"] == topics.READINGS
        assert d["value"] == raw.decode()
